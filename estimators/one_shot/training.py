"""Train, checkpoint and evaluate the NB201 supernet (SPEC §4).

A step samples S architectures, averages each parameter's gradient over the architectures that used
it, clips the global norm at 5 and takes an SGD step (momentum, weight decay); the learning rate is
halved when the validation loss stops improving. Data: a fixed train/validation split of the
training images (the embedded CIFAR-10 subset by default), no augmentation.

Checkpoint folder: ``weights.pt`` (a state dict, loaded with ``weights_only=True``), ``optimizer.pt``
(for resuming) and ``manifest.json`` (space, network config, sampler, epochs, dataset, seed, sha256
of the weights).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from estimators.datasets import ImageSet, fixed_batches, load_dataset
from estimators.one_shot.samplers import SAMPLERS
from estimators.one_shot.supernet import NB201Supernet
from estimators.spaces.nb201 import Arch

WEIGHTS, OPTIMIZER, MANIFEST = "weights.pt", "optimizer.pt", "manifest.json"
VALIDATION_IMAGES = 500


@dataclass
class TrainConfig:
    sampler: str = "uniform"
    archs_per_step: int = 1
    epochs: int = 1
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    grad_clip: float = 5.0
    seed: int = 0
    dataset: str = "cifar10"
    data_root: str | None = None
    C: int = 16
    N: int = 5


def split(images: ImageSet) -> tuple[ImageSet, ImageSet]:
    """The fixed train/validation split: the last VALIDATION_IMAGES of a seed-0 permutation validate."""
    order = np.random.default_rng(0).permutation(len(images))
    val, train = order[-VALIDATION_IMAGES:], order[:-VALIDATION_IMAGES]
    def part(idx: np.ndarray, tag: str) -> ImageSet:
        return ImageSet(images.x[idx], images.y[idx], images.num_classes, images.name, f"{images.source} ({tag})")

    return part(train, "train split"), part(val, "validation split")


def _step(supernet: NB201Supernet, archs: list[Arch], x, y, optimizer, clip: float) -> float:
    """Per-parameter gradient averaging over the architectures that used the parameter."""
    params = [p for p in supernet.parameters() if p.requires_grad]
    sums: list[torch.Tensor | None] = [None] * len(params)
    counts = [0] * len(params)
    total = 0.0
    for arch in archs:
        loss = F.cross_entropy(supernet(x, arch), y)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for i, g in enumerate(grads):
            if g is not None:
                sums[i] = g if sums[i] is None else sums[i] + g
                counts[i] += 1
        total += loss.item()
    for p, s, c in zip(params, sums, counts):
        p.grad = None if s is None else s / c
    torch.nn.utils.clip_grad_norm_(params, clip)
    optimizer.step()
    return total / len(archs)


def evaluate_arch(supernet: NB201Supernet, arch: Arch, batches, bn_mode: str = "train") -> dict[str, float]:
    """Top-1 accuracy and negated mean loss over ``batches``; BN in train mode by default (the paper's)."""
    supernet.train(bn_mode == "train")
    correct = seen = 0
    loss = 0.0
    with torch.no_grad():
        for x, y in batches:
            out = supernet(x, arch)
            loss += F.cross_entropy(out, y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
            seen += len(y)
    return {"oneshot_acc": correct / seen, "oneshot_loss": -loss / seen}


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_checkpoint(folder: Path, supernet: NB201Supernet, optimizer, config: TrainConfig, epochs_done: int, history: list) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(supernet.state_dict(), folder / WEIGHTS)
    torch.save(optimizer.state_dict(), folder / OPTIMIZER)
    manifest = {
        "space": "nb201",
        "network": supernet.config,
        "sampler": config.sampler,
        "epochs": epochs_done,
        "dataset": config.dataset,
        "seed": config.seed,
        "train_config": asdict(config),
        "history": history,
        "sha256": sha256_file(folder / WEIGHTS),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def load_checkpoint(folder: Path) -> tuple[NB201Supernet, dict]:
    """Load safely (weights_only) and check the weights against the manifest's sha256."""
    folder = Path(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    if sha256_file(folder / WEIGHTS) != manifest["sha256"]:
        raise ValueError(f"{folder / WEIGHTS}: sha256 differs from the manifest")
    supernet = NB201Supernet(**manifest["network"])
    supernet.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True))
    return supernet, manifest


def train(
    config: TrainConfig, out: Path, resume: bool = False, progress: Callable[[dict], None] | None = None
) -> dict:
    """Train for ``config.epochs`` epochs in total (continuing from ``out`` when ``resume``)."""
    if config.sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {config.sampler!r}; available: {', '.join(SAMPLERS)}")
    train_set, val_set = split(load_dataset(config.dataset, "train", config.data_root))
    val_batches = fixed_batches(val_set, 100, len(val_set) // 100, seed=0)
    torch.manual_seed(config.seed)
    supernet = NB201Supernet(C=config.C, N=config.N, num_classes=train_set.num_classes)
    optimizer = torch.optim.SGD(supernet.parameters(), config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=1)
    start, history = 0, []
    if resume and (Path(out) / MANIFEST).exists():
        supernet, manifest = load_checkpoint(Path(out))
        optimizer = torch.optim.SGD(supernet.parameters(), config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
        optimizer.load_state_dict(torch.load(Path(out) / OPTIMIZER, weights_only=True))
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=1)
        start, history = manifest["epochs"], manifest["history"]
    rng = random.Random(config.seed * 1000 + start)
    steps = len(train_set) // config.batch_size
    started = time.perf_counter()
    manifest = None
    for epoch in range(start, config.epochs):
        supernet.train()
        batches = fixed_batches(train_set, config.batch_size, steps, seed=config.seed * 1000 + epoch)
        losses = []
        for step, (x, y) in enumerate(batches):
            archs = SAMPLERS[config.sampler](rng, config.archs_per_step)
            losses.append(_step(supernet, archs, x, y, optimizer, config.grad_clip))
            if progress:
                done = (epoch - start) * steps + step + 1
                total = (config.epochs - start) * steps
                elapsed = time.perf_counter() - started
                progress({"epoch": epoch + 1, "step": step + 1, "steps": steps, "loss": losses[-1],
                          "seconds_left": elapsed / done * (total - done)})
        val = [evaluate_arch(supernet, a, val_batches)["oneshot_loss"] for a in SAMPLERS["uniform"](random.Random(epoch), 8)]
        val_loss = -sum(val) / len(val)
        scheduler.step(val_loss)
        history.append({"epoch": epoch + 1, "train_loss": sum(losses) / len(losses), "val_loss": val_loss,
                        "lr": optimizer.param_groups[0]["lr"]})
        manifest = save_checkpoint(Path(out), supernet, optimizer, config, epoch + 1, history)
    if manifest is None:
        raise ValueError(f"nothing to train: the checkpoint in {out} already has {start} epochs")
    if not all(math.isfinite(h["train_loss"]) for h in history):
        raise RuntimeError("training diverged (non-finite loss)")
    return manifest
