"""One-shot scores of an architecture from a trained supernet (docs/concepts/estimators.md).

``oneshot_acc`` is top-1 accuracy and ``oneshot_loss`` the negated mean cross-entropy (higher is
better for both) over fixed batches of the checkpoint's validation split (or of all its held-out
images: that split and the test images), dropout off. BatchNorm uses batch statistics (``train``,
the paper's default) or statistics recalibrated for the architecture on training batches
(``recalibrate``). With post de-isomorphism the score is the mean over every member of the
architecture's isomorphism class; members that differ only on dead edges run the same supernet
path, so each distinct live path is evaluated once and weighted by its count.
"""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict

import torch
import torch.nn.functional as F
from torch import nn

from archscore.estimators.datasets import fixed_batches, load_dataset
from archscore.estimators.one_shot.split import held_out, split
from archscore.estimators.protocol import EVALUATION_IMAGES
from archscore.estimators.spaces import get_space
from archscore.estimators.spaces.base import ISOMORPHISM, Arch

BN_MODES = ("train", "recalibrate")
RECALIBRATION_BATCHES = 4


def validation_batches(
    manifest: dict, batch_size: int = 100, num_batches: int = 5, seed: int = 0, device="cpu", images: str = "validation"
):
    """Fixed batches of the checkpoint's validation split (500 images for the embedded subset), or
    with ``images="held_out"`` of that split and the test images together (1,500)."""
    if images not in EVALUATION_IMAGES:
        raise ValueError(f"unknown images {images!r}; use one of {', '.join(EVALUATION_IMAGES)}")
    data_root = manifest.get("train_config", {}).get("data_root")
    if images == "held_out":
        pool = held_out(manifest["dataset"], data_root)
    else:
        _, pool = split(load_dataset(manifest["dataset"], "train", data_root))
    return [(x.to(device), y.to(device)) for x, y in fixed_batches(pool, batch_size, num_batches, seed)]


def calibration_batches(
    manifest: dict, batch_size: int = 100, num_batches: int = RECALIBRATION_BATCHES, seed: int = 0, device="cpu"
):
    data_root = manifest.get("train_config", {}).get("data_root")
    train, _ = split(load_dataset(manifest["dataset"], "train", data_root))
    return [(x.to(device), y.to(device)) for x, y in fixed_batches(train, batch_size, num_batches, seed)]


def class_paths(space, arch: Arch) -> list[tuple[Arch, int]]:
    """Distinct supernet paths of the isomorphism class of ``arch``, with how many members run each
    (the architecture alone in spaces without isomorphism classes)."""
    if not space.has(ISOMORPHISM):
        return [(space.supernet_path(arch), 1)]
    members = space.isomorphism_classes()[space.canonical_key(arch)]
    return sorted(Counter(space.supernet_path(m) for m in members).items())


@contextlib.contextmanager
def batch_statistics(supernet: nn.Module):
    """BN normalises with each batch's statistics and leaves the running statistics untouched."""
    norms = [m for m in supernet.modules() if isinstance(m, nn.BatchNorm2d)]
    supernet.train()
    try:
        for m in norms:
            m.track_running_stats = False
        yield
    finally:
        for m in norms:
            m.track_running_stats = True


def _running_stats(m: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The running mean, variance and batch count of a BN layer that tracks them."""
    if m.running_mean is None or m.running_var is None or m.num_batches_tracked is None:
        raise ValueError("BN recalibration needs BN layers that track running statistics")
    return m.running_mean, m.running_var, m.num_batches_tracked


@contextlib.contextmanager
def recalibrated(supernet: nn.Module, arch: Arch, batches):
    """BN running statistics re-estimated for ``arch`` on ``batches``; the supernet's own are restored after."""
    norms = [m for m in supernet.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = []
    for m in norms:
        mean, var, count = _running_stats(m)
        saved.append((mean.clone(), var.clone(), count.clone(), m.momentum))
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
        supernet.train()
        with torch.no_grad():
            for x, _ in batches:
                supernet(x, arch)
        supernet.eval()
        yield
    finally:
        for m, (mean, var, count, momentum) in zip(norms, saved):
            running_mean, running_var, num_batches_tracked = _running_stats(m)
            running_mean.copy_(mean)
            running_var.copy_(var)
            num_batches_tracked.copy_(count)
            m.momentum = momentum


def _run(supernet: nn.Module, arch: Arch, batches) -> dict[str, float]:
    correct = seen = 0
    loss = 0.0
    with torch.no_grad():
        for x, y in batches:
            out = supernet(x, arch)
            loss += F.cross_entropy(out, y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
            seen += len(y)
    return {"oneshot_acc": correct / seen, "oneshot_loss": -loss / seen}


def evaluate_arch(supernet: nn.Module, arch: Arch, batches, bn_mode: str = "train", calibration=None) -> dict:
    """Scores of one architecture. ``calibration``: training batches, needed for ``recalibrate``."""
    if bn_mode == "train":
        with batch_statistics(supernet):
            return _run(supernet, arch, batches)
    if bn_mode == "recalibrate":
        if not calibration:
            raise ValueError("bn_mode 'recalibrate' needs calibration batches")
        with recalibrated(supernet, arch, calibration):
            return _run(supernet, arch, batches)
    raise ValueError(f"unknown bn_mode {bn_mode!r}; use one of {', '.join(BN_MODES)}")


class NotCovered(ValueError):
    """The architecture is outside the supernet (one smaller than its space); the message says why."""


def score_arch(
    supernet, arch: Arch, batches, bn_mode: str = "train", post_deiso: bool = False, calibration=None
) -> dict[str, float]:
    """``evaluate_arch``, or with ``post_deiso`` its mean over the isomorphism class. Raises
    NotCovered for an architecture the supernet cannot run."""
    if not supernet.covers(arch):
        raise NotCovered(supernet.coverage_error(arch))
    if not post_deiso:
        return evaluate_arch(supernet, arch, batches, bn_mode, calibration)
    paths = class_paths(get_space(supernet.space), arch)
    total = sum(n for _, n in paths)
    sums: dict[str, float] = defaultdict(float)
    for path, n in paths:
        for name, value in evaluate_arch(supernet, path, batches, bn_mode, calibration).items():
            sums[name] += value * n
    return {name: value / total for name, value in sums.items()}
