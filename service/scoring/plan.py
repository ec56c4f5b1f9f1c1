"""Step 2: plan a valid request -- its job record, its distinct classes and the score keys the workers
fill -- without touching the store."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from archscore.contract import store
from archscore.contract.records import ScoreJob
from archscore.estimators.catalog import scored_estimators
from archscore.estimators.protocol import scored_arch
from archscore.service.scoring.validate import ArchRecord, ValidRequest


@dataclass
class Plan:
    request: ValidRequest
    job: ScoreJob  # the job record, as for a request answered wholly from the cache
    unique: list[str]  # cache keys, each once, in order of first appearance
    score_keys: dict[str, str]  # estimator -> score cache key, for the estimators workers compute
    first: dict[str, ArchRecord]  # cache key -> the first requested architecture of its class

    def scored(self, key: str) -> str:
        """The string form of what a worker scores for the class ``key``: its representative, or with
        per_member the architecture itself (worked out only for classes sent to the workers)."""
        valid = self.request
        arch = scored_arch(valid.space, self.first[key].arch, valid.protocol.per_member)
        return valid.space.to_string(arch)


def score_keys(
    space: str, protocol_hash: str, estimators: list[str], analytic: list[str], predictors: dict[str, list[str]]
) -> dict[str, str]:
    """The cache key of each worker-computed estimator's scores under the protocol (for a population
    estimator or a predictor, its members')."""
    return {
        n: store.score_key(space, protocol_hash, n)
        for n in scored_estimators(estimators, predictors)
        if n not in analytic
    }


def plan(valid: ValidRequest, owner: str = "") -> Plan:
    first: dict[str, ArchRecord] = {}
    for record in valid.archs:
        first.setdefault(record.cache_key, record)
    job = ScoreJob(
        job_id=secrets.token_hex(16),  # 32 hex digits, as uuid4().hex, at a quarter of its cost
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
        predictors=valid.features(),
        cached=len(first),
        created=time.time(),
    )
    keys = score_keys(valid.space.name, valid.protocol_hash, valid.estimators, valid.analytic, job.predictors)
    return Plan(valid, job, list(first), keys, first)
