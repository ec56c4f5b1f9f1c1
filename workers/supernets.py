"""Supernet checkpoints held in worker memory: loaded on first use, keyed by the sha256 of their
weights, so a checkpoint trained (or replaced) after the worker started is picked up by its hash
without a restart. Validation (and calibration) batches are kept beside them.

A checkpoint missing from the worker's supernet folder is downloaded from ARCHSCORE_CHECKPOINT_SOURCE
when one is set (archscore.workers.checkpoint_fetch), then found there like any other."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path

from archscore.contract.settings import get_settings
from archscore.estimators.one_shot.registry import CheckpointError, folder_of
from archscore.estimators.protocol import OneShotSettings
from archscore.workers.checkpoint_fetch import fetch_checkpoint

MAX_LOADED = 4  # checkpoints kept per process; the least recently used goes first
# a failed download is not tried again for this long: the other architectures of the chunk get its
# error at once instead of each waiting for another attempt
FETCH_RETRY_SECONDS = 10.0

_loaded: OrderedDict[str, tuple] = OrderedDict()
_batches: dict[tuple, tuple[list, list | None]] = {}
_lock = threading.Lock()
loads = 0  # checkpoints read from disk by this process (tests look at it)
_failed_fetches: dict[str, tuple[float, str]] = {}  # sha256 -> (when, why)


def supernet(sha256: str, device: str):
    """(supernet, manifest) for the checkpoint with these weights, read from disk once."""
    global loads
    from archscore.estimators.one_shot.checkpoints import load_checkpoint

    with _lock:
        if sha256 in _loaded:
            _loaded.move_to_end(sha256)
            return _loaded[sha256]
        folder = _folder(sha256)
        net, manifest = load_checkpoint(folder, device)
        if manifest["sha256"] != sha256:
            raise CheckpointError(f"checkpoint {folder.name} changed while the job was queued; submit it again")
        net.eval()
        _loaded[sha256] = (net, manifest)
        loads += 1
        while len(_loaded) > MAX_LOADED:
            evicted, _ = _loaded.popitem(last=False)
            for key in [k for k in _batches if k[0] == evicted]:
                del _batches[key]
        return net, manifest


def _folder(sha256: str) -> Path:
    """The checkpoint's folder in this worker's supernet folder, downloaded there first when it is missing
    and a checkpoint source is set."""
    settings = get_settings()
    try:
        return folder_of(settings.supernet_path, sha256)
    except CheckpointError as missing:
        if not settings.checkpoint_source:
            raise
        local = str(missing)
    failed = _failed_fetches.get(sha256)
    if failed and time.monotonic() - failed[0] < FETCH_RETRY_SECONDS:
        raise CheckpointError(failed[1])
    try:
        folder = fetch_checkpoint(settings.supernet_path, sha256, settings)
    except CheckpointError as exc:
        why = f"{local}; {exc}"
        _failed_fetches[sha256] = (time.monotonic(), why)
        raise CheckpointError(why) from None
    _failed_fetches.pop(sha256, None)
    return folder


def _batches_for(sha256: str, manifest: dict, settings: OneShotSettings, device: str):
    from archscore.estimators.one_shot.evaluation import calibration_batches, validation_batches

    key = (sha256, settings.images, settings.batch_size, settings.num_batches, settings.bn_mode, device)
    if key not in _batches:
        val = validation_batches(
            manifest, settings.batch_size, settings.num_batches, device=device, images=settings.images
        )
        calib = calibration_batches(manifest, device=device) if settings.bn_mode == "recalibrate" else None
        _batches[key] = (val, calib)
    return _batches[key]


def one_shot_scores(arch, settings: OneShotSettings, device: str) -> dict[str, float]:
    """oneshot_acc and oneshot_loss of ``arch`` under ``settings``."""
    from archscore.estimators.one_shot.evaluation import score_arch

    net, manifest = supernet(settings.supernet, device)
    val, calib = _batches_for(settings.supernet, manifest, settings, device)
    return score_arch(net, arch, val, settings.bn_mode, settings.post_deiso, calib)
