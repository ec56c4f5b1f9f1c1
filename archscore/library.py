"""The library's public functions: score architectures, judge estimators against ground truth, and
look up spaces and estimators. Re-exported by ``archscore``; the docs' Python guide shows them in use."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from archscore.estimators.catalog import ESTIMATORS, ZERO_SHOT, EstimatorInfo
from archscore.estimators.device import resolve_device
from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces import DEFAULT_SPACE, list_spaces
from archscore.estimators.spaces.base import Arch, EncodingError, SearchSpace, get_space

__all__ = ["ArchScore", "evaluate", "get_space", "list_estimators", "list_spaces", "score"]

ProgressCallback = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True)
class ArchScore:
    """One architecture's scores: ``scores[name]`` is None where the estimator is undefined for it,
    with the reason in ``reasons[name]``; ``per_batch`` holds the per-batch values behind each mean."""

    arch: str
    canonical_key: str
    scores: dict[str, float | None]
    reasons: dict[str, str] = field(default_factory=dict)
    per_batch: dict[str, list[float | None]] = field(default_factory=dict)
    device: str = "cpu"

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ArchScore:
        return cls(**{k: record[k] for k in ("arch", "canonical_key", "scores", "reasons", "per_batch", "device")})


def list_estimators() -> list[EstimatorInfo]:
    """Every estimator: name, kind (zero-shot or one-shot), direction, version and description."""
    return list(ESTIMATORS.values())


def _protocol(protocol: Protocol | Mapping[str, Any] | None) -> Protocol:
    if protocol is None:
        return Protocol()
    return protocol if isinstance(protocol, Protocol) else Protocol.model_validate(dict(protocol))


def _estimator_names(names: Sequence[str] | None) -> list[str]:
    """The given names in order without repeats; None or ["all"]: every zero-shot estimator."""
    if names is None or list(names) == ["all"]:
        return list(ZERO_SHOT)
    unknown = [n for n in names if n not in ESTIMATORS]
    if unknown:
        raise ValueError(f"unknown estimator(s) {', '.join(unknown)}; available: {', '.join(ESTIMATORS)}")
    return list(dict.fromkeys(names))


def _parse_all(space: SearchSpace, archs: Sequence[Any]) -> list[Arch]:
    parsed = []
    for i, encoding in enumerate(archs):
        try:
            parsed.append(space.parse_local(encoding))
        except EncodingError as exc:
            raise EncodingError(f"archs[{i}]: {exc}") from None
    return parsed


def score(
    archs: Sequence[Any],
    space: str = DEFAULT_SPACE,
    estimators: Sequence[str] | None = None,
    protocol: Protocol | Mapping[str, Any] | None = None,
    device: str = "auto",
    jobs: int = 1,
    progress: ProgressCallback | None = None,
    supernet_dir: str | os.PathLike[str] | None = None,
) -> list[ArchScore]:
    """Score each architecture of ``space`` (any encoding the space accepts) with ``estimators``
    (default: every zero-shot estimator) under ``protocol`` (a :class:`Protocol` or its fields as a
    dict; default: the paper's). ``device``: auto, cpu, cuda or cuda:N; it is recorded in each result
    and never changes the protocol. ``jobs`` > 1 scores in that many single-threaded processes.
    ``supernet_dir`` holds the checkpoints that ``protocol.weights``/``protocol.oneshot`` name (default:
    ARCHSCORE_SUPERNET_DIR's folder, as the command line's; those built into archscore are found too).

    Raises EncodingError naming the index of a bad encoding, ValueError for an unknown estimator and
    DeviceError for a device this machine lacks."""
    from archscore.estimators.scoring import score_many

    sp = get_space(space)
    parsed = _parse_all(sp, archs)
    names = _estimator_names(estimators)
    built = _protocol(protocol)
    if supernet_dir is None and (built.oneshot is not None or built.weights is not None):
        from archscore.estimators.one_shot.registry import default_supernet_dir

        supernet_dir = default_supernet_dir()
    records = score_many(parsed, sp.name, names, built, jobs, progress, supernet_dir, resolve_device(device))
    return [ArchScore.from_record(r) for r in records]


def evaluate(
    archs: Sequence[Any],
    space: str = DEFAULT_SPACE,
    estimators: Sequence[str] | None = None,
    truth: str | None = None,
    protocol: Protocol | Mapping[str, Any] | None = None,
    device: str = "auto",
    jobs: int = 1,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Score ``archs`` and judge each estimator's ranking against ground truth ``truth``: a built-in
    column (default: the space's first) or a table path[:column] (CSV, JSON or NDS records).

    Returns a JSON-ready report: ``criteria[estimator]`` (Kendall tau, Spearman rho, precision@K,
    BR@K/WR@K, ...), ``published_criteria`` for the published scores of the same cells where they exist,
    and ``records`` (each architecture's scores)."""
    from archscore.estimators.evaluation import evaluate as run_evaluation
    from archscore.estimators.truth import resolve_truth

    sp = get_space(space)
    parsed = _parse_all(sp, archs)
    if truth is None:
        if not sp.ground_truth_columns:
            raise ValueError(f"{sp.name} has no built-in ground truth; pass truth='path[:column]'")
        truth = sp.ground_truth_columns[0]
    names = _estimator_names(estimators)
    return run_evaluation(
        parsed,
        sp.name,
        names,
        _protocol(protocol),
        resolve_truth(sp.name, truth),
        jobs,
        progress,
        resolve_device(device),
    )
