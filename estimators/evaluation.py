"""Score a set of architectures and judge each estimator's ranking against ground truth."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from archscore.estimators.protocol import Protocol
from archscore.estimators.ranking import ranking_report
from archscore.estimators.scoring import ProgressCallback, score_many
from archscore.estimators.spaces.base import PUBLISHED, Arch, get_space
from archscore.estimators.truth import GroundTruth


def published_cells(space: str) -> list[Arch]:
    """Architectures that have published proxy scores (NB201: 9,445 cells), in a fixed order."""
    sp = get_space(space)
    return sp.published_archs() if sp.has(PUBLISHED) else []


def published_sample(space: str, n: int, seed: int) -> list[Arch]:
    """``n`` of the published cells (all, where there are fewer) drawn with ``seed``: the sample
    ``archscore evaluate --from-published --sample N --seed SEED`` scores."""
    pool = published_cells(space)
    return random.Random(seed).sample(pool, min(n, len(pool)))


def rank_records(records: Sequence[dict], space: str, estimators: Sequence[str], truth: GroundTruth) -> dict:
    """Ranking criteria per estimator over the records that have ground truth and hold its score (a
    record without the estimator's key was not scored with it, unlike a None score: the estimator could
    not score it, which ranks last)."""
    sp = get_space(space)
    rows = [(r, truth.get(sp.parse(r["arch"]))) for r in records]
    rows = [(r, g) for r, g in rows if g is not None]
    if not rows:
        raise ValueError(f"none of the {len(records)} architectures has ground truth in {truth.column!r}")
    out = {}
    for name in estimators:
        held = [(r, g) for r, g in rows if name in r["scores"]]
        ids = [r["canonical_key"] + r["arch"] for r, _ in held]
        out[name] = ranking_report([r["scores"][name] for r, _ in held], [g for _, g in held], ids)
    return out


def rank_published(records: Sequence[dict], space: str, truth: GroundTruth, estimators: Sequence[str]) -> dict:
    """The same criteria for the published scores of the same cells (where every cell has one)."""
    sp = get_space(space)
    table = sp.published_proxies() if sp.has(PUBLISHED) else {}
    keys = [sp.truth_key(sp.parse(r["arch"])) for r in records]
    out = {}
    for name in estimators:
        column = table.get(name)
        if column is None:
            continue
        pairs = [(column.get(k), truth.values.get(k), r) for k, r in zip(keys, records)]
        if any(s is None for s, g, _ in pairs if g is not None):
            continue
        pairs = [(s, g, r) for s, g, r in pairs if g is not None]
        out[name] = ranking_report(
            [s for s, _, _ in pairs], [g for _, g, _ in pairs], [r["canonical_key"] + r["arch"] for _, _, r in pairs]
        )
    return out


def evaluate(
    archs: Sequence[Arch],
    space: str,
    estimators: list[str],
    protocol: Protocol,
    truth: GroundTruth,
    jobs: int = 1,
    progress: ProgressCallback | None = None,
    device: str = "cpu",
) -> dict:
    """Score ``archs`` and return a JSON-ready report: records, criteria per estimator, and the
    criteria of the published scores on the same cells where those exist."""
    started = time.perf_counter()
    records = score_many(archs, space, estimators, protocol, jobs, progress, device=device)
    seconds = time.perf_counter() - started
    return {
        "space": get_space(space).name,
        "protocol": protocol.model_dump(),
        "protocol_hash": protocol.hash(),
        "device": device,
        "truth": {"column": truth.column, "source": truth.source},
        "n": len(records),
        "seconds": round(seconds, 2),
        "criteria": rank_records(records, space, estimators, truth),
        "published_criteria": rank_published(records, space, truth, estimators),
        "records": list(records),
    }
