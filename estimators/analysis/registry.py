"""The registry of studies (like the estimators' manifest): name -> Study."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archscore.estimators.protocol import Protocol

Figures = dict[str, Any]  # figure name -> matplotlib Figure


class StudyInputError(ValueError):
    """The request cannot be studied as given: ``field`` names what to change."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def only_the_protocol(protocol: Protocol, options: dict) -> list[Protocol]:
    return [protocol]


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    run: Callable[..., dict]  # (StudyContext) -> JSON-ready numbers
    figures: Callable[[dict], Figures]  # numbers -> figures
    # the protocols whose scores the study reads, so a service can have them scored before it runs;
    # the default, the request's protocol only, makes the study a pure function of cached scores
    protocols: Callable[[Protocol, dict], list[Protocol]] = only_the_protocol
    requires: tuple[str, ...] = ()  # capabilities the space must declare (archscore.estimators.spaces.base)
    # the per-epoch snapshots of the protocol's one-shot checkpoint, put in options["snapshots"] by whoever
    # runs the study (it knows where checkpoints live): [{"epoch", "sha256", "name"}, ...]
    needs_snapshots: bool = False
    # the checkpoints named in options["supernets"], put in options["checkpoints"] the same way:
    # [{"name", "sha256", "sampler", "partitions", "epochs"}, ...]
    needs_checkpoints: bool = False
    # the architectures the study scores, from those asked for: (space, archs, options) -> archs;
    # None: as asked. Whoever runs the study applies it before scoring
    architectures: Callable[..., list] | None = None

    def missing_capabilities(self, space) -> list[str]:
        return [c for c in self.requires if not space.has(c)]


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
