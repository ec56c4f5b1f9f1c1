"""Score many architectures, in this process or in a pool of single-threaded processes.

On CPU, two single-threaded processes score about 1.4x more cells per second than one process with
two threads (small element-wise kernels do not parallelise well), so large runs use a pool.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed

from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces.base import Arch, get_space

ProgressCallback = Callable[[int, int], None]  # (done, total)


def result_record(space: str, arch: Arch, scores, device: str) -> dict:
    """A JSON-ready record of one architecture's scores and the device they were computed on."""
    sp = get_space(space)
    return {
        "arch": sp.to_string(arch),
        "canonical_key": sp.canonical_key(arch),
        "scores": {name: v.value for name, v in scores.scores.items()},
        "reasons": {name: v.reason for name, v in scores.scores.items() if v.reason},
        "per_batch": scores.per_batch,
        "device": device,
    }


def _score_one(space: str, arch: Arch, estimators: list[str], protocol_json: str, memory_limit: int,
               supernet_dir: str | None, device: str) -> dict:
    from archscore.estimators.catalog import is_one_shot
    from archscore.estimators.zero_shot.engine import ArchScores, ProxyValue, score_architecture

    protocol = Protocol.model_validate_json(protocol_json)
    supernets = None
    if supernet_dir is not None:
        from archscore.estimators.one_shot.checkpoints import checkpoint_by_sha256

        supernets = functools.partial(checkpoint_by_sha256, supernet_dir, device=device)  # keyword: one cache entry
    zero_shot = [n for n in estimators if not is_one_shot(n)]
    scores = ArchScores(arch, {})
    if zero_shot:
        scores = score_architecture(arch, space, zero_shot, protocol, device=device, memory_limit=memory_limit,
                                    supernets=supernets)
    if len(zero_shot) < len(estimators):
        from archscore.estimators.one_shot.evaluation import NotCovered

        try:
            one_shot = {n: ProxyValue(v) for n, v in _one_shot_scores(arch, protocol, supernet_dir, device).items()}
        except NotCovered as exc:
            one_shot = {n: ProxyValue(None, str(exc)) for n in ("oneshot_acc", "oneshot_loss")}
        scores.scores.update({n: one_shot[n] for n in estimators if is_one_shot(n)})
        scores.scores = {n: scores.scores[n] for n in estimators}
    return result_record(space, arch, scores, device)


def _one_shot_scores(arch: Arch, protocol: Protocol, supernet_dir: str | None, device: str) -> dict[str, float]:
    """oneshot_acc and oneshot_loss from the checkpoint ``protocol.oneshot`` names (as a worker takes them)."""
    from archscore.estimators.one_shot.checkpoints import checkpoint_by_sha256
    from archscore.estimators.one_shot.evaluation import score_arch

    settings = protocol.oneshot
    if settings is None or supernet_dir is None:
        raise ValueError("one-shot estimators need protocol.oneshot and the folder of its supernet checkpoint")
    net, _ = checkpoint_by_sha256(supernet_dir, settings.supernet, device=device)
    validation, calibration = _evaluation_batches(supernet_dir, settings, device)
    return score_arch(net, arch, validation, settings.bn_mode, settings.post_deiso, calibration)


@functools.lru_cache(maxsize=8)
def _evaluation_batches(supernet_dir: str, settings, device: str) -> tuple[list, list | None]:
    from archscore.estimators.one_shot.checkpoints import checkpoint_by_sha256
    from archscore.estimators.one_shot.evaluation import calibration_batches, validation_batches

    _, manifest = checkpoint_by_sha256(supernet_dir, settings.supernet, device=device)
    validation = validation_batches(manifest, settings.batch_size, settings.num_batches, images=settings.images,
                                    device=device)
    calibration = calibration_batches(manifest, device=device) if settings.bn_mode == "recalibrate" else None
    return validation, calibration


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def default_jobs(n: int) -> int:
    return max(1, min(os.cpu_count() or 1, n // 4))


def score_many(
    archs: Sequence[Arch],
    space: str,
    estimators: list[str],
    protocol: Protocol,
    jobs: int = 1,
    progress: ProgressCallback | None = None,
    supernet_dir: str | os.PathLike[str] | None = None,
    device: str = "cpu",
) -> list[dict]:
    """Records in the order of ``archs``. ``jobs`` > 1 uses that many single-threaded processes.
    ``supernet_dir`` holds the checkpoint ``protocol.weights`` names, if any; ``device`` is a
    resolved device (``archscore.estimators.device.resolve_device``)."""
    supernet_dir = None if supernet_dir is None else str(supernet_dir)
    from archscore.estimators.zero_shot.memory import memory_limit

    total = len(archs)
    records: list[dict | None] = [None] * total
    protocol_json = protocol.model_dump_json()
    share = memory_limit() // max(1, jobs)  # the processes of a pool score side by side
    if jobs <= 1:
        for i, arch in enumerate(archs):
            records[i] = _score_one(space, arch, estimators, protocol_json, share, supernet_dir, device)
            if progress:
                progress(i + 1, total)
        return records  # type: ignore[return-value]
    context = multiprocessing.get_context("spawn")  # torch is not fork-safe once its threads started
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker, initargs=(1,)) as pool:
        futures = {pool.submit(_score_one, space, arch, estimators, protocol_json, share, supernet_dir,
                               device): i
                   for i, arch in enumerate(archs)}
        for done, future in enumerate(as_completed(futures), start=1):
            records[futures[future]] = future.result()
            if progress:
                progress(done, total)
    return records  # type: ignore[return-value]
