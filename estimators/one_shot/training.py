"""Train a search space's supernet (docs/concepts/estimators.md).

A step samples S architectures, averages each parameter's gradient over the architectures that used
it, clips the global norm at 5 and takes an SGD step (momentum, weight decay). Schedules: ``plateau``
(the paper's reference setting) halves the learning rate when the validation loss has not improved for ``patience``
epochs; the validation loss is the mean over a fixed set of cells on fixed validation batches, so that
epochs are comparable. ``cosine`` anneals it per step from ``lr`` towards 0 at ``epochs`` (for a fixed
budget: the weights settle at the end instead of moving with the last architectures sampled). Data: a
fixed train/validation split of the training images (the embedded CIFAR-10 subset by default),
with random crops and horizontal flips (``augment``). Runs on CUDA when available.
"""

from __future__ import annotations

import math
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, ValidationError, model_validator

from archscore.estimators.datasets import fixed_batches, load_dataset
from archscore.estimators.one_shot.checkpoints import load_checkpoint, save_checkpoint
from archscore.estimators.one_shot.config import SCHEDULES, TrainSettings
from archscore.estimators.one_shot.evaluation import evaluate_arch
from archscore.estimators.one_shot.registry import MANIFEST, OPTIMIZER, SNAPSHOTS, CheckpointError
from archscore.estimators.one_shot.samplers import SAMPLERS
from archscore.estimators.one_shot.split import split
from archscore.estimators.spaces import DEFAULT_SPACE, get_space
from archscore.estimators.spaces.base import ISOMORPHISM, Arch

VALIDATION_CELLS = 16  # fixed cells whose mean validation loss drives the plateau schedule


def cosine_lr(lr: float, step: int, total_steps: int) -> float:
    """The cosine schedule's learning rate at ``step`` (0-based) of ``total_steps``."""
    return lr * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))


class TrainConfig(TrainSettings):
    """A supernet training: the settings a user chooses (TrainSettings: the command line's and the API's)
    and those only the library sets. Refuses bad values on construction with the ValueError messages it
    always had ("unknown sampler ...", "... out of range")."""

    momentum: float = Field(default=0.9, ge=0, lt=1, description="SGD momentum")
    weight_decay: float = Field(default=5e-4, ge=0, description="SGD weight decay")
    grad_clip: float = Field(default=5.0, gt=0, description="the global gradient norm is clipped at this")
    dataset: Literal["cifar10", "cifar100"] = Field(default="cifar10", description="the training images' dataset")
    data_root: str | None = Field(
        default=None, description="folder with the full CIFAR python batches; none: the embedded subset"
    )

    @model_validator(mode="wrap")
    @classmethod
    def _library_messages(cls, data, handler):
        try:
            return handler(data)
        except ValidationError as exc:
            raise ValueError(_config_message(exc)) from None

    def check(self) -> None:
        """What only the search space can tell: its supernet settings, and whether it has isomorphism classes."""
        space = get_space(self.space)
        space.supernet_config(self.network)  # NetworkConfigError (a ValueError) names the setting
        if self.sampler == "deiso" and not space.has(ISOMORPHISM):
            raise ValueError(
                f"sampler deiso: search space {space.name} has no isomorphism classes; use uniform or fair"
            )


def _config_message(exc: ValidationError) -> str:
    errors = exc.errors()
    for e in errors:
        if e["type"] == "literal_error" and e["loc"][0] in ("sampler", "schedule"):
            name = e["loc"][0]
            known = SAMPLERS if name == "sampler" else SCHEDULES
            return f"unknown {name} {e['input']!r}; available: {', '.join(known)}"
    bounded = [str(e["loc"][0]) for e in errors if e["loc"] and e["type"] in BOUND_ERRORS]
    if bounded:
        return f"{', '.join(dict.fromkeys(bounded))} out of range"
    return str(exc)


BOUND_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "too_long")


def augment_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 32x32 crops of the zero-padded (by 4) images and random horizontal flips."""
    n = x.shape[0]
    padded = F.pad(x, (4, 4, 4, 4))
    offsets = torch.randint(0, 9, (n, 2), generator=generator).tolist()
    crops = torch.stack([padded[i, :, a : a + 32, b : b + 32] for i, (a, b) in enumerate(offsets)])
    flip = torch.rand(n, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None].to(x.device), crops.flip(3), crops)


def _step(
    supernet: torch.nn.Module,
    archs: list[Arch],
    x,
    y,
    optimizer,
    clip: float,
    should_stop: Callable[[], bool] | None = None,
) -> float:
    """Per-parameter gradient averaging over the architectures that used the parameter. ``should_stop``
    is asked before each architecture (a step of many architectures on a large batch can take minutes)."""
    params = [p for p in supernet.parameters() if p.requires_grad]
    sums: list[torch.Tensor | None] = [None] * len(params)
    counts = [0] * len(params)
    total = 0.0
    for arch in archs:
        if should_stop is not None and should_stop():
            raise TrainingStopped
        loss = F.cross_entropy(supernet(x, arch), y)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for i, g in enumerate(grads):
            if g is not None:
                prev = sums[i]
                sums[i] = g if prev is None else prev + g
                counts[i] += 1
        total += loss.item()
    for p, s, c in zip(params, sums, counts):
        p.grad = None if s is None else s / c
    torch.nn.utils.clip_grad_norm_(params, clip)
    optimizer.step()
    return total / len(archs)


class TrainingStopped(Exception):
    """``should_stop()`` asked the training to stop (a cancelled job); the last checkpoint written stays."""


class TrainingTooLarge(ValueError):
    """The estimated memory of a training step is more than this process may use."""


MEMORY_PROBE_ARCHS = 8  # sampled paths whose feature maps bound a step's memory


def _check_memory(supernet: torch.nn.Module, sampling, config: TrainConfig, device: str) -> None:
    """Refuse, naming a batch size that fits, a training whose step would not fit in memory: one
    architecture's graph is alive at a time (each is differentiated before the next runs), so the peak is
    the largest path's feature maps at the batch size, plus the supernet's parameters and gradients."""
    from archscore.estimators.zero_shot import memory

    paths = SAMPLERS["uniform"](sampling, random.Random(0), MEMORY_PROBE_ARCHS)
    elements = max(memory.feature_elements(supernet, forward=lambda x, a=a: supernet(x, a)) for a in paths)
    params = sum(p.numel() for p in supernet.parameters())
    limit = memory.memory_limit(device)
    needed = memory.scoring_bytes(elements, params, config.batch_size)
    if needed > limit:
        fits = memory.largest_batch(elements, params, limit)
        raise TrainingTooLarge(
            f"a training step needs about {needed / 2**30:.1f} GiB at batch_size {config.batch_size}, over the "
            f"{limit / 2**30:.1f} GiB this process may use ({memory.MEMORY_LIMIT_ENV}); "
            + (f"a batch_size of at most {fits} fits" if fits else "no batch size fits")
        )


def _optimizer(supernet: torch.nn.Module, config: TrainConfig):
    optimizer = torch.optim.SGD(
        supernet.parameters(), config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=config.patience)
    return optimizer, scheduler


def train(
    config: TrainConfig,
    out: Path,
    resume: bool = False,
    progress: Callable[[dict], None] | None = None,
    device: str = "cpu",
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Train for ``config.epochs`` epochs in total (continuing from ``out`` when ``resume``); a
    checkpoint is written after every epoch. ``progress`` gets epoch, step, loss and seconds left.
    ``should_stop()`` is asked between architectures and validation cells: True raises TrainingStopped.
    A step estimated not to fit in memory raises TrainingTooLarge before any training."""
    config.check()
    out = Path(out)
    train_set, val_set = split(load_dataset(config.dataset, "train", config.data_root))
    val_batches = [(x.to(device), y.to(device)) for x, y in fixed_batches(val_set, 100, 2, seed=0)]
    space = get_space(config.space)
    torch.manual_seed(config.seed)
    supernet = space.make_supernet(**space.supernet_config(config.network), num_classes=train_set.num_classes)
    supernet = supernet.to(device)
    optimizer, scheduler = _optimizer(supernet, config)
    start, history = 0, []
    if resume and (out / MANIFEST).exists():
        supernet, manifest = load_checkpoint(out, device)
        if manifest.get("space", DEFAULT_SPACE) != space.name or not (out / OPTIMIZER).exists():
            raise CheckpointError(f"{out}: cannot resume (no optimizer state, or a supernet of another space)")
        if any(supernet.config.get(k) != v for k, v in config.network.items()):  # settings given must match
            raise CheckpointError(
                f"{out}: cannot resume with other network settings than the checkpoint's {manifest['network']}"
            )
        optimizer, scheduler = _optimizer(supernet, config)
        optimizer.load_state_dict(torch.load(out / OPTIMIZER, map_location=device, weights_only=True))
        start, history = manifest["epochs"], manifest["history"]
        for h in history:  # replay the schedule's memory of the validation losses
            scheduler.step(h["val_loss"])
        for group in optimizer.param_groups:
            group["lr"] = history[-1]["lr"] if history else config.lr
    elif (out / MANIFEST).exists():
        raise CheckpointError(f"{out} already holds a checkpoint; resume it or choose another folder")
    sampling = supernet.sampling_space(space)  # the architectures this supernet covers
    _check_memory(supernet, sampling, config, device)
    val_cells = SAMPLERS["uniform"](sampling, random.Random(12345), VALIDATION_CELLS)
    if start >= config.epochs:
        raise CheckpointError(f"nothing to train: the checkpoint in {out} already has {start} epochs")
    rng = random.Random(config.seed * 1000 + start)
    generator = torch.Generator().manual_seed(config.seed * 1000 + start)
    steps = config.steps_per_epoch or len(train_set) // config.batch_size
    started = time.perf_counter()
    seconds_before = history[-1]["seconds"] if history else 0.0  # training time of earlier runs (resume)
    manifest = {}
    for epoch in range(start, config.epochs):
        supernet.train()
        batches = fixed_batches(
            train_set,
            config.batch_size,
            min(steps, len(train_set) // config.batch_size),
            seed=config.seed * 1000 + epoch,
        )
        losses = []
        for step in range(steps):
            x, y = batches[step % len(batches)]
            if config.augment:
                x = augment_batch(x, generator)
            archs = SAMPLERS[config.sampler](sampling, rng, config.archs_per_step)
            if config.schedule == "cosine":
                for group in optimizer.param_groups:
                    group["lr"] = cosine_lr(config.lr, epoch * steps + step, config.epochs * steps)
            losses.append(_step(supernet, archs, x.to(device), y.to(device), optimizer, config.grad_clip, should_stop))
            if progress:
                done = (epoch - start) * steps + step + 1
                total = (config.epochs - start) * steps
                elapsed = time.perf_counter() - started
                progress(
                    {
                        "epoch": epoch + 1,
                        "epochs": config.epochs,
                        "step": step + 1,
                        "steps": steps,
                        "loss": losses[-1],
                        "seconds_left": elapsed / done * (total - done),
                    }
                )
        if not all(math.isfinite(loss) for loss in losses):
            raise RuntimeError(f"training diverged in epoch {epoch + 1} (non-finite loss)")
        val_loss = -sum(_validation_loss(supernet, a, val_batches, should_stop) for a in val_cells) / len(val_cells)
        if config.schedule == "plateau":
            scheduler.step(val_loss)
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": sum(losses) / len(losses),
                "val_loss": val_loss,
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": seconds_before + time.perf_counter() - started,
            }
        )
        fields = {
            "sampler": config.sampler,
            "epochs": epoch + 1,
            "complete": epoch + 1 == config.epochs,
            "dataset": config.dataset,
            "seed": config.seed,
            "train_config": config.model_dump(),
            "history": history,
            "updated": time.time(),
        }
        manifest = save_checkpoint(out, supernet, optimizer, fields)
        if config.keep_snapshots:
            _snapshot(out / SNAPSHOTS, supernet, fields, epoch + 1, config.keep_snapshots)
    return manifest


def _validation_loss(supernet, arch, batches, should_stop: Callable[[], bool] | None) -> float:
    if should_stop is not None and should_stop():
        raise TrainingStopped
    return evaluate_arch(supernet, arch, batches)["oneshot_loss"]


def _snapshot(folder: Path, supernet: torch.nn.Module, fields: dict, epoch: int, keep: int) -> None:
    """The weights of this epoch as a checkpoint of its own (no optimizer state); only the last ``keep`` stay."""
    save_checkpoint(folder / f"epoch-{epoch:04d}", supernet, None, fields)
    for old in sorted(folder.glob("epoch-*"))[:-keep]:
        shutil.rmtree(old)


def snapshots(out: Path) -> list[Path]:
    """Snapshot checkpoints kept by ``keep_snapshots``, oldest first."""
    return sorted((Path(out) / SNAPSHOTS).glob("epoch-*"))
