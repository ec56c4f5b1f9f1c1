"""Estimators the API computes itself, per architecture and without torch: params and flops.

They are exact functions of the architecture (not of its isomorphism class: cells that compute the
same function can still differ in ops on edges that do not reach the output), cost microseconds,
and so are never cached or sent to a worker.
"""

from __future__ import annotations

import functools

from archscore.estimators.protocol import PER_ARCHITECTURE
from archscore.estimators.spaces import get_space
from archscore.estimators.spaces.base import COST, SearchSpace

ANALYTIC = PER_ARCHITECTURE


def analytic_names(space: SearchSpace, estimators: list[str]) -> list[str]:
    return [n for n in estimators if n in ANALYTIC and space.has(COST)]


def analytic_scores(space: SearchSpace, arch: str, names: list[str], protocol: dict) -> dict[str, float]:
    num_classes = 100 if protocol.get("dataset") == "cifar100" else 10
    values = _cost(space.name, arch, num_classes)
    return {n: values[n] for n in names}


@functools.lru_cache(maxsize=50_000)  # the cached path asks for the same architectures again and again
def _cost(space_name: str, arch: str, num_classes: int) -> dict[str, float]:
    space = get_space(space_name)
    params, flops = space.cost(space.parse(arch), num_classes=num_classes)
    return {"params": params / 1e6, "flops": flops / 1e6}
