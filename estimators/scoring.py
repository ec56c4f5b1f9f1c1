"""Score architectures with any estimators of the catalog, zero-shot and one-shot together: one
architecture (``score_one``, what the library's process pool and the service's workers call) or many,
in this process or in a pool of single-threaded processes (``score_many``).

This module sits above ``archscore.estimators.zero_shot`` and ``archscore.estimators.one_shot``, which do
not import each other. It is torch-free until something is scored.

On CPU, two single-threaded processes score about 1.4x more cells per second than one process with
two threads (small element-wise kernels do not parallelise well), so large runs use a pool.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

from archscore.estimators.catalog import POPULATION, is_one_shot, scored_estimators
from archscore.estimators.protocol import OneShotSettings, Protocol
from archscore.estimators.spaces.base import Arch, get_space

if TYPE_CHECKING:
    from archscore.estimators.zero_shot.engine import ArchScores

ProgressCallback = Callable[[int, int], None]  # (done, total)
# sha256 of a supernet checkpoint -> (supernet, manifest)
SupernetLoader = Callable[[str], tuple[Any, dict]]
# (architecture, protocol.oneshot) -> {one-shot estimator: value}; raises NotCovered
# (archscore.estimators.one_shot.evaluation) for an architecture the supernet cannot run
OneShotScorer = Callable[[Arch, OneShotSettings], Mapping[str, float]]

NO_ONE_SHOT = "one-shot estimators need protocol.oneshot and the folder of its supernet checkpoint"


def score_one(
    arch: Arch,
    space: str,
    estimators: Sequence[str],
    protocol: Protocol,
    device: str = "cpu",
    *,
    memory_limit: int | None = None,
    supernets: SupernetLoader | None = None,
    one_shot: OneShotScorer | None = None,
) -> ArchScores:
    """Score one architecture of ``space`` with ``estimators`` (zero-shot and one-shot names of the
    catalog) under ``protocol`` on ``device`` (a resolved device).

    Returns ``ArchScores``: ``scores[name]`` a ProxyValue (value, or None with its reason; ``transient``
    when the reason is this machine's, a network too large for ``memory_limit`` bytes, default
    ``memory.memory_limit(device)``) for every estimator asked, and ``per_batch[name]`` the per-batch
    values of the zero-shot estimators that read data.

    ``supernets(sha256)`` loads the checkpoint ``protocol.weights`` names (supernet, manifest);
    ``one_shot(arch, protocol.oneshot)`` gives the one-shot estimators' values. An architecture the
    supernet does not cover gets None with the reason for every one-shot estimator asked; asking for
    one-shot estimators without ``one_shot`` or ``protocol.oneshot`` raises ValueError."""
    from archscore.estimators.zero_shot.engine import ArchScores, ProxyValue, score_architecture

    zero_shot = [n for n in estimators if not is_one_shot(n)]
    scores = ArchScores(arch, {})
    if zero_shot:
        scores = score_architecture(
            arch, space, zero_shot, protocol, device=device, memory_limit=memory_limit, supernets=supernets
        )
    if len(zero_shot) < len(estimators):
        if one_shot is None or protocol.oneshot is None:
            raise ValueError(NO_ONE_SHOT)
        from archscore.estimators.one_shot.evaluation import NotCovered

        try:
            values = {n: ProxyValue(v) for n, v in one_shot(arch, protocol.oneshot).items()}
        except NotCovered as exc:
            values = {n: ProxyValue(None, str(exc)) for n in estimators if is_one_shot(n)}
        scores.scores.update({n: values[n] for n in estimators if is_one_shot(n)})
        scores.scores = {n: scores.scores[n] for n in estimators}
    return scores


def result_record(space: str, arch: Arch, scores: ArchScores, device: str) -> dict:
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


def checkpoint_loaders(supernet_dir: str | None, device: str) -> tuple[SupernetLoader | None, OneShotScorer | None]:
    """``score_one``'s supernets and one_shot for the checkpoints under ``supernet_dir`` (None: neither),
    each checkpoint loaded once per process."""
    if supernet_dir is None:
        return None, None
    from archscore.estimators.one_shot.checkpoints import checkpoint_by_sha256

    supernets = functools.partial(checkpoint_by_sha256, supernet_dir, device=device)  # keyword: one cache entry
    return supernets, functools.partial(_one_shot_scores, supernet_dir=supernet_dir, device=device)


def _one_shot_scores(arch: Arch, settings: OneShotSettings, supernet_dir: str, device: str) -> dict[str, float]:
    """The one-shot estimators' values from the checkpoint ``settings`` names (as a worker takes them)."""
    from archscore.estimators.one_shot.checkpoints import checkpoint_by_sha256
    from archscore.estimators.one_shot.evaluation import score_arch

    net, _ = checkpoint_by_sha256(supernet_dir, settings.supernet, device=device)
    validation, calibration = _evaluation_batches(supernet_dir, settings, device)
    return score_arch(net, arch, validation, settings.bn_mode, settings.post_deiso, calibration)


@functools.lru_cache(maxsize=8)
def _evaluation_batches(supernet_dir: str, settings: OneShotSettings, device: str) -> tuple[list, list | None]:
    from archscore.estimators.one_shot.checkpoints import checkpoint_by_sha256
    from archscore.estimators.one_shot.evaluation import calibration_batches, validation_batches

    _, manifest = checkpoint_by_sha256(supernet_dir, settings.supernet, device=device)
    validation = validation_batches(
        manifest, settings.batch_size, settings.num_batches, images=settings.images, device=device
    )
    calibration = calibration_batches(manifest, device=device) if settings.bn_mode == "recalibrate" else None
    return validation, calibration


def _score_record(
    space: str,
    arch: Arch,
    estimators: list[str],
    protocol_json: str,
    memory_limit: int,
    supernet_dir: str | None,
    device: str,
) -> dict:
    """One architecture's record, in this process or a process of the pool (arguments that pickle)."""
    protocol = Protocol.model_validate_json(protocol_json)
    supernets, one_shot = checkpoint_loaders(supernet_dir, device)
    scores = score_one(
        arch, space, estimators, protocol, device, memory_limit=memory_limit, supernets=supernets, one_shot=one_shot
    )
    return result_record(space, arch, scores, device)


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
    resolved device (``archscore.estimators.device.resolve_device``). Population estimators rank the
    architectures of the call (``with_populations``)."""
    records = _score_each(archs, space, scored_estimators(estimators), protocol, jobs, progress, supernet_dir, device)
    return with_populations(records, estimators)


def with_populations(records: list[dict], estimators: list[str]) -> list[dict]:
    """The records with the scores of ``estimators`` only, in that order, the population estimators among
    them computed over the records (archscore.estimators.population): their members' scores, and
    reasons, are kept only where they were asked for."""
    from archscore.estimators.population import population_scores

    for name in estimators:
        if name not in POPULATION:
            continue
        info = POPULATION[name]
        values = population_scores(info, [r["scores"] for r in records])
        for record, value in zip(records, values):
            record["scores"][name] = value
    for record in records:
        record["scores"] = {n: record["scores"][n] for n in estimators}
        record["reasons"] = {n: r for n, r in record["reasons"].items() if n in estimators}
        record["per_batch"] = {n: v for n, v in record["per_batch"].items() if n in estimators}
    return records


def _score_each(
    archs: Sequence[Arch],
    space: str,
    estimators: list[str],
    protocol: Protocol,
    jobs: int,
    progress: ProgressCallback | None,
    supernet_dir: str | os.PathLike[str] | None,
    device: str,
) -> list[dict]:
    supernet_dir = None if supernet_dir is None else str(supernet_dir)
    from archscore.estimators.zero_shot.memory import memory_limit

    total = len(archs)
    records: list[dict | None] = [None] * total
    protocol_json = protocol.model_dump_json()
    share = memory_limit() // max(1, jobs)  # the processes of a pool score side by side
    if jobs <= 1:
        for i, arch in enumerate(archs):
            records[i] = _score_record(space, arch, estimators, protocol_json, share, supernet_dir, device)
            if progress:
                progress(i + 1, total)
        return records  # type: ignore[return-value]
    context = multiprocessing.get_context("spawn")  # torch is not fork-safe once its threads started
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker, initargs=(1,)) as pool:
        futures = {
            pool.submit(_score_record, space, arch, estimators, protocol_json, share, supernet_dir, device): i
            for i, arch in enumerate(archs)
        }
        for done, future in enumerate(as_completed(futures), start=1):
            records[futures[future]] = future.result()
            if progress:
                progress(done, total)
    return records  # type: ignore[return-value]
