"""Gradients of one output along many cotangents, for the passes that take one backward per image or per class
(``tangent_kernel``, ``fisher_information``).

On the CPU, one backward per cotangent. On a GPU, ``COTANGENTS_AT_ONCE`` of them in one backward
(``torch.autograd.grad(..., is_grads_batched=True)``, a vmap over the backward graph): one small backward
after another leaves most of a GPU idle, while on the CPU the batched form does the same arithmetic on
larger tensors and took longer (benchmarks/cotangents.py; benchmarks/results/cotangents_nb201_b64_cpu.txt).
Both give the gradients of the same graph, equal up to rounding.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

COTANGENTS_AT_ONCE = 16  # cotangents per batched backward on a GPU (memory: this many gradient fields at once)


def batched_on(device: torch.device) -> bool:
    """Whether cotangents are batched on ``device``: on a GPU, not on the CPU."""
    return device.type == "cuda"


def grads_along(
    output: torch.Tensor, inputs: Sequence[torch.Tensor], cotangents: torch.Tensor
) -> Iterator[tuple[torch.Tensor | None, ...]]:
    """For each cotangent v (``cotangents[k]``, of ``output``'s shape), in order: the gradients of ⟨v, output⟩
    by ``inputs`` (None for one the output does not reach). Batched where ``batched_on`` the output's device,
    unless a batched backward fails (vmap refuses an operation, as a user's ``autograd.Function`` that reads
    ``.item()``, or the GPU runs out of memory): then the rest one at a time, the last freeing the graph."""
    count, done = cotangents.shape[0], 0
    while batched_on(output.device) and done < count:
        part = cotangents[done : done + COTANGENTS_AT_ONCE]
        try:
            stacked = torch.autograd.grad(
                output, inputs, part, retain_graph=True, allow_unused=True, is_grads_batched=True
            )
        except RuntimeError:
            break
        for k in range(part.shape[0]):
            yield tuple(None if g is None else g[k] for g in stacked)
        done += part.shape[0]
    for k in range(done, count):
        yield torch.autograd.grad(output, inputs, cotangents[k], retain_graph=k + 1 < count, allow_unused=True)
