"""Supernet checkpoints held in worker memory: loaded on first use, keyed by the sha256 of their
weights, so a checkpoint trained (or replaced) after the worker started is picked up by its hash
without a restart. Validation (and calibration) batches are kept beside them."""

from __future__ import annotations

import threading
from collections import OrderedDict

from archscore.contract.settings import get_settings
from archscore.estimators.one_shot.registry import CheckpointError, folder_of
from archscore.estimators.protocol import OneShotSettings

MAX_LOADED = 4  # checkpoints kept per process; the least recently used goes first

_loaded: OrderedDict[str, tuple] = OrderedDict()
_batches: dict[tuple, tuple[list, list | None]] = {}
_lock = threading.Lock()
loads = 0  # checkpoints read from disk by this process (tests look at it)


def supernet(sha256: str, device: str):
    """(supernet, manifest) for the checkpoint with these weights, read from disk once."""
    global loads
    from archscore.estimators.one_shot.checkpoints import load_checkpoint

    with _lock:
        if sha256 in _loaded:
            _loaded.move_to_end(sha256)
            return _loaded[sha256]
        folder = folder_of(get_settings().supernet_path, sha256)
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
