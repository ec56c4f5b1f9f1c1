"""Step 2: plan a valid request -- its job record, its distinct classes and the score keys the workers
fill -- without touching the store."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from archscore.contract import store
from archscore.contract.records import ScoreJob
from archscore.service.scoring.validate import ValidRequest


@dataclass
class Plan:
    request: ValidRequest
    job: ScoreJob  # the job record, as for a request answered wholly from the cache
    unique: list[str]  # cache keys, each once, in order of first appearance
    score_keys: dict[str, str]  # estimator -> score cache key, for the estimators workers compute
    representative: dict[str, str]  # cache key -> the architecture a worker scores for its class


def score_keys(space: str, protocol_hash: str, estimators: list[str], analytic: list[str]) -> dict[str, str]:
    """The cache key of each worker-computed estimator's scores under the protocol."""
    return {n: store.score_key(space, protocol_hash, n) for n in estimators if n not in analytic}


def plan(valid: ValidRequest, owner: str = "") -> Plan:
    representative: dict[str, str] = {}
    for record in valid.archs:
        representative.setdefault(record.cache_key, record.scored)
    job = ScoreJob(
        job_id=uuid.uuid4().hex,
        owner=owner,
        space=valid.space.name,
        estimators=valid.estimators,
        protocol=valid.protocol_fields,
        protocol_hash=valid.protocol_hash,
        truth=valid.truth,
        archs=[r.text for r in valid.archs],
        canonical=[r.cache_key for r in valid.archs],
        truth_keys=[r.truth_key for r in valid.archs],
        costs=[r.cost for r in valid.archs] if valid.analytic else [],
        cached=len(representative),
        created=time.time(),
    )
    keys = score_keys(valid.space.name, valid.protocol_hash, valid.estimators, valid.analytic)
    return Plan(valid, job, list(representative), keys, representative)
