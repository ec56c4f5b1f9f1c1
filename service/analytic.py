"""Estimators the API computes itself, per architecture and without torch: params and flops.

They are exact functions of the architecture (not of its isomorphism class: cells that compute the
same function can still differ in ops on edges that do not reach the output), cost microseconds,
and so are never cached or sent to a worker.
"""

from __future__ import annotations

from archscore.estimators.catalog import scored_estimators
from archscore.estimators.protocol import PER_ARCHITECTURE
from archscore.estimators.spaces.base import COST, Arch, SearchSpace


def analytic_names(
    space: SearchSpace, estimators: list[str], predictors: dict[str, list[str]] | None = None
) -> list[str]:
    """Those of ``estimators``, and of the members of the population estimators and predictors among them
    (``predictors``: each one's estimators), the API computes."""
    return [n for n in scored_estimators(estimators, predictors) if n in PER_ARCHITECTURE and space.has(COST)]


def analytic_values(space: SearchSpace, arch: Arch, names: list[str], num_classes: int) -> dict[str, float]:
    """The estimators ``names`` (of ``analytic_names``) of one parsed architecture, in millions."""
    if not names:
        return {}
    params, flops = space.cost(arch, num_classes=num_classes)
    values = {"params": params / 1e6, "flops": flops / 1e6}
    return {n: values[n] for n in names}


def num_classes(protocol: dict) -> int:
    return 100 if protocol.get("dataset") == "cifar100" else 10
