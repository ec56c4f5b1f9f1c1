"""What a study works on: architectures of one space with ground truth, the estimators, a protocol,
and a way to get scores under a protocol (scoring in this process, or the service's cache)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces.base import Arch, SearchSpace

Scores = dict[str, list[float | None]]  # estimator -> score per architecture (None: not scored)
ScoreSource = Callable[[Protocol], Scores]


@dataclass
class StudyContext:
    space: SearchSpace
    archs: Sequence[Arch]  # every one has ground truth
    truth: list[float]
    estimators: list[str]
    protocol: Protocol
    source: ScoreSource
    options: dict = field(default_factory=dict)
    _cache: dict[str, Scores] = field(default_factory=dict, repr=False)

    def scores(self, protocol: Protocol | None = None) -> Scores:
        """Scores of every architecture under a protocol (default: the context's), fetched once."""
        protocol = protocol or self.protocol
        key = protocol.hash()
        if key not in self._cache:
            self._cache[key] = self.source(protocol)
        return self._cache[key]

    @property
    def ids(self) -> list[str]:
        """Tie-breaking ids (see archscore.estimators.ranking): canonical key + string form."""
        return [self.space.canonical_key(a) + self.space.to_string(a) for a in self.archs]

    def describe(self) -> dict:
        return {
            "space": self.space.name,
            "n": len(self.archs),
            "estimators": list(self.estimators),
            "protocol": self.protocol.model_dump(),
            "protocol_hash": self.protocol.hash(),
            "archs": [self.space.to_string(a) for a in self.archs],
            "options": dict(self.options),
        }


def true_ranks(values: Sequence[float], ids: Sequence[str]) -> list[int]:
    """0-based rank of each value, best (highest) first, ties by id (the ranking module's rule)."""
    order = sorted(range(len(values)), key=lambda i: (-values[i], ids[i]))
    ranks = [0] * len(values)
    for rank, i in enumerate(order):
        ranks[i] = rank
    return ranks


def estimated_ranks(scores: Sequence[float | None], ids: Sequence[str]) -> list[int]:
    """Like true_ranks; a missing score ranks last (the ranking module's missing-score rule)."""
    lowest = float("-inf")
    return true_ranks([lowest if s is None else s for s in scores], ids)
