"""Request and response bodies of the HTTP API (pydantic v2)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.config import JsonDict

from archscore.estimators.analysis.isomorphism_spread import DEFAULT_MEMBERS, MAX_MEMBERS
from archscore.estimators.catalog import BUILT_IN, ONE_SHOT, PREDICTOR_PREFIX, ZERO_SHOT
from archscore.estimators.one_shot.config import TrainSettings
from archscore.estimators.predictor import DEFAULT_ESTIMATORS, MIN_TRAIN
from archscore.estimators.protocol import (
    EVALUATION_IMAGES,
    WEIGHTS_DESCRIPTION,
    OneShotEvaluation,
    OneShotSettings,
    Protocol,
    ProtocolFields,
    field_noting,
)
from archscore.estimators.spaces import DEFAULT_SPACE

TRUTH_NAME = r"^[A-Za-z0-9_\-]{1,64}$"  # ground-truth column names (built-in and uploaded)
PREDICTOR_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"  # a fitted predictor's name (POST /v1/predictors)
PREDICTOR_ESTIMATOR = "^" + PREDICTOR_PREFIX + PREDICTOR_NAME[1:]  # how a score request names it
MAX_IMAGES_PER_ARCH = 4096  # the embedded CIFAR-10 subset has 4,000 training images
EXAMPLE_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
# NAS-Bench-101's Inception-like cell (its colab), and the module hash of a cell of the shipped table
EXAMPLE_NB101_SPEC: JsonDict = {
    "matrix": [
        [0, 1, 1, 1, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    "ops": [
        "input",
        "conv1x1-bn-relu",
        "conv3x3-bn-relu",
        "conv3x3-bn-relu",
        "conv3x3-bn-relu",
        "maxpool3x3",
        "output",
    ],
}
EXAMPLE_NB101_HASH = "4a0ab8bbe2441a002e07b0f445ec2d63"
# DARTS V2 as DARTS prints it, and a genotype of the shipped NB301 table in the JSON form
EXAMPLE_NB301_DARTS = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)
EXAMPLE_NB301_JSON: JsonDict = {
    "normal": [
        ["max_pool_3x3", 0],
        ["dil_conv_3x3", 1],
        ["avg_pool_3x3", 1],
        ["avg_pool_3x3", 0],
        ["sep_conv_3x3", 1],
        ["sep_conv_3x3", 0],
        ["sep_conv_3x3", 1],
        ["skip_connect", 3],
    ],
    "normal_concat": [2, 3, 4, 5],
    "reduce": [
        ["max_pool_3x3", 1],
        ["skip_connect", 0],
        ["sep_conv_3x3", 1],
        ["sep_conv_3x3", 0],
        ["max_pool_3x3", 3],
        ["avg_pool_3x3", 0],
        ["max_pool_3x3", 2],
        ["dil_conv_5x5", 3],
    ],
    "reduce_concat": [2, 3, 4, 5],
}


class ApiOneShot(OneShotEvaluation):
    """How one-shot estimators (oneshot_acc, oneshot_loss) are taken from a supernet checkpoint."""

    supernet: str | None = Field(
        default=None,
        description="checkpoint name or sha256 (a prefix of at least 8 hex digits; GET /v1/supernets); "
        "default: the newest complete checkpoint of the space, else the built-in one (GET /v1/supernets: builtin)",
    )

    def to_settings(self, sha256: str, per_member: bool = False) -> OneShotSettings:
        fields = self.model_dump(exclude={"supernet"})
        if per_member:  # each architecture's own path: no mean over its class
            fields["post_deiso"] = False
        return OneShotSettings(supernet=sha256, **fields)


class ApiProtocol(ProtocolFields):
    """The scoring protocol a client may choose (the data comes from the server's configuration). Its
    fields are the library's (archscore.estimators.protocol.ProtocolFields); the API names a checkpoint
    instead of giving its sha256, and bounds the images an architecture is scored on."""

    model_config = ConfigDict(extra="forbid")

    oneshot: ApiOneShot = Field(
        default_factory=ApiOneShot, description="used only when one-shot estimators are asked for"
    )
    weights: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description=WEIGHTS_DESCRIPTION + ": a checkpoint name or sha256 (a prefix of at least 8 hex digits; "
        "GET /v1/supernets) of the request's space",
    )
    # a FieldInfo as the default declares the field (pydantic), which mypy's pydantic stubs do not model
    per_member: bool = field_noting(ProtocolFields, "per_member", " (here it is set to false)")  # type: ignore[assignment]

    @model_validator(mode="after")
    def _bounded_work(self) -> ApiProtocol:
        if self.batch_size * self.num_batches > MAX_IMAGES_PER_ARCH:
            raise ValueError(f"batch_size x num_batches must be at most {MAX_IMAGES_PER_ARCH}")
        return self

    def to_protocol(
        self, data_root: str | None = None, supernet_sha256: str | None = None, weights_sha256: str | None = None
    ) -> Protocol:
        """The library protocol; one-shot settings only when a checkpoint was resolved for them, and the
        weights' checkpoint by its resolved sha256."""
        oneshot = self.oneshot.to_settings(supernet_sha256, self.per_member) if supernet_sha256 else None
        return Protocol(
            data_root=data_root,
            oneshot=oneshot,
            weights=weights_sha256,
            **self.model_dump(exclude={"oneshot", "weights"}),
        )


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
                },
                {
                    "space": "nb101",
                    "archs": [EXAMPLE_NB101_SPEC, EXAMPLE_NB101_HASH],
                    "estimators": ["synflow", "jacob_cov", "params"],
                    "protocol": {"batch_size": 64, "num_batches": 1, "seed": 20},
                    "truth": "val_accuracy",
                },
                {
                    "space": "nb301",
                    "archs": [EXAMPLE_NB301_DARTS, EXAMPLE_NB301_JSON],
                    "estimators": ["synflow", "relu_logdet", "flops"],
                    "protocol": {"batch_size": 64, "num_batches": 1, "seed": 20},
                    "truth": "val_accuracy",
                },
                {
                    "space": "nds_resnet",
                    "archs": ["d1-2-4_w16-32-64", {"depths": [2, 2, 2], "widths": [32, 64, 128]}],
                    "estimators": ["synflow", "relu_logdet", "params"],
                    "protocol": {"batch_size": 64, "num_batches": 1, "seed": 20},
                },
                {
                    "space": "nds_resnexta",
                    "archs": [
                        "d1-2-4_w16-32-64_b0.25-0.5-1_g1-2-4",
                        {
                            "depths": [1, 1, 2],
                            "widths": [32, 64, 128],
                            "bot_muls": [0.5, 0.5, 0.5],
                            "groups": [2, 2, 2],
                        },
                    ],
                    "estimators": ["synflow", "relu_logdet", "params"],
                    "protocol": {"batch_size": 64, "num_batches": 1, "seed": 20},
                },
                {
                    "space": "onnx",  # the sha256 POST /v1/models answers for an uploaded model
                    "archs": ["9f2c1e07d5b4a8c36e1f0d2b7a9c4e5f61b3d8a0c2e4f6a8b0d1c3e5f7a9b2c4"],
                    "estimators": ["synflow", "snip", "params", "flops"],
                    "protocol": {"batch_size": 64, "num_batches": 1, "seed": 20},
                },
            ]
        },
    )

    space: str = Field(default=DEFAULT_SPACE, description="search space name (GET /v1/spaces)")
    archs: list[Any] = Field(
        min_length=1,
        description="architecture encodings, any the space accepts",
        # documented as the JSON types an encoding can have (never null or a boolean); each is parsed in jobs.py
        json_schema_extra={
            "items": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "array"}, {"type": "object"}]}
        },
    )
    estimators: list[str] = Field(
        min_length=1,
        max_length=64,
        description="estimator names (GET /v1/estimators): the built-in ones listed here, and those of the "
        "plugins installed where the service runs",
        # documented; checked in validate.py
        json_schema_extra={
            "items": {
                "anyOf": [
                    {"type": "string", "enum": list(BUILT_IN)},
                    {"type": "string", "pattern": PREDICTOR_ESTIMATOR, "description": "a fitted predictor"},
                ]
            }
        },
    )
    protocol: ApiProtocol = Field(default_factory=ApiProtocol)
    truth: str | None = Field(
        default=None,
        pattern=TRUTH_NAME,
        description="ground-truth column (built-in or uploaded) for results and statistics; omitted: the space's "
        "first built-in column (nb201: cifar10_test, nb101/nb301: val_accuracy); null: none",
    )

    def truth_column(self, space) -> str | None:
        """The column asked for, or when the field was omitted the space's first built-in column."""
        if "truth" in self.model_fields_set:
            return self.truth
        return space.ground_truth_columns[0] if space.ground_truth_columns else None


SUPERNET_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


class PredictorRequest(BaseModel):
    """A few-shot predictor to fit (archscore.estimators.predictor): its training architectures (a sample
    of ``train`` cells drawn with ``seed``, or ``archs``) are scored with ``estimators`` under ``protocol``,
    then trees are fitted to their ground truth ``truth``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "nb201-100", "space": "nb201", "truth": "cifar10_test", "train": 100, "seed": 0},
                {
                    "name": "cheap",
                    "space": "nb201",
                    "archs": [EXAMPLE_ARCH, [0, 1, 2, 3, 4, 0], 1234, 77, 4000, 5000],
                    "estimators": ["params", "flops"],
                },
            ]
        },
    )

    name: str = Field(pattern=PREDICTOR_NAME, description="its name: score requests name it predictor:NAME")
    space: str = Field(default=DEFAULT_SPACE, description="search space name (GET /v1/spaces)")
    truth: str | None = Field(
        default=None,
        pattern=TRUTH_NAME,
        description="the labels: a ground-truth column (built-in or uploaded); omitted: the space's first",
    )
    train: int | None = Field(
        default=None, ge=MIN_TRAIN, description="fit on a sample of this many architectures (or give archs)"
    )
    seed: int = Field(default=0, ge=0, description="seed of the training sample and of the trees")
    archs: list[Any] | None = Field(
        default=None,
        min_length=MIN_TRAIN,
        description="the training architectures, any encoding the space accepts (instead of train)",
        json_schema_extra={
            "items": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "array"}, {"type": "object"}]}
        },
    )
    estimators: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="the estimators whose scores are features: zero-shot ones, and one-shot ones (oneshot_acc, "
        "oneshot_loss) of the supernet protocol.oneshot names; default: "
        + ", ".join(DEFAULT_ESTIMATORS)
        + ", and oneshot_acc, oneshot_loss where the space has a supernet (protocol.oneshot.supernet, else the "
        "newest complete one, else the built-in one)",
        # checked in service/predictors.py
        json_schema_extra={"items": {"type": "string", "enum": [*ZERO_SHOT, *ONE_SHOT]}},
    )
    encoding: bool = Field(default=True, description="add the space's encoding features (one-hot ops, op counts)")
    prior: str = Field(
        default="auto",
        description="the training-free ensemble the predictions lean on while labels are few (its members are "
        "added to estimators): auto, the space's built-in one; none; or an ensemble:NAME of GET /v1/estimators",
    )
    protocol: ApiProtocol = Field(default_factory=ApiProtocol)

    @model_validator(mode="after")
    def _one_training_set(self) -> PredictorRequest:
        if (self.train is None) == (self.archs is None):
            raise ValueError("give one of train (a sample size) and archs (the training architectures)")
        return self


class StudyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bins: int = Field(default=5, ge=1, le=50, description="complexity_bias: bins of equal size")
    top: int = Field(default=10, ge=1, le=100, description="architecture_bias: architectures listed each way")
    members: int = Field(
        default=DEFAULT_MEMBERS,
        ge=2,
        le=MAX_MEMBERS,
        description="isomorphism_spread: members scored per isomorphism class",
    )
    seeds: list[int] = Field(
        default=[20, 2020, 202020], min_length=2, max_length=5, description="variance: initialisation seeds"
    )
    batches: list[int] = Field(
        default=[1, 3, 5],
        min_length=1,
        max_length=5,
        description="variance: numbers of fixed batches averaged (each 1-32)",
    )
    validation_batches: list[int] = Field(
        default=[1, 2, 3, 5],
        min_length=1,
        max_length=8,
        description="validation_size: numbers of validation batches (each 1-1500; with "
        "oneshot.batch_size they must fit in oneshot.images)",
    )
    supernets: list[Annotated[str, Field(pattern=SUPERNET_NAME)]] = Field(
        default_factory=list,
        max_length=8,
        description="sampler, reduced_sharing: the checkpoints to compare, each by name or sha256 prefix",
    )

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v) or any(not 0 <= s < 2**31 for s in v):
            raise ValueError("seeds must be distinct integers in 0..2^31-1")
        return v

    @field_validator("batches")
    @classmethod
    def _batches(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v) or any(not 1 <= b <= 32 for b in v):
            raise ValueError("batches must be distinct integers in 1..32")
        return v

    @field_validator("validation_batches")
    @classmethod
    def _validation_batches(cls, v: list[int]) -> list[int]:
        most = EVALUATION_IMAGES["held_out"]
        if len(set(v)) != len(v) or any(not 1 <= b <= most for b in v):
            raise ValueError(f"validation_batches must be distinct integers in 1..{most}")
        return v


class StudyRequest(ScoreRequest):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "study": "complexity_bias",
                    "space": "nb201",
                    "archs": [EXAMPLE_ARCH, [0, 1, 2, 3, 4, 0], 1234, 77, 4000],
                    "estimators": ["synflow", "params"],
                    "protocol": {"batch_size": 64},
                    "truth": "cifar10_test",
                    "options": {"bins": 2},
                }
            ]
        },
    )

    study: str = Field(description="the study (GET /v1/studies)")
    options: StudyOptions = Field(default_factory=StudyOptions)


class Progress(BaseModel):
    done: int
    total: int


class ArchResult(BaseModel):
    index: int
    arch: str
    canonical_key: str
    scores: dict[str, float | None]
    reasons: dict[str, str] = Field(default_factory=dict, description="why a score is null")
    devices: dict[str, str] = Field(
        default_factory=dict,
        description="the torch device each worker-computed "
        "score came from (params and flops are computed by the API, exactly)",
    )
    ground_truth: float | None = None
    error: str | None = None


class Job(BaseModel):
    job_id: str
    kind: Literal["scores"] = "scores"
    status: Literal["queued", "running", "done", "cancelled"]
    progress: Progress
    space: str
    estimators: list[str]
    protocol: dict
    protocol_hash: str
    truth: str | None
    cached: int = Field(description="distinct architectures answered from the cache when the job was created")
    results: list[ArchResult] | None = Field(
        default=None, description="present when status is done, or cancelled (architectures not scored carry an error)"
    )
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


class TrainRequest(TrainSettings):
    """Train a supernet of a search space on the server's training data (the embedded CIFAR-10 subset). The
    training settings are the library's (archscore.estimators.one_shot.config.TrainSettings)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "uniform-30", "sampler": "uniform", "epochs": 30},
                {"name": "nb301-small", "space": "nb301", "network": {"C": 8, "layers": 5}, "epochs": 10},
            ]
        },
    )

    name: str = Field(
        pattern=SUPERNET_NAME,
        description="checkpoint name, in the caller's namespace (an operator's checkpoints are shared)",
    )
    resume: bool = Field(default=False, description="continue the checkpoint of this name")

    def train_config(self) -> dict:
        """The worker's TrainConfig fields."""
        return self.model_dump(exclude={"name", "resume"})


class AverageRequest(BaseModel):
    """Average the weights of checkpoints of the same network into a new checkpoint (docs/concepts/estimators.md)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "uniform-avg", "snapshots_of": "uniform"}]}
    )

    name: str = Field(pattern=SUPERNET_NAME, description="name of the averaged checkpoint")
    checkpoints: list[Annotated[str, Field(pattern=SUPERNET_NAME)]] = Field(
        default_factory=list,
        max_length=100,
        description="checkpoints to average, each by name or sha256 (a prefix of at least 8 hex digits)",
    )
    snapshots_of: str | None = Field(
        default=None,
        pattern=SUPERNET_NAME,
        description="also average the snapshots this checkpoint kept of its last epochs (keep_snapshots)",
    )


class TrainingProgress(BaseModel):
    epoch: int = 0
    epochs: int
    step: int = 0
    steps: int = 0
    loss: float | None = None
    seconds_left: float | None = None


class TrainingJob(BaseModel):
    job_id: str
    kind: Literal["supernet_training", "supernet_average"] = "supernet_training"
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    name: str
    config: dict = Field(description='training configuration, or {"average_of": [...]} for an average')
    resume: bool
    progress: TrainingProgress
    checkpoint: dict | None = Field(default=None, description="the checkpoint (as in GET /v1/supernets) when done")
    error: str | None = None


class Predictor(BaseModel):
    name: str
    estimator: str = Field(description="its name in score requests: predictor:NAME")
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: Progress = Field(description="the training set's scoring")
    job_id: str = Field(description="the scoring job of the training set (GET /v1/jobs/{job_id})")
    space: str
    truth: str | None
    estimators: list[str]
    encoding: bool
    prior: list[str] = Field(description="the members of the ensemble its predictions lean on (empty: none)")
    seed: int
    protocol_hash: str = Field(description="score requests naming the predictor use the same protocol")
    train: int | None = Field(description="labelled architectures it was fitted on (when done)")
    library: str | None = Field(description="the LightGBM version that fitted it (when done)")
    error: str | None = Field(description="why it could not be fitted (failed)")
