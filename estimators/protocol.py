"""The scoring protocol: everything besides the architecture that changes a score.

Torch-free, so the API can validate protocols and derive cache keys from them.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.fields import FieldInfo

from archscore.estimators.catalog import COST_MODEL

PROTOCOL_VERSION = 2


VALIDATION_IMAGES = 500  # size of the supernets' fixed validation split (archscore.estimators.one_shot.split)
# images one-shot scores may be taken on, and how many: the validation split, or it and the embedded
# subset's 1,000 test images (archscore.estimators.one_shot.split.held_out)
EVALUATION_IMAGES = {"validation": VALIDATION_IMAGES, "held_out": VALIDATION_IMAGES + 1000}
EvaluationImages = Literal["validation", "held_out"]
IMAGES_DESCRIPTION = (
    "validation: the supernet's 500-image validation split; held_out: that split and the test "
    "images (1,500 for the embedded subset), none of which a supernet trains on"
)


class OneShotEvaluation(BaseModel):
    """How one-shot scores are taken from a supernet (docs/concepts/estimators.md), whichever checkpoint it is."""

    model_config = ConfigDict(extra="forbid")

    bn_mode: Literal["train", "recalibrate"] = Field(
        default="train",
        description="train: batch statistics (the paper's default); recalibrate: statistics "
        "re-estimated for the architecture on 4 training batches",
    )
    post_deiso: bool = Field(
        default=True, description="score = mean over the isomorphism class (false: the class representative)"
    )
    images: EvaluationImages = Field(default="validation", description=IMAGES_DESCRIPTION)
    batch_size: int = Field(default=100, ge=1, le=EVALUATION_IMAGES["held_out"], description="images per batch")
    num_batches: int = Field(
        default=5,
        ge=1,
        le=EVALUATION_IMAGES["held_out"],
        description="number of batches (scores are their mean); batch_size x num_batches must fit in the images",
    )

    @model_validator(mode="after")
    def _within_images(self):
        most = EVALUATION_IMAGES[self.images]
        if self.batch_size * self.num_batches > most:
            raise ValueError(
                f"batch_size x num_batches must be at most {most} (the {self.images.replace('_', '-')} images)"
            )
        return self


class OneShotSettings(OneShotEvaluation):
    """One-shot evaluation of the checkpoint whose weights have sha256 ``supernet``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    supernet: str = Field(pattern="^[0-9a-f]{64}$", description="sha256 of the checkpoint's weights")


WEIGHTS_DESCRIPTION = (
    "a supernet checkpoint: each architecture's network is built at the checkpoint's size and, "
    "with init supernet, takes the weights of its path through the supernet (BN statistics "
    "included) instead of a random init of seed; none: the space's default network, random init"
)
INIT_DESCRIPTION = (
    "with weights: supernet (the path's trained weights) or random (the random init of seed at the "
    "checkpoint's size: the like-for-like baseline of RQ4); ignored without weights"
)
PER_MEMBER_DESCRIPTION = (
    "score every architecture as given and cache it on its own; default: one score per "
    "isomorphism class (its representative's), which every member shares. One-shot scores "
    "need oneshot.post_deiso false with it"
)
Inputs = Literal["images", "shuffled_labels", "noise"]
INPUTS_DESCRIPTION = (
    "what the fixed batches hold: the dataset's images and labels; the same images with their "
    "labels shuffled within each batch; or Gaussian noise of the same shape with the same labels"
)


def cache_key(space, arch, per_member: bool) -> str:
    """What a score of ``arch`` is cached under: its isomorphism class, or with ``per_member`` the
    architecture itself (its string form)."""
    return space.to_string(arch) if per_member else space.canonical_key(arch)


def scored_arch(space, arch, per_member: bool):
    """The architecture a worker scores for ``arch``: its class's representative, or itself."""
    return arch if per_member else space.representative(arch)


# exact functions of the architecture as written, never shared by its isomorphism class (members can
# differ in ops on edges that do not reach the output); the service computes them itself in spaces with
# a cost model
PER_ARCHITECTURE = COST_MODEL


class ProtocolFields(BaseModel):
    """The protocol's fields that every surface shares -- the library's :class:`Protocol`, the HTTP API's
    ``protocol`` and the command line's options (each option named after its field): names, types,
    defaults, bounds and descriptions are declared here only."""

    model_config = ConfigDict(extra="forbid")

    dataset: Literal["cifar10", "cifar100"] = Field(default="cifar10", description="the dataset of the fixed batches")
    batch_size: int = Field(default=128, ge=1, le=1024, description="images per batch")
    num_batches: int = Field(default=1, ge=1, le=32, description="number of fixed batches (scores are their mean)")
    seed: int = Field(default=20, ge=0, le=2**31 - 1, description="seed of the network initialisation")
    bn_mode: Literal["train", "eval"] = Field(
        default="train", description="train: batch statistics; eval: running statistics"
    )
    data_seed: int = Field(default=20, ge=0, le=2**31 - 1, description="chooses the fixed batches")
    inputs: Inputs = Field(default="images", description=INPUTS_DESCRIPTION)
    init: Literal["supernet", "random"] = Field(default="supernet", description=INIT_DESCRIPTION)
    per_member: bool = Field(default=False, description=PER_MEMBER_DESCRIPTION)


def field_noting(model: type[BaseModel], name: str, note: str) -> FieldInfo:
    """``model``'s field ``name`` as declared (type, default, bounds), its description followed by ``note``:
    for a surface that says more about the field without declaring it again."""
    info = copy.copy(model.model_fields[name])
    info.description = f"{info.description}{note}"
    return info


class Protocol(ProtocolFields):
    """Defaults follow the paper: batch 128, the same fixed batches for every architecture, BN in
    train mode. ``seed`` seeds the network initialisation (the paper uses 20, 2020, 202020);
    ``data_seed`` chooses the fixed batches, so changing the init seed keeps the data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_root: str | None = Field(
        default=None, description="folder with cifar-10-batches-py / cifar-100-python data; none: embedded subset"
    )
    oneshot: OneShotSettings | None = Field(default=None, description="set when one-shot estimators are asked for")
    weights: str | None = Field(
        default=None, pattern="^[0-9a-f]{64}$", description=WEIGHTS_DESCRIPTION + " (sha256 of the checkpoint)"
    )

    @model_validator(mode="after")
    def _members_are_scored_alone(self):
        if self.per_member and self.oneshot is not None and self.oneshot.post_deiso:
            raise ValueError("per_member scores each architecture alone: set oneshot.post_deiso to false")
        return self

    def cache_key(self, space, arch) -> str:
        return cache_key(space, arch, self.per_member)

    @property
    def num_classes(self) -> int:
        return 100 if self.dataset == "cifar100" else 10

    def key_fields(self, dumped: dict | None = None) -> dict:
        """The fields the hash covers; ``dumped``: this protocol's ``model_dump()`` when the caller has it
        already (it is not changed)."""
        fields = dict(self.model_dump() if dumped is None else dumped)
        if fields["oneshot"] is None:  # zero-shot protocols keep the hashes they had before one-shot existed
            del fields["oneshot"]
        elif fields["oneshot"]["images"] == "validation":  # and one-shot ones those before held_out existed
            fields["oneshot"] = {k: v for k, v in fields["oneshot"].items() if k != "images"}
        if fields["inputs"] == "images":  # and those on real images the hashes they had before inputs existed
            del fields["inputs"]
        if fields["weights"] is None:  # and those on random init the hashes they had before weights existed
            del fields["weights"], fields["init"]
        if not fields["per_member"]:  # and those scored per class the hashes they had before per_member existed
            del fields["per_member"]
        return {"v": PROTOCOL_VERSION, **fields}

    def hash(self, dumped: dict | None = None) -> str:
        """Stable short hash of the protocol, part of every score cache key (``dumped`` as in key_fields)."""
        text = json.dumps(self.key_fields(dumped), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]
