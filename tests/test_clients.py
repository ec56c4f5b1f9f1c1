"""The clients against the live service: real Redis, a real Celery worker and the API over a socket.

Redis: the server on 127.0.0.1:6379 when it answers (database 12, flushed first; a lock key keeps two
concurrent runs from sharing it), otherwise a private redis-server started here. Other test modules use
database 13; nothing here depends on their fixtures.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis
from helpers.http import wait_answering
from helpers.waiting import wait_until

from archscore.contract.tasks import TRAINING_QUEUE
from archscore.estimators.spaces import get_space
from archscore.service import runner
from archscore_client import ArchscoreError, AsyncClient, Client, Job, JobTimeout

ROOT = Path(__file__).resolve().parents[1]
SHARED_REDIS = "redis://127.0.0.1:6379/12"
LOCK_KEY = "archscore:test_clients:lock"
PROTOCOL = {"batch_size": 16}
ESTIMATORS = ["synflow", "params"]
# The three encodings of examples/client.mjs: string form, NASLib op list, NB201 index.
NODE_ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    [0, 1, 2, 3, 4, 0],
    1234,
]
NB201 = get_space("nb201")


def arch_string(encoding) -> str:
    return NB201.to_string(NB201.parse(encoding))


def _claim_shared_redis() -> tuple[redis.Redis, str] | None:
    """Database 12 of the Redis on 6379, emptied, when that server answers and no other run holds it."""
    client = redis.Redis.from_url(SHARED_REDIS, socket_connect_timeout=0.5, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError:
        return None
    token = uuid.uuid4().hex
    if not client.set(LOCK_KEY, token, nx=True, ex=600):
        return None  # another run uses database 12 right now
    stale = [k for k in client.scan_iter(count=1000) if k != LOCK_KEY.encode()]
    for i in range(0, len(stale), 500):
        client.delete(*stale[i : i + 500])
    return client, token


def _release_shared_redis(client: redis.Redis, token: str) -> None:
    try:
        if client.get(LOCK_KEY) == token.encode():
            client.flushdb()
    except redis.RedisError:
        pass
    finally:
        client.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """{"url", "redis_url"} of a running stack; everything started here is stopped at the end."""
    tmp = tmp_path_factory.mktemp("live")
    started: list[subprocess.Popen] = []
    shared = _claim_shared_redis()
    try:
        if shared is not None:
            redis_url = SHARED_REDIS
        else:
            port = runner.free_port()
            started.append(runner.start_redis(tmp / "redis", port))
            redis_url = f"redis://127.0.0.1:{port}/12"
        # Only the Redis URL from outside: no API keys or other ARCHSCORE_ settings leak into the stack.
        env = {k: v for k, v in runner.child_env(redis_url).items() if not k.startswith("ARCHSCORE_")}
        env.update(
            ARCHSCORE_REDIS_URL=redis_url,
            ARCHSCORE_DEVICE="cpu",
            ARCHSCORE_DATA_DIR=str(tmp / "data"),
            ARCHSCORE_ALLOW_UNBOUNDED_REDIS="true",
        )  # the tests' Redis has no maxmemory
        # One torch thread: batch 16 needs no more, and the other test processes keep their cores.
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        api_port = runner.free_port()
        logs = {"trainer": tmp / "trainer.log", "worker": tmp / "worker.log", "API": tmp / "api.log"}
        with open(logs["trainer"], "wb") as log:
            started.append(
                subprocess.Popen(
                    runner.worker_command(queues=TRAINING_QUEUE),
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        with open(logs["worker"], "wb") as log:
            started.append(
                subprocess.Popen(runner.worker_command(), env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            )
        with open(logs["API"], "wb") as log:
            started.append(
                subprocess.Popen(
                    runner.api_command("127.0.0.1", api_port), env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
                )
            )
        base_url = f"http://127.0.0.1:{api_port}"
        wait_answering(
            f"{base_url}/readyz",
            60,
            procs={"trainer": started[-3], "worker": started[-2], "API": started[-1]},
            logs=logs,
            interval=0.25,
        )
        yield {"url": base_url, "redis_url": redis_url, "data_dir": tmp / "data", "worker": started[-2]}
    finally:
        runner.stop(started)
        if shared is not None:
            _release_shared_redis(*shared)


@pytest.fixture
def client(live):
    with Client(live["url"], timeout=30) as c:
        yield c


# --------------------------------------------------------------------------- #
# Node.js example
# --------------------------------------------------------------------------- #
def test_node_example(live):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH")
    env = {**os.environ, "ARCHSCORE_URL": "http://127.0.0.1:9"}  # argv wins over the environment
    env.pop("ARCHSCORE_API_KEY", None)
    proc = subprocess.run(
        [node, str(ROOT / "examples" / "client.mjs"), live["url"], "--protocol", json.dumps(PROTOCOL)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    lines = proc.stdout.splitlines()
    arch_lines = [line for line in lines if line.startswith("arch=")]
    assert len(arch_lines) == 3, proc.stdout
    for encoding, line in zip(NODE_ARCHS, arch_lines):
        assert line.split()[0] == f"arch={arch_string(encoding)}", line
        for name in ESTIMATORS:
            value = re.search(rf"\b{name}=(\S+)", line)
            assert value is not None, line
            assert math.isfinite(float(value.group(1))), line
        truth = re.search(r"\bcifar10_test=(\S+)", line)
        assert truth is not None and 0 < float(truth.group(1)) <= 100, line
    for name in ESTIMATORS:
        tau = [line for line in lines if line.startswith(f"kendall_tau {name}=")]
        assert len(tau) == 1, proc.stdout
        assert -1.0 <= float(tau[0].split("=")[1].split()[0]) <= 1.0, tau[0]


def test_node_example_reports_http_errors(live):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH")
    proc = subprocess.run(
        [node, str(ROOT / "examples" / "client.mjs"), live["url"], "--estimators", "no_such_estimator"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode != 0
    assert "HTTP 422" in proc.stderr and "estimators[0]" in proc.stderr, proc.stderr
    closed = f"http://127.0.0.1:{runner.free_port()}"  # nothing listens there
    refused = subprocess.run(
        [node, str(ROOT / "examples" / "client.mjs"), closed],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert refused.returncode != 0 and "cannot reach" in refused.stderr, refused.stderr


# --------------------------------------------------------------------------- #
# Python client
# --------------------------------------------------------------------------- #
def test_client_score_and_rankings(client):
    archs = [
        [2, 3, 4, 0, 1, 2],
        12000,
        "|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
    ]
    job = client.score(archs, ESTIMATORS, protocol=PROTOCOL, wait=60)
    assert isinstance(job, Job) and job.status == "done"
    assert job["protocol"]["batch_size"] == 16
    assert [r.arch for r in job.results] == [arch_string(a) for a in archs]
    for row in job.results:
        assert row.error is None
        assert set(row.scores) == set(ESTIMATORS)
        assert all(isinstance(v, float) and math.isfinite(v) for v in row.scores.values()), row
        assert isinstance(row.ground_truth, float)
        assert row.devices == {"synflow": "cpu"}  # params comes from the API, exactly
    assert set(job.rankings["estimators"]) == set(ESTIMATORS)
    assert (job.kind, job.space, job.estimators, job.truth) == ("scores", "nb201", ESTIMATORS, "cifar10_test")
    assert job.protocol == job["protocol"] and job.protocol_hash == job["protocol_hash"] and job.cached == 0
    assert job.name is None and job.checkpoint is None

    report = client.rankings("nb201", protocol_hash=job["protocol_hash"])
    assert report.space == "nb201" and report.truth == "cifar10_test"
    [entry] = report.rankings
    assert entry["protocol_hash"] == job["protocol_hash"] and entry["protocol"]["batch_size"] == 16
    for name in ESTIMATORS:
        stats = entry["estimators"][name]
        assert stats["n"] >= 3
        assert isinstance(stats["kendall_tau"], float) and -1.0 <= stats["kendall_tau"] <= 1.0, stats

    # archs[0] and archs[2] are isomorphic: one class, scored once, same scores
    keys = [r.canonical_key for r in job.results]
    assert keys[0] == keys[2] != keys[1]
    assert job.results[0].scores == job.results[2].scores
    again = client.score(archs, ESTIMATORS, protocol=PROTOCOL, wait=60)  # all cached now
    assert again["cached"] == 2 and again.status == "done"
    assert [r.scores for r in again.results] == [r.scores for r in job.results]


def test_client_trains_supernets_and_the_running_worker_serves_each_new_one(client, live):
    """Training on the trainer process; one-shot scoring on the scoring worker process, which was
    started before either checkpoint existed and is never restarted."""
    from archscore.estimators.one_shot.checkpoints import load_checkpoint
    from archscore.estimators.one_shot.evaluation import score_arch, validation_batches

    tiny = {"network": {"C": 4, "N": 1}, "epochs": 1, "steps_per_epoch": 2, "batch_size": 32}
    archs = ["|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|", 4321]
    pid = live["worker"].pid
    for name, seed in (("live-a", 0), ("live-b", 1)):
        trained = client.train_supernet(name, wait=120, seed=seed, **tiny)
        assert trained.status == "done" and trained.progress["step"] == 2
        assert trained.kind == "supernet_training" and trained.name == name and trained.error is None
        assert trained.checkpoint == trained["checkpoint"] and trained.results is None
        sha = trained["checkpoint"]["sha256"]
        assert sha in {c["sha256"] for c in client.supernets()}
        job = client.score(
            archs, ["oneshot_acc", "oneshot_loss"], wait=120, protocol={"oneshot": {"supernet": name, "num_batches": 1}}
        )
        assert job["protocol"]["oneshot"]["supernet"] == sha
        net, manifest = load_checkpoint(live["data_dir"] / "supernets" / name)
        batches = validation_batches(manifest, 100, 1)
        for row in job.results:
            arch = NB201.representative(NB201.parse(row.arch))
            want = score_arch(net, arch, batches, post_deiso=True)
            assert row.scores["oneshot_acc"] == pytest.approx(want["oneshot_acc"])
            assert row.scores["oneshot_loss"] == pytest.approx(want["oneshot_loss"], rel=1e-5)
        assert live["worker"].poll() is None and live["worker"].pid == pid
    with pytest.raises(ArchscoreError) as info:
        client.train_supernet("live-a", **tiny)
    assert info.value.status == 409
    averaged = client.average_supernets("live-ab", ["live-a", "live-b"], wait=60)
    assert averaged.status == "done" and len(averaged["checkpoint"]["averaged_from"]) == 2
    assert client.supernets()[0]["name"] == "live-ab"


def test_client_bad_encoding_is_a_422_naming_the_arch(client):
    with pytest.raises(ArchscoreError) as info:
        client.score([[0, 1, 2, 3, 4, 9], 1234], ESTIMATORS, protocol=PROTOCOL)
    err = info.value
    assert err.status == 422
    assert err.message == "invalid request"
    assert [d["field"] for d in err.details] == ["archs[0]"]
    assert "op index 9" in err.reasons("archs[0]")[0]
    assert "archs[0]" in str(err) and "HTTP 422" in str(err)


def test_client_errors(client, live):
    with pytest.raises(ArchscoreError) as info:
        client.job("0" * 32)  # well-formed, unknown
    assert info.value.status == 404
    with pytest.raises(ArchscoreError) as info:
        client.job("no-such-job")  # not a job id at all
    assert info.value.status == 422 and info.value.details[0]["field"] == "job_id"
    with pytest.raises(ArchscoreError) as info:
        client.rankings("no-such-space")
    assert info.value.status == 404
    with pytest.raises(ArchscoreError) as info:
        client.score(["|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"], ["nope"], truth="missing")
    assert info.value.status == 422
    assert {d["field"] for d in info.value.details} == {"estimators[0]", "truth"}
    with Client("http://127.0.0.1:9", timeout=2) as unreachable, pytest.raises(ArchscoreError) as info:
        unreachable.spaces()
    assert info.value.status is None and "cannot reach" in str(info.value)


def test_client_wait_zero_returns_the_submitted_job(client):
    submitted = client.score([777], ["params"], protocol={**PROTOCOL, "seed": 7}, wait=0)  # no polling at all
    assert submitted.job_id and submitted.status in ("queued", "running", "done")
    done = client.job(submitted.job_id, wait=30)
    assert done.status == "done" and done.results[0].arch == arch_string(777)
    again = client.score([777], ["params"], protocol={**PROTOCOL, "seed": 7}, wait=0)
    assert again.status == "done" and again["cached"] == 1


def test_client_health_readiness_and_metrics(client):
    assert client.health() == {"status": "ok"}
    ready = client.ready()
    assert ready["ready"] is True and ready["missing"] == []
    text = client.metrics()
    assert isinstance(text, str) and "archscore_http_requests_total{" in text


def test_client_metadata_canonical_and_truth_upload(client):
    assert {"synflow", "params"} <= {e["name"] for e in client.estimators()}
    spaces = {s["name"]: s for s in client.spaces()}
    assert "cifar10_test" in spaces["nb201"]["ground_truth_columns"]

    one = client.canonical("nb201", [0, 1, 2, 3, 4, 0])
    assert one["arch"] == arch_string([0, 1, 2, 3, 4, 0])
    assert client.canonical("nb201", one["arch"])["canonical_key"] == one["canonical_key"]
    assert client.canonical("nb201", 1234)["arch"] == arch_string(1234)
    with pytest.raises(ArchscoreError) as info:
        client.canonical("nb201", "not-a-cell")
    assert info.value.status == 422 and info.value.details[0]["field"] == "arch"

    archs = [arch_string(a) for a in NODE_ARCHS]
    csv = "arch,value\n" + "".join(f"{a},{v}\n" for a, v in zip(archs, (3.0, 1.0, 2.0)))
    assert client.upload_truth("nb201", "client_test", csv) == {
        "space": "nb201",
        "name": "client_test",
        "rows": 3,
        "column": "value",
        "skipped": [],
    }
    job = client.score(archs, ["params"], protocol=PROTOCOL, truth="client_test", wait=60)
    assert [r.ground_truth for r in job.results] == [3.0, 1.0, 2.0]
    assert client.delete_truth("nb201", "client_test")["deleted"] is True
    with pytest.raises(ArchscoreError) as info:
        client.upload_truth("nb201", "cifar10_test", {archs[0]: 1.0})
    assert info.value.status == 422 and info.value.details[0]["field"] == "name"


# --------------------------------------------------------------------------- #
# Without a server
# --------------------------------------------------------------------------- #
def test_client_module_does_not_import_torch():
    code = "import sys, archscore_client; sys.exit(1 if 'torch' in sys.modules or 'archscore' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_client_error_parsing_without_server():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/spaces":
            return httpx.Response(502, text="<html>bad gateway</html>")
        if request.url.path == "/v1/estimators":
            return httpx.Response(200, text="not json")
        assert request.headers["X-API-Key"] == "k"
        return httpx.Response(
            401,
            json={
                "error": {
                    "status": 401,
                    "message": "invalid API key",
                    "details": [{"field": "X-API-Key", "reason": "not a valid key"}],
                }
            },
        )

    with Client("http://archscore.test/", api_key="k", transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(ArchscoreError) as info:
            c.spaces()
        assert info.value.status == 502 and "bad gateway" in info.value.message
        with pytest.raises(ArchscoreError) as info:
            c.estimators()
        assert info.value.status == 200
        with pytest.raises(ArchscoreError) as info:
            c.job("abc")
        assert info.value.status == 401 and info.value.reasons("X-API-Key") == ["not a valid key"]


def test_client_deadline_without_server():
    """A job that never finishes: long-polls with ?wait= bounded by poll_seconds, then JobTimeout."""
    polls = []
    running = {"job_id": "j1", "status": "running", "progress": {"done": 1, "total": 4}}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            assert json.loads(request.content)["protocol"] == PROTOCOL
            return httpx.Response(202, json=running)
        assert request.url.path == "/v1/jobs/j1"
        polls.append(float(request.url.params["wait"]))
        time.sleep(0.05)
        return httpx.Response(200, json=running)

    transport = httpx.MockTransport(handler)
    with Client("http://archscore.test", poll_seconds=0.1, transport=transport) as c:
        started = time.monotonic()
        with pytest.raises(JobTimeout) as info:
            c.score([1], ["params"], protocol=PROTOCOL, wait=0.3)
        elapsed = time.monotonic() - started
    assert info.value.job.raw == running and info.value.status is None
    assert "j1" in str(info.value) and "1/4" in str(info.value)
    assert isinstance(info.value, ArchscoreError)
    assert polls and all(0 < w <= 0.1 for w in polls)
    assert 0.3 <= elapsed < 2.0


def test_client_streams_a_large_request_chunk_by_chunk(client):
    archs = [arch_string(i) for i in (11, 222, 3333, 4444, 5555, 6666, 7777)]
    streamed = list(client.iter_scores(archs, ["params", "relu"], chunk_size=3, in_flight=2, protocol=PROTOCOL))
    assert [r.index for r in streamed] == list(range(len(archs)))
    assert [r.arch for r in streamed] == archs
    whole = client.score(archs, ["params", "relu"], protocol=PROTOCOL, wait=60)
    assert [r.scores for r in streamed] == [r.scores for r in whole.results]


def test_async_client_scores_and_follows_studies(live):
    import asyncio

    async def scenario():
        async with AsyncClient(live["url"]) as client:
            ready = await client.ready()
            assert ready["ready"] is True
            job = await client.score([arch_string(4321)], ["params"], protocol=PROTOCOL, wait=60)
            assert job.status == "done" and job.results[0].arch == arch_string(4321)
            streamed = [
                r async for r in client.iter_scores([11, 222, 3333], ["params"], chunk_size=2, protocol=PROTOCOL)
            ]
            assert [r.index for r in streamed] == [0, 1, 2]
            spaces = await client.spaces()
            assert "nb201" in {s["name"] for s in spaces}
            study = await client.run_study(
                "complexity_bias",
                [arch_string(i) for i in (7, 700, 7000, 14000)],
                ["params"],
                options={"bins": 2},
                protocol=PROTOCOL,
                wait=120,
            )
            assert study.status == "done" and study.result
            assert (await client.figure(study.study_id, next(iter(study.figures)))).startswith(b"\x89PNG")
        async with AsyncClient(live["url"], poll_seconds=600) as client:  # above the server's bound (60 s)
            followed = await client.score([[3, 2, 1, 0, 1, 2]], ["synflow"], protocol={**PROTOCOL, "seed": 8}, wait=90)
            assert followed.status == "done" and client.poll_seconds == 60
            return job

    asyncio.run(scenario())


def test_client_runs_a_study_and_fetches_its_figure(client):
    archs = [arch_string(i) for i in (5, 500, 5000, 9000, 12000, 15000)]
    study = client.run_study(
        "complexity_bias", archs, ["params"], truth="cifar10_test", options={"bins": 2}, protocol=PROTOCOL, wait=120
    )
    assert study.status == "done" and study.result and study.figures
    name = next(iter(study.figures))
    assert client.figure(study.study_id, name).startswith(b"\x89PNG")
    assert study.study_id in {s["study_id"] for s in client.study_runs()}
    with pytest.raises(ArchscoreError) as info:
        client.cancel_study(study.study_id)
    assert info.value.status == 409


def test_client_retries_after_retry_after_without_server():
    answers = [
        httpx.Response(503, headers={"Retry-After": "0"}, json={"error": {"status": 503, "message": "down"}}),
        httpx.Response(429, headers={"Retry-After": "0"}, json={"error": {"status": 429, "message": "slow"}}),
        httpx.Response(200, json=[{"name": "nb201"}]),
    ]
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return answers[len(seen) - 1]

    with Client("http://archscore.test", transport=httpx.MockTransport(handler)) as c:
        assert c.spaces() == [{"name": "nb201"}] and len(seen) == 3
    seen.clear()
    with Client("http://archscore.test", retries=1, transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(ArchscoreError) as info:
            c.spaces()
    assert info.value.status == 429 and len(seen) == 2  # retried once, then the answer stands


def test_client_wait_above_the_servers_bound_is_a_422_naming_it_and_long_polls_adapt(live):
    """The live server keeps its default bound (60 s): a wait above it is the server's 422 naming the
    bound; the client's own long-polls drop to the bound it names and the job is still followed."""
    with Client(live["url"]) as c:
        with pytest.raises(ArchscoreError) as info:
            c.submit([5], ["params"], protocol=PROTOCOL, wait=61)
        assert info.value.status == 422 and "at most 60 seconds" in info.value.reasons("wait")[0]
        with pytest.raises(ArchscoreError) as info:
            c.job("0" * 32, wait=60.5)
        assert info.value.status == 422 and "at most 60 seconds" in info.value.reasons("wait")[0]
        assert c.submit([5], ["params"], protocol=PROTOCOL, wait=60).status == "done"  # the bound itself is fine
    with Client(live["url"], poll_seconds=600) as c:
        # synflow with a seed of its own goes to the worker: the job is followed by long-polls
        job = c.score([[1, 2, 3, 0, 1, 2], 2345], ["synflow"], protocol={**PROTOCOL, "seed": 4}, wait=90)
        assert job.status == "done" and all(r.devices == {"synflow": "cpu"} for r in job.results)
        assert c.poll_seconds == 60


def test_iter_scores_submits_chunk_by_chunk_and_yields_before_the_last_is_sent(client):
    """Worker-computed scores (a seed of its own, so nothing is cached): with one chunk in flight, the first
    result comes when the first job has finished and only the second has been submitted."""
    archs = [arch_string(i) for i in (101, 202, 303, 404, 505, 606, 707, 808)]
    protocol = {**PROTOCOL, "seed": 5}
    before = {j["job_id"] for j in client.jobs(limit=100)}

    def new_jobs():
        return [j for j in client.jobs(limit=100) if j["job_id"] not in before]

    stream = client.iter_scores(archs, ["synflow"], chunk_size=3, in_flight=1, protocol=protocol)
    assert new_jobs() == []  # a generator: nothing is sent before the first next()
    first = next(stream)
    assert first.index == 0 and first.arch == archs[0] and math.isfinite(first.scores["synflow"])
    sent = new_jobs()
    assert len(sent) == 2, sent  # the first job done, the second submitted, the third not yet
    assert [j["progress"]["total"] for j in sent] == [3, 3]  # newest first
    rest = list(stream)
    assert [r.index for r in [first, *rest]] == list(range(len(archs)))
    assert [r.arch for r in [first, *rest]] == archs
    assert sorted(j["progress"]["total"] for j in new_jobs()) == [2, 3, 3]
    assert all(j["status"] == "done" for j in new_jobs())
    whole = client.score(archs, ["synflow"], protocol=protocol, wait=60)
    assert whole["cached"] == len({r.canonical_key for r in whole.results})  # every class scored by the stream
    assert [r.scores for r in [first, *rest]] == [r.scores for r in whole.results]


def test_client_lists_and_cancels_jobs(client):
    archs = list(range(3000, 3040))
    job = client.score(archs, ["synflow"], protocol={**PROTOCOL, "seed": 6, "batch_size": 64}, wait=0)
    assert job.status in ("queued", "running")
    assert job.job_id in {j["job_id"] for j in client.jobs()}
    cancelled = client.cancel(job.job_id)
    assert cancelled.job_id == job.job_id and cancelled.status == "cancelled"
    assert client.job(job.job_id).status == "cancelled"
    assert client.cancel(job.job_id).status == "cancelled"  # again: the same answer
    done = client.score([4000], ["params"], protocol=PROTOCOL, wait=30)
    with pytest.raises(ArchscoreError) as info:
        client.cancel(done.job_id)
    assert info.value.status == 409 and info.value.details[0]["field"] == "job_id"


def test_client_retries_a_503_while_redis_is_down_until_it_is_back(tmp_path):
    """A Redis of its own, stopped under a real API process: the API answers 503 with Retry-After; the
    client's retries are bounded, honour Retry-After, and succeed once Redis is restarted."""
    port, api_port = runner.free_port(), runner.free_port()
    data = tmp_path / "redis"
    servers = [runner.start_redis(data, port)]
    env = {k: v for k, v in runner.child_env(f"redis://127.0.0.1:{port}/0").items() if not k.startswith("ARCHSCORE_")}
    env.update(
        ARCHSCORE_REDIS_URL=f"redis://127.0.0.1:{port}/0",
        ARCHSCORE_DATA_DIR=str(tmp_path / "data"),
        ARCHSCORE_ALLOW_UNBOUNDED_REDIS="true",
        OMP_NUM_THREADS="1",
    )
    base = f"http://127.0.0.1:{api_port}"
    cell = [[0, 1, 2, 3, 4, 0]]  # params only: the API scores it itself, no worker needed
    log = tmp_path / "api.log"
    with open(log, "wb") as out:
        api = subprocess.Popen(
            runner.api_command("127.0.0.1", api_port), env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_answering(f"{base}/healthz", 60, procs={"API": api}, logs={"API": log})
        with Client(base) as c:
            first = c.score(cell, ["params"], wait=30)
        assert first.status == "done"

        runner.stop(servers)
        seen: list[tuple[int, float, str]] = []

        def note(response, delay):
            seen.append((response.status_code, delay, response.json()["error"]["details"][0]["field"]))

        with Client(base, retries=0, on_retry=note) as c, pytest.raises(ArchscoreError) as info:
            c.score(cell, ["params"], wait=30)
        assert info.value.status == 503 and info.value.details[0]["field"] == "redis" and seen == []
        started = time.monotonic()
        with Client(base, retries=1, on_retry=note) as c, pytest.raises(ArchscoreError) as info:
            c.job("0" * 32)
        assert info.value.status == 503 and seen == [(503, 2.0, "redis")]  # one retry, after Retry-After: 2
        assert time.monotonic() - started >= 2.0

        seen.clear()
        answers: list = []

        def score_with_retries():
            try:
                with Client(base, retries=5, on_retry=note) as c:
                    answers.append(c.score(cell, ["params"], wait=30))
            except Exception as exc:
                answers.append(exc)

        # the client asks in a thread; Redis restarts from this one (a Redis started from a thread would
        # get its parent-death signal when that thread ends)
        started = time.monotonic()
        asking = threading.Thread(target=score_with_retries)
        asking.start()
        wait_until(lambda: seen, 30, interval=0.05, message="the client's first retry while Redis is down")
        servers.append(runner.start_redis(data, port))
        asking.join(60)
        [again] = answers
        assert isinstance(again, Job), again
        assert again.status == "done" and again.results[0].scores == first.results[0].scores
        assert seen and all(entry == (503, 2.0, "redis") for entry in seen), seen
        assert time.monotonic() - started >= 2.0 * len(seen)
    finally:
        runner.stop([api, *servers])


def test_async_client_retries_after_retry_after_without_server():
    import asyncio

    answers = [
        httpx.Response(503, headers={"Retry-After": "0"}, json={"error": {"status": 503, "message": "down"}}),
        httpx.Response(200, json=[{"name": "nb201"}]),
    ]
    seen, retried = [], []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return answers[len(seen) - 1]

    async def scenario():
        async with AsyncClient(
            "http://archscore.test",
            transport=httpx.MockTransport(handler),
            on_retry=lambda r, d: retried.append((r.status_code, d)),
        ) as c:
            return await c.spaces()

    assert asyncio.run(scenario()) == [{"name": "nb201"}]
    assert len(seen) == 2 and retried == [(503, 0.0)]


@pytest.mark.slow
def test_the_client_installs_alone_without_torch_and_scores(live, tmp_path):
    """A fresh virtual environment without torch: `pip install ./clients/python` pulls only httpx and its
    needs, and the client scores against the running service."""
    venv = tmp_path / "venv"
    subprocess.run([shutil.which("python3.11") or sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    installed = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(ROOT / "clients" / "python")],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    code = (
        "import importlib.metadata, importlib.util, sys\n"
        "from archscore_client import Client\n"
        "assert importlib.util.find_spec('torch') is None and importlib.util.find_spec('archscore') is None\n"
        "requires = importlib.metadata.requires('archscore-client')\n"
        "assert [r.split('<')[0].split('>')[0] for r in requires] == ['httpx'], requires\n"
        f"with Client({live['url']!r}) as c:\n"
        "    job = c.score([[0, 1, 2, 3, 4, 0]], ['params'], wait=60)\n"
        "    streamed = list(c.iter_scores([1, 2, 3], ['params'], chunk_size=2))\n"
        "    assert [r.index for r in streamed] == [0, 1, 2]\n"
        "    print(job.status, job.results[0].scores['params'])\n"
    )
    ran = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert ran.returncode == 0, ran.stderr[-2000:]
    status, params = ran.stdout.split()
    assert status == "done" and float(params) > 0
