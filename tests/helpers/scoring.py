"""Score requests on NAS-Bench-201 cells, what the service stored for them, and JSON comparison.

Scoring is kept cheap: batch 16, one batch; a distinct protocol seed per test wherever a cold cache
matters (the score cache is shared by every test of the session)."""

from __future__ import annotations

import pytest

from archscore.contract import store
from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces import get_space
from archscore.estimators.spaces.nb201 import has_conv_path

PNG = b"\x89PNG\r\n\x1a\n"  # the first bytes of every PNG file
NB201 = get_space("nb201")


def request(archs, estimators, seed, batch_size=16, **extra) -> dict:
    """A POST /v1/scores body on NB201: one batch of ``batch_size`` images with protocol seed ``seed``."""
    return {
        "space": "nb201",
        "archs": archs,
        "estimators": estimators,
        "protocol": {"batch_size": batch_size, "num_batches": 1, "seed": seed},
        **extra,
    }


def phash(seed: int, batch_size: int = 16) -> str:
    """The protocol hash of ``request(..., seed, batch_size)``."""
    return Protocol(batch_size=batch_size, num_batches=1, seed=seed).hash()


def cells(n: int, seed: int) -> list[str]:
    """n architectures of distinct isomorphism classes, each with a convolution on a live path (no
    degenerate cell whose scores may legitimately be null)."""
    picked = [a for a in NB201.sample(4 * n, seed=seed, deisomorphic=True) if has_conv_path(a)][:n]
    assert len(picked) == n
    return [NB201.to_string(a) for a in picked]


def snapshot(r) -> dict:
    """What a request could have stored or enqueued: jobs, members hashes, the task queue."""
    return {
        "jobs": sorted(r.scan_iter(f"{store.PREFIX}:job:*")),
        "members": {k: r.hgetall(k) for k in r.scan_iter(f"{store.PREFIX}:members:*")},
        "queue": r.llen("celery"),
    }


def stored_job(r, job_id: str) -> dict:
    return store.decode(r.get(store.job_key(job_id)))


def same(a, b) -> bool:
    """Equal JSON values, floats to 1e-9 (scores computed by the worker and here may differ in the last bits)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9, abs=1e-12)
    return a == b


def worker_idle(r) -> bool:
    """The worker on ``r``'s database has taken every queued task and finished (acknowledged) what it took:
    nothing a cancelled or cached job left behind can still run (tasks are acknowledged late, one at a time)."""
    return r.llen("celery") == 0 and r.hlen("unacked") == 0
