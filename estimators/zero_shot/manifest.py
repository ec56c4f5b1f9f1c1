"""Torch-free names of the zero-shot estimators: the list and the validation of requested names. Their
facts (version, unit, definition...) are the catalog's (``archscore.estimators.catalog``)."""

from __future__ import annotations

from collections.abc import Iterable

from archscore.estimators.catalog import ZERO_SHOT, EstimatorInfo

__all__ = ["ZERO_SHOT", "EstimatorInfo", "list_zero_shot", "resolve_estimators"]


def list_zero_shot() -> list[str]:
    return list(ZERO_SHOT)


def resolve_estimators(names: Iterable[str] | None) -> list[str]:
    """Validate estimator names (None or "all" = every zero-shot proxy); keep the given order, drop repeats."""
    if names is None:
        return list(ZERO_SHOT)
    names = list(names)
    if names == ["all"]:
        return list(ZERO_SHOT)
    unknown = [n for n in names if n not in ZERO_SHOT]
    if unknown:
        hint = ""
        if any(n.startswith("oneshot") for n in unknown):
            hint = " (one-shot estimators need a supernet: `archscore supernet eval`, or the service)"
        raise KeyError(f"unknown zero-shot estimator(s) {', '.join(unknown)}; available: {', '.join(ZERO_SHOT)}{hint}")
    return list(dict.fromkeys(names))
