"""Passes on inputs of their own: what some proxies read besides the batch's one forward pass.

Their authors compute them on other inputs than the whole batch (its halves, its first images, a Gaussian
batch, a re-initialised copy of the network), and the batch's statistics enter every network with
BatchNorm in train mode, so they cannot read the batch's pass. Each is a function of ``PassInputs``
registered under the name proxies list in their ``needs``; ``shared_pass.run_shared_pass`` runs each
requested one once per batch, however many proxies read it, and keeps its value in ``PassResult.own``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class PassInputs:
    net: nn.Module
    x: torch.Tensor  # the batch's images
    y: torch.Tensor | None  # their labels (given whenever a requested pass declares ``labels``)
    noise: torch.Tensor  # the Gaussian batch (the batches ``inputs: noise`` gives), of the images' shape
    seed: int  # the protocol's seed, for passes that draw (a re-initialised copy, ...)
    weights: list[torch.Tensor]  # the Conv2d/Linear weights, requiring gradients while the passes run


@dataclass(frozen=True)
class OwnPass:
    name: str
    compute: Callable[[PassInputs], Any]
    labels: bool  # reads the batch's labels
    noise: bool  # reads the Gaussian batch
    first: bool  # runs before the batch's pass (it reads running statistics a pass in train mode updates)
    gradient_rows: int  # at most this many float32 rows of one entry per parameter held at once (memory)


OWN_PASSES: dict[str, OwnPass] = {}


def register_pass(name: str, *, labels: bool = False, noise: bool = False, first: bool = False, gradient_rows: int = 0):
    """Register the decorated function of ``PassInputs`` as the own-input pass ``name``. ``gradient_rows``:
    how many float32 copies of the parameters (a gradient per image) it holds at once, at most one per image
    of the batch, which the memory estimate adds (``zero_shot.memory``)."""

    def decorate(fn: Callable[[PassInputs], Any]) -> Callable[[PassInputs], Any]:
        if name in OWN_PASSES:
            raise ValueError(f"pass {name!r} is already registered")
        OWN_PASSES[name] = OwnPass(name, fn, labels, noise, first, gradient_rows)
        return fn

    return decorate
