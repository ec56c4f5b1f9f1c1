"""Operations a deployer expects: traces from a request through the queue to the worker, /metrics beyond
HTTP and the cache (queues, workers, chunks, trainings), and a job that reads running as soon as a worker
holds one of its chunks."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import httpx
import pytest
from helpers.otlp import otlp_collector
from helpers.scoring import cells, phash, request, worker_idle
from helpers.stack import REPO, api_process, child, child_env
from helpers.waiting import wait_until
from prometheus_client.parser import text_string_to_metric_families

from archscore.contract import store
from archscore.contract.tracing import API, WORKER
from archscore.service import runner


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """(sample name, its labels) -> value, of a /metrics answer."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(text: str, metric: str, /, **labels: str) -> float | None:
    return samples(text).get((metric, frozenset(labels.items())))


@pytest.fixture
def gate(celery_worker, r, monkeypatch):
    """The in-thread worker scores an architecture only once the test lets one through (``gate.release()``);
    the worker is idle again after the test."""
    import archscore.workers.tasks as tasks

    wait_until(lambda: worker_idle(r), 120, message="the worker to finish what earlier tests left")
    permits = threading.Semaphore(0)
    real = tasks._score_one

    def gated(*args, **kwargs):
        if not permits.acquire(timeout=120):
            raise TimeoutError("the test never let this architecture through")
        return real(*args, **kwargs)

    monkeypatch.setattr(tasks, "_score_one", gated)
    yield permits
    permits.release(100)
    wait_until(lambda: worker_idle(r), 120, message="the worker to finish the test's chunks")


@pytest.mark.slow
def test_a_job_reads_running_as_soon_as_a_worker_holds_one_of_its_chunks(client, r, gate):
    archs = cells(2, seed=61)
    resp = client.post("/v1/scores", json=request(archs, ["snip"], seed=161))
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["job_id"]
    last: dict = {}

    def running():
        last.update(client.get(f"/v1/jobs/{job_id}").json())
        return last["status"] == "running"

    wait_until(running, 60, interval=0.05, message=lambda: f"the job to read running (last: {last})")
    assert last["progress"] == {"done": 0, "total": 2} and last["results"] is None
    assert r.hlen(store.score_key("nb201", phash(161), "snip")) == 0  # no result yet: the worker holds the chunk
    assert r.exists(store.job_started_key(job_id))
    gate.release(2)
    done = client.get(f"/v1/jobs/{job_id}", params={"wait": 60}).json()
    assert done["status"] == "done" and all(res["error"] is None for res in done["results"])
    assert r.ttl(store.job_started_key(job_id)) > 0  # it expires with the job


@pytest.mark.slow
def test_metrics_show_queue_depth_and_chunk_durations_while_a_job_runs(test_redis, client, r, gate, tmp_path):
    """Over a real socket, an API process's /metrics while the in-thread worker holds the first of three
    one-architecture chunks, then the second: the queue's depth falls and the first chunk's duration shows
    while the job still runs."""
    estimators = ["grad_norm", "jacob_cov"]
    label = "grad_norm,jacob_cov"
    with api_process(test_redis.url, tmp_path, chunk_size="1") as base, httpx.Client(base_url=base, timeout=30) as http:
        before = http.get("/metrics").text
        assert sample(before, "archscore_redis_up") == 1
        assert sample(before, "archscore_workers", queue="celery") >= 1  # the in-thread worker, idle
        assert sample(before, "archscore_workers", queue="training") >= 1  # it consumes both queues
        ran = sample(before, "archscore_chunk_seconds_count", estimators=label) or 0
        resp = http.post("/v1/scores", json=request(cells(3, seed=71), estimators, seed=171))
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job_id"]

        def status() -> str:
            return http.get(f"/v1/jobs/{job_id}").json()["status"]

        wait_until(lambda: status() == "running", 60, interval=0.05, message="the worker to take the first chunk")
        held = http.get("/metrics").text
        assert sample(held, "archscore_queue_depth", queue="celery") == 2  # the first chunk is the worker's
        assert sample(held, "archscore_queue_depth", queue="training") == 0

        gate.release()  # the first chunk's one architecture: the worker then holds the second chunk
        last = [""]

        def first_chunk_counted() -> bool:
            last[0] = http.get("/metrics").text
            return sample(last[0], "archscore_chunk_seconds_count", estimators=label) == ran + 1

        wait_until(first_chunk_counted, 60, message="the first chunk in /metrics")
        text = last[0]

        def depth_fell() -> bool:  # the worker acknowledges the first chunk, then takes the second
            return sample(http.get("/metrics").text, "archscore_queue_depth", queue="celery") in (0, 1)

        wait_until(depth_fell, 60, message="the queue's depth to fall")
        assert status() == "running"
        assert sample(text, "archscore_chunk_seconds_sum", estimators=label) > 0
        assert sample(text, "archscore_chunk_seconds_bucket", estimators=label, le="+Inf") == ran + 1
        buckets = [
            v
            for (name, labels), v in samples(text).items()
            if name == "archscore_chunk_seconds_bucket" and ("estimators", label) in labels
        ]
        assert len(buckets) == len(store.CHUNK_SECONDS_BUCKETS) + 1 and max(buckets) == ran + 1

        gate.release(2)
        done = http.get(f"/v1/jobs/{job_id}", params={"wait": 60}).json()
        assert done["status"] == "done", done
        after = http.get("/metrics").text
    assert sample(after, "archscore_chunk_seconds_count", estimators=label) == ran + 3
    assert sample(after, "archscore_queue_depth", queue="celery") == 0


def test_a_chunk_whose_estimator_raises_counts_as_a_failure(client, r, monkeypatch):
    import archscore.workers.tasks as tasks

    label = "fisher,synflow"
    failed = sample(client.get("/metrics").text, "archscore_chunk_failures_total", estimators=label) or 0

    def broken(*args, **kwargs):
        raise RuntimeError("an estimator broke")

    monkeypatch.setattr(tasks, "_score_one", broken)
    resp = client.post(
        "/v1/scores", params={"wait": 60}, json=request(cells(1, seed=81), ["synflow", "fisher"], seed=181)
    )
    assert resp.status_code == 200 and resp.json()["results"][0]["error"] == "RuntimeError: an estimator broke"
    text = client.get("/metrics").text
    assert sample(text, "archscore_chunk_failures_total", estimators=label) == failed + 1


@pytest.mark.slow
def test_metrics_show_a_running_trainings_epoch_and_the_epochs_planned(client, r, supernet_dir, monkeypatch):
    """The in-thread worker trains a tiny supernet and is held at its first progress report."""
    import archscore.workers.training as training

    reported = threading.Event()
    go_on = threading.Event()
    real = training._write

    def held(r, job_id, status):
        real(r, job_id, status)
        if status.progress.get("epoch") == 1 and not reported.is_set():
            reported.set()
            go_on.wait(120)

    monkeypatch.setattr(training, "_write", held)
    body = {"name": "watched", "network": {"C": 4, "N": 1}, "epochs": 2, "steps_per_epoch": 2, "batch_size": 32}
    resp = client.post("/v1/supernets", json=body)
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["job_id"]
    try:
        assert reported.wait(120), client.get(f"/v1/jobs/{job_id}").json()
        text = client.get("/metrics").text
        assert sample(text, "archscore_training_epoch", job_id=job_id, name="watched") == 1
        assert sample(text, "archscore_training_epochs", job_id=job_id, name="watched") == 2
    finally:
        go_on.set()
    assert client.get(f"/v1/jobs/{job_id}", params={"wait": 60}).json()["status"] == "done"
    text = client.get("/metrics").text
    assert sample(text, "archscore_training_epoch", job_id=job_id, name="watched") is None  # ended: gone
    assert not r.zscore(store.training_active_key(), job_id)


def test_without_an_otlp_endpoint_neither_side_loads_tracing():
    """No tracer provider, exporter or instrumentation (redis-py itself imports the SDK's metrics module
    when the SDK is installed, and records nothing until it is set up)."""
    code = (
        "import sys, archscore.service.app, archscore.workers.tasks, archscore.workers.training; "
        "prefixes = ('opentelemetry.sdk.trace', 'opentelemetry.instrumentation', 'opentelemetry.exporter'); "
        "loaded = sorted(m for m in sys.modules if m.startswith(prefixes)); assert not loaded, loaded"
    )
    env = {k: v for k, v in os.environ.items() if k != "ARCHSCORE_OTLP_ENDPOINT"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_one_request_is_one_trace_from_the_api_through_the_queue_to_the_worker(test_redis, tmp_path, monkeypatch):
    """An API process and a worker process exporting to an OTLP collector: an uncached score request's
    spans come from both and share one trace id; the worker's task span is a child of the API's publish."""
    crash = test_redis.client(test_redis.crash_db)
    crash.flushdb()
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")  # both processes export every 0.2 s
    with otlp_collector() as collector:
        env = child_env(test_redis.crash_url, torch_threads="1", otlp_endpoint=collector.endpoint)
        worker = runner.worker_command(1, "info", name="traced")
        with (
            child(worker, env, tmp_path / "worker.log"),
            api_process(test_redis.crash_url, tmp_path, otlp_endpoint=collector.endpoint) as base,
        ):
            assert httpx.get(f"{base}/metrics", timeout=30).status_code == 200  # not traced
            resp = httpx.post(
                f"{base}/v1/scores",
                params={"wait": 60},
                json=request(cells(1, seed=51), ["snip"], seed=151),
                timeout=75,
            )
            assert resp.status_code == 200 and resp.json()["status"] == "done", resp.text

            def worker_span():
                return next(
                    (s for s in collector.received() if s.service == WORKER and s.name.startswith("run/")), None
                )

            run = wait_until(worker_span, 30, message=lambda: f"the worker's span (received: {collector.received()})")
            # the request's own span ends after its answer and is exported in the API's next batch, which may come
            # after the worker's: wait for the trace's root too
            wait_until(
                lambda: any(s.trace_id == run.trace_id and s.parent_id == "" for s in collector.received()),
                30,
                message=lambda: f"the request's span (received: {collector.received()})",
            )
        spans = collector.received()
    trace = [s for s in spans if s.trace_id == run.trace_id]
    assert {s.service for s in trace} == {API, WORKER}
    publish = next(s for s in trace if s.span_id == run.parent_id)
    assert publish.service == API and publish.name == "apply_async/archscore.score_chunk"
    request_span = next(s for s in trace if s.span_id == publish.parent_id)
    assert request_span.service == API and request_span.name == "POST /v1/scores" and request_span.parent_id == ""
    assert any(s.service == WORKER and s.parent_id == run.span_id for s in trace)  # the worker's Redis commands
    assert not any("/metrics" in s.name for s in spans)
    crash.flushdb()
