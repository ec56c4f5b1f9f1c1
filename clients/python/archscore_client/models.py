"""Typed records of the API's answers (the models of openapi.json). Each keeps the whole JSON body in ``raw``
(``job["field"]`` reads it) for fields added later."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict


class ErrorDetail(TypedDict):
    """One entry of an error's ``details``: the request field and what is wrong with it."""

    field: str
    reason: str


@dataclass(frozen=True)
class ArchResult:
    """One requested architecture's answer, in request order (openapi ``ArchResult``). ``devices``: the torch
    device each worker-computed score ran on (API-computed ones, e.g. params, are absent)."""

    index: int
    arch: str
    canonical_key: str
    scores: dict[str, float | None]
    reasons: dict[str, str] = field(default_factory=dict)
    devices: dict[str, str] = field(default_factory=dict)
    ground_truth: float | None = None
    error: str | None = None

    @classmethod
    def from_json(cls, body: dict) -> ArchResult:
        return cls(
            body["index"],
            body["arch"],
            body["canonical_key"],
            body["scores"],
            body.get("reasons") or {},
            body.get("devices") or {},
            body.get("ground_truth"),
            body.get("error"),
        )


@dataclass(frozen=True)
class Job:
    """A scoring job (``kind`` "scores", openapi ``Job``) or a supernet job (``kind`` "supernet_training" or
    "supernet_average", openapi ``TrainingJob``). Fields of the other kind are None; ``results`` once done."""

    job_id: str
    kind: str
    status: str
    progress: dict[str, Any]
    raw: dict[str, Any]
    results: list[ArchResult] | None = None
    rankings: dict[str, Any] | None = None
    # scoring jobs
    space: str | None = None
    estimators: list[str] | None = None
    protocol: dict[str, Any] | None = None
    protocol_hash: str | None = None
    truth: str | None = None
    cached: int | None = None
    # supernet jobs
    name: str | None = None
    config: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None
    error: str | None = None

    @property
    def done(self) -> bool:
        """The job has ended: done, cancelled or failed."""
        return self.status in ("done", "cancelled", "failed")

    def __getitem__(self, key: str) -> Any:  # the JSON body's fields: job["protocol_hash"], job["checkpoint"]
        return self.raw[key]

    @classmethod
    def from_json(cls, body: dict) -> Job:
        results = body.get("results")
        return cls(
            body["job_id"],
            body.get("kind", "scores"),
            body["status"],
            body.get("progress") or {},
            body,
            None if results is None else [ArchResult.from_json(r) for r in results],
            body.get("rankings"),
            body.get("space"),
            body.get("estimators"),
            body.get("protocol"),
            body.get("protocol_hash"),
            body.get("truth"),
            body.get("cached"),
            body.get("name"),
            body.get("config"),
            body.get("checkpoint"),
            body.get("error"),
        )


@dataclass(frozen=True)
class Study:
    """A study: its progress while its scores are computed, then ``result`` and ``figures`` (name -> path)."""

    study_id: str
    study: str
    status: str
    progress: dict[str, Any]
    raw: dict[str, Any]
    result: dict[str, Any] | None = None
    figures: dict[str, str] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in ("done", "cancelled", "failed")

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    @classmethod
    def from_json(cls, body: dict) -> Study:
        return cls(
            body["study_id"],
            body["study"],
            body["status"],
            body.get("progress") or {},
            body,
            body.get("result"),
            body.get("figures") or {},
        )


@dataclass(frozen=True)
class Rankings:
    """Ranking criteria of every estimator, one entry per protocol (most recently used first)."""

    space: str
    truth: str
    total: int
    rankings: list[dict[str, Any]]
    next_offset: int | None = None

    @classmethod
    def from_json(cls, body: dict) -> Rankings:
        return cls(body["space"], body["truth"], body["total"], body["rankings"], body.get("next_offset"))
