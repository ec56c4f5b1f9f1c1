"""How a supernet is trained: the settings every surface shares (the library's TrainConfig, the HTTP API's
training request, the ``archscore supernet train`` options), declared once.

Torch-free, so the API can validate a training request without loading torch.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from archscore.estimators.spaces import DEFAULT_SPACE

Sampler = Literal["uniform", "deiso", "fair"]  # the samplers of archscore.estimators.one_shot.samplers
Schedule = Literal["plateau", "cosine"]
SCHEDULES = get_args(Schedule)


class TrainSettings(BaseModel):
    """A supernet training's settings that a user chooses (docs/concepts/estimators.md)."""

    model_config = ConfigDict(extra="forbid")

    space: str = Field(
        default=DEFAULT_SPACE, description="search space (those listing 'supernet' in archscore spaces, GET /v1/spaces)"
    )
    network: dict[str, int] = Field(
        default_factory=dict,
        max_length=16,
        description="the space's supernet settings over its defaults (supernet_network in archscore spaces, "
        "GET /v1/spaces); when resuming, omitted settings are the checkpoint's",
    )
    sampler: Sampler = Field(
        default="uniform",
        description="the architectures of a step: uniform (every choice "
        "i.i.d.), deiso (uniform over isomorphism classes) or fair (FairNAS: every option "
        "once per step)",
    )
    epochs: int = Field(default=30, ge=1, le=2000, description="total epochs (with resume: continue up to this)")
    archs_per_step: int = Field(default=1, ge=1, le=32, description="S architectures per step")
    batch_size: int = Field(default=128, ge=2, le=1024, description="training images per step")
    lr: float = Field(default=0.05, gt=0, le=10, description="initial learning rate (SGD with momentum)")
    patience: int = Field(
        default=3, ge=0, le=1000, description="plateau: epochs without improvement before the LR is halved"
    )
    schedule: Schedule = Field(
        default="plateau",
        description="plateau: halve the LR on a plateau; cosine: anneal it per step to 0 at the last epoch",
    )
    augment: bool = Field(default=True, description="random crops and horizontal flips")
    seed: int = Field(
        default=0,
        ge=0,
        le=2**31 - 1,
        description="seed of the initialisation, the sampled architectures and the batches",
    )
    steps_per_epoch: int | None = Field(
        default=None, ge=1, le=1_000_000, description="default: one pass over the training split"
    )
    keep_snapshots: int = Field(
        default=0,
        ge=0,
        le=50,
        description="also keep the weights of the last K epochs (in the checkpoint's snapshots/, to average them)",
    )
