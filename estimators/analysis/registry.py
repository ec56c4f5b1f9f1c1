"""The registry of studies (like the estimators' manifest): name -> Study."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Figures = dict[str, Any]  # figure name -> matplotlib Figure


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    run: Callable[..., dict]  # (StudyContext) -> JSON-ready numbers
    figures: Callable[[dict], Figures]  # numbers -> figures
    protocols: str = "one"  # "one": the context's protocol only (pure over scores); "several": scores others too


STUDIES: dict[str, Study] = {}


def register_study(study: Study) -> Study:
    if study.name in STUDIES:
        raise ValueError(f"study {study.name!r} is already registered")
    STUDIES[study.name] = study
    return study


def get_study(name: str) -> Study:
    if name not in STUDIES:
        raise KeyError(f"unknown study {name!r}; available: {', '.join(sorted(STUDIES))}")
    return STUDIES[name]


def list_studies() -> list[Study]:
    return [STUDIES[n] for n in sorted(STUDIES)]
