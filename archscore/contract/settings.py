"""All service and worker settings, from environment variables prefixed ARCHSCORE_ (one declaration each)."""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from archscore.estimators.device import DEVICE_HELP, DEVICE_PATTERN

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARCHSCORE_", extra="ignore")

    redis_url: str | None = Field(
        default=None, description="Redis used as broker, result store and score cache; none: `archscore up` starts one"
    )
    api_keys: list[str] = Field(
        default_factory=list,
        description="when set, every /v1 call needs X-API-Key; "
        "each key sees only the jobs, studies and truth tables it created",
    )
    admin_keys: list[str] = Field(
        default_factory=list,
        description="keys of the operator: valid wherever api_keys "
        "are, and see, list and cancel what every key created",
    )
    rate_limit_per_minute: int = Field(
        default=1200,
        ge=0,
        description="/v1 requests per key and minute when keys are set (429 with Retry-After past it); 0: no limit",
    )
    max_active_jobs_per_key: int = Field(
        default=20,
        ge=1,
        description="unfinished scoring and training jobs per key "
        "(a study counts its scoring jobs) when keys are set; more is a 429",
    )
    max_truth_tables_per_key: int = Field(
        default=10, ge=0, description="uploaded ground-truth tables kept per key when keys are set (507 past it)"
    )
    max_archs_per_request: int = 2000
    max_work_per_request: int = Field(
        default=3_000_000,
        ge=1,
        description="bound on architectures x estimators x images per architecture "
        "of one score request (2,000 cells x 10 estimators x 128 images fit)",
    )
    max_body_bytes: int = 2_000_000
    upload_timeout_seconds: float = Field(
        default=30.0, gt=0, description="a request body must arrive whole within this many seconds (else 408)"
    )
    max_training_work: int = Field(
        default=100_000_000,
        ge=1,
        description="bound on epochs x steps per epoch x architectures per step x batch "
        "size of one supernet training (images through the supernet; 300 epochs of the full CIFAR-10 at batch "
        "128 with 2 architectures per step fit)",
    )
    max_truth_rows: int = Field(default=100_000, ge=1, description="rows of one uploaded ground-truth table")
    max_truth_tables: int = Field(
        default=20,
        ge=0,
        description="uploaded ground-truth tables kept at once "
        "(all spaces); more are refused (507) until one is deleted",
    )
    max_models: int = Field(
        default=20, ge=0, description="uploaded ONNX models kept at once; more are refused (507) until one is deleted"
    )
    max_predictors: int = Field(
        default=50, ge=0, description="few-shot predictors kept per key (or in all, without keys); 507 past it"
    )
    max_model_bytes: int = Field(
        default=64 * 2**20, ge=1, description="bound on one uploaded ONNX model (POST /v1/models; 413 past it)"
    )
    max_truth_rows_total: int = Field(
        default=500_000,
        ge=0,
        description="rows of all uploaded ground-truth tables together; an upload past it is refused (507)",
    )
    chunk_size: int = 8
    max_wait_seconds: float = 60.0
    allow_unbounded_redis: bool = Field(
        default=False,
        description="readyz counts a Redis without maxmemory (or with an allkeys-* policy) as not "
        "ready; true where its memory is bounded otherwise (a container's memory limit). The service never "
        "changes an external Redis's settings",
    )
    job_ttl_seconds: int = Field(default=24 * 3600, ge=1, description="how long a finished job stays readable")
    cached_job_ttl_seconds: int = Field(
        default=300, ge=1, description="how long the job record of a request answered wholly from the cache stays"
    )
    cache_ttl_seconds: int = Field(
        default=30 * 24 * 3600,
        ge=1,
        description="scores, rankings and protocol records expire this long after "
        "they were last used (every use renews it)",
    )
    redis_maxmemory: str = Field(
        default="512mb",
        description="memory cap of the embedded Redis (`archscore up`); when full it evicts "
        "least recently used cache entries, never queues or unfinished jobs; 0: no cap",
    )
    data_dir: str = ".archscore"
    supernet_dir: str | None = Field(
        default=None, description="folder of supernet checkpoints (one folder each); none: {data_dir}/supernets"
    )
    checkpoint_source: str | None = Field(
        default=None,
        description="base URL of an archscore API (e.g. http://api-host:8000) from which a worker downloads a "
        "supernet checkpoint its supernet folder lacks, before scoring one-shot estimators with it (workers on "
        "hosts without the API's disk); none: only the worker's own folder",
    )
    checkpoint_source_key: str | None = Field(
        default=None, description="the X-API-Key a worker sends to checkpoint_source (when that API has keys)"
    )
    max_checkpoint_bytes: int = Field(
        default=2_000_000_000,
        ge=1,
        description="bound on one downloaded checkpoint (weights and manifest together); a download past it "
        "is stopped and refused",
    )
    visibility_timeout: int = Field(
        default=30,
        ge=3,
        description="seconds after which the chunk of a worker that died whole is redelivered; "
        "live workers refresh the chunks they hold every third of it (workers/heartbeat.py)",
    )
    redis_socket_timeout: float = Field(
        default=10.0,
        ge=2,
        description="seconds a worker (and the API's task sender) waits on one Redis command or connection "
        "before it gives the connection up: a worker cut off from Redis (a network partition, no TCP reset) "
        "fails its chunk and reconnects instead of hanging",
    )
    cifar_root: str | None = Field(
        default=None,
        description="folder holding cifar-10-batches-py and/or cifar-100-python for zero-shot "
        "batches; none: the embedded CIFAR-10 subset (4,000 training images)",
    )
    device: str = Field(default="auto", pattern=DEVICE_PATTERN, description=f"the workers' torch device: {DEVICE_HELP}")
    estimator_modules: list[str] | None = Field(
        default=None,
        description="the modules of estimator plugins (packages declaring estimators in the archscore.estimators "
        "entry point group) whose estimators a worker scores, as a JSON list; an estimator of a plugin whose "
        "module is not listed gets an error per architecture. none: every installed plugin's. A worker imports "
        "a plugin's module when it first scores one of its estimators; the API reads only the plugins' facts",
    )
    fastapi_telemetry: bool = Field(
        default=False,
        description="FastAPI's own OpenTelemetry spans, metrics and logs (FastAPI 0.16x and later; they need an "
        "OpenTelemetry provider). Off, the API skips FastAPI's check for a provider on every request, a tenth of "
        "a cached answer's CPU; /metrics (Prometheus) is there either way",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OpenTelemetry traces of the API and the workers, exported over OTLP/HTTP (protobuf) to this "
        "collector (e.g. http://collector:4318; spans go to its /v1/traces), one trace from a request through the "
        "queue to the worker; none: no tracing, and no tracer, exporter or instrumentation is even imported",
    )
    torch_threads: int = Field(
        default=0,
        ge=0,
        description="CPU threads per worker process; 0: torch's default (all cores). "
        "With several worker processes use cores / processes.",
    )

    @property
    def broker_url(self) -> str:
        """The Redis the API and the workers talk to (the local default when none is set)."""
        return self.redis_url or DEFAULT_REDIS_URL

    @property
    def supernet_path(self) -> Path:
        return Path(self.supernet_dir or Path(self.data_dir) / "supernets")

    @field_validator("api_keys", "admin_keys")
    @classmethod
    def _no_empty_keys(cls, keys: list[str]) -> list[str]:
        if any(not k.strip() for k in keys):
            raise ValueError("API keys must not be empty")
        return keys


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
