"""The records kept in Redis as JSON, typed: the API writes jobs, the workers write score cells and
training statuses, and each side reads the other's through these models (archscore.contract.store
names the keys they live under)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ScoreJob(BaseModel):
    """A scoring job: the request as validated (architectures in string form, each with its cache key
    and truth key, in request order) and how its missing classes were cut into chunks."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["scores"] = "scores"
    job_id: str
    owner: str = ""
    space: str
    estimators: list[str]
    protocol: dict[str, Any]
    protocol_hash: str
    truth: str | None  # the stored name of the ground-truth column (archscore.service.truth_tables)
    archs: list[str]
    canonical: list[str]  # the cache key of each architecture (its class, or itself when per_member)
    truth_keys: list[str]
    costs: list[dict[str, float]] = Field(default_factory=list)  # params and flops of each, when asked for
    # the estimators each fitted predictor among ``estimators`` reads (predictor:NAME -> its features)
    predictors: dict[str, list[str]] = Field(default_factory=dict)
    chunk_sizes: list[int] = Field(default_factory=list)  # none: answered wholly from the cache
    cached: int  # distinct classes the cache answered when the job was created
    created: float


TrainingKind = Literal["supernet_training", "supernet_average"]


class TrainingJob(BaseModel):
    """A supernet training or averaging job; its progress is the worker's TrainingStatus."""

    model_config = ConfigDict(extra="ignore")

    kind: TrainingKind
    job_id: str
    owner: str = ""
    name: str
    config: dict[str, Any]  # the training config, or {"average_of": [sources]}
    resume: bool
    created: float


Job = ScoreJob | TrainingJob

TrainingState = Literal["queued", "running", "done", "failed", "cancelled"]


class TrainingStatus(BaseModel):
    """What a training worker reports while it runs and when it ends."""

    status: TrainingState
    progress: dict[str, Any] = Field(default_factory=dict)
    checkpoint: dict[str, Any] | None = None
    error: str | None = None

    @property
    def unfinished(self) -> bool:
        return self.status in ("queued", "running")


class ScoreCell(BaseModel):
    """One estimator's score of one isomorphism class (or architecture), as a worker caches it."""

    value: float | None
    reason: str | None = None  # why the value is None
    per_batch: list[float | None] | None = None
    device: str | None = None


class ChunkStats(BaseModel):
    """The scoring chunks of one estimator set, as the workers counted them (for /metrics): how many ran,
    their seconds in all, how many ended with an error, and the cumulative duration buckets
    (upper bound in seconds, chunks at most that long)."""

    count: int = 0
    seconds: float = 0.0
    failures: int = 0
    buckets: list[tuple[float, int]] = Field(default_factory=list)


class StudyRecord(BaseModel):
    """A study over the API: its request, the scoring jobs of the protocols it reads, then its result."""

    model_config = ConfigDict(extra="ignore")

    study_id: str
    owner: str = ""
    study: str
    space: str
    estimators: list[str]
    truth: str | None
    options: dict[str, Any]
    protocol: dict[str, Any]
    jobs: list[ScoreJob]
    created: float
    result: dict[str, Any] | None = None
    cancelled: bool = False


class PredictorRecord(BaseModel):
    """A few-shot predictor fitted over the API: its request, the scoring job of its training set, then
    the fitted model (archscore.estimators.predictor.PredictorModel as JSON) or why it could not be fitted."""

    model_config = ConfigDict(extra="ignore")

    name: str
    owner: str = ""
    space: str
    truth: str  # the stored name of the ground-truth column (archscore.service.truth_tables)
    estimators: list[str]
    encoding: bool
    prior: list[str] = []  # the prior's members, among estimators (none: stored before predictors had one)
    seed: int
    protocol: dict[str, Any]
    protocol_hash: str
    job: ScoreJob
    created: float
    model: dict[str, Any] | None = None
    error: str | None = None
    cancelled: bool = False
