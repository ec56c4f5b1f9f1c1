"""Request and response bodies of the HTTP API (pydantic v2)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from estimators.protocol import Protocol

MAX_IMAGES_PER_ARCH = 4096  # the embedded CIFAR-10 subset has 4,000 training images
EXAMPLE_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


class ApiProtocol(BaseModel):
    """The scoring protocol a client may choose (the data comes from the server's configuration)."""

    model_config = ConfigDict(extra="forbid")

    dataset: Literal["cifar10", "cifar100"] = "cifar10"
    batch_size: int = Field(default=128, ge=1, le=1024)
    num_batches: int = Field(default=1, ge=1, le=32)
    seed: int = Field(default=20, ge=0, le=2**31 - 1)
    bn_mode: Literal["train", "eval"] = "train"
    data_seed: int = Field(default=20, ge=0, le=2**31 - 1, description="chooses the fixed batches")

    @model_validator(mode="after")
    def _bounded_work(self) -> ApiProtocol:
        if self.batch_size * self.num_batches > MAX_IMAGES_PER_ARCH:
            raise ValueError(f"batch_size x num_batches must be at most {MAX_IMAGES_PER_ARCH}")
        return self

    def to_protocol(self, data_root: str | None = None) -> Protocol:
        return Protocol(data_root=data_root, **self.model_dump())


class ScoreRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "space": "nb201",
                    "archs": [EXAMPLE_ARCH, [0, 1, 2, 3, 4, 0], 1234],
                    "estimators": ["synflow", "jacob_cov", "params"],
                    "protocol": {"batch_size": 128, "num_batches": 1, "seed": 20},
                    "truth": "cifar10_test",
                }
            ]
        },
    )

    space: str = Field(default="nb201", description="search space name (GET /v1/spaces)")
    archs: list[Any] = Field(min_length=1, description="architecture encodings, any the space accepts")
    estimators: list[str] = Field(min_length=1, max_length=64, description="estimator names (GET /v1/estimators)")
    protocol: ApiProtocol = Field(default_factory=ApiProtocol)
    truth: str | None = Field(
        default="cifar10_test", description="ground-truth column (built-in or uploaded) for results and statistics"
    )


class Progress(BaseModel):
    done: int
    total: int


class ArchResult(BaseModel):
    index: int
    arch: str
    canonical_key: str
    scores: dict[str, float | None]
    reasons: dict[str, str] = Field(default_factory=dict, description="why a score is null")
    ground_truth: float | None = None
    error: str | None = None


class Job(BaseModel):
    job_id: str
    status: Literal["queued", "running", "done"]
    progress: Progress
    space: str
    estimators: list[str]
    protocol: dict
    protocol_hash: str
    truth: str | None
    cached: int = Field(description="distinct architectures answered from the cache when the job was created")
    results: list[ArchResult] | None = Field(default=None, description="present when status is done")
    rankings: dict | None = Field(default=None, description="current ranking statistics of the requested estimators")


class ErrorDetail(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    status: int
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    error: ErrorBody
