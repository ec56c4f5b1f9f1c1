"""The image, built and run: docker-compose.yml's services from the archscore image, with podman.

`make container-test` builds the image (`make image`) and runs the tests marked ``container``; `make
test` leaves them out. The stack is the compose file's own (tests/helpers/compose.py reads every
service's command, environment, volumes, init, restart policy and healthcheck from it) and is reached
from the host over HTTP, as a user reaches a deployment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from helpers import compose
from helpers.scoring import cells, request
from helpers.waiting import wait_until

IMAGE = os.environ.get("ARCHSCORE_IMAGE", "archscore:latest")
HOST, GUEST = "10.213.0.1", "10.213.0.2"  # the host's end of the veth pair and the stack's
API = f"http://{GUEST}:8000"


def test_the_compose_file_uses_only_what_the_container_test_runs():
    """The stack the container tests start is the one the compose file describes: every key of every
    service is one tests/helpers/compose.py translates, and each service's command is the file's."""
    stack = compose.Stack("p", "img", "ns")
    for name in ("docker-compose.yml", "docker-compose.gpu.yml"):
        for service, spec in compose.load(name)["services"].items():
            assert set(spec) <= compose.UNDERSTOOD, f"{name}: {service} uses {set(spec) - compose.UNDERSTOOD}"
    file = compose.load()
    assert compose.started_services(file) == ["redis", "api", "worker", "trainer"]
    for service in compose.started_services(file):
        spec = file["services"][service]
        args = compose.run_args(stack, service, spec)
        assert args[args.index("img") + 1 :] == spec["command"]
        assert ("--restart" in args) == ("restart" in spec)
        assert ("--health-cmd" in args) == ("healthcheck" in spec)
        for key, value in (spec.get("environment") or {}).items():
            assert f"{key}={value}" in args


def _image_exists() -> bool:
    try:
        return compose.podman("image", "exists", IMAGE, check=False).returncode == 0
    except FileNotFoundError:
        return False


container = pytest.mark.skipif(
    os.geteuid() != 0 or not _image_exists(), reason=f"needs root and the image {IMAGE}: `make container-test`"
)


def _ip(*args: str, netns: str | None = None) -> None:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    subprocess.run([*prefix, "ip", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def stack() -> Iterator[compose.Stack]:
    """The compose file's services (redis, api, worker, trainer) running from the image in a network
    namespace of their own, the API reached at GUEST:8000 over a veth pair; removed afterwards."""
    suffix = uuid.uuid4().hex[:6]
    st = compose.Stack(f"archscore-ct-{suffix}", IMAGE, f"archscore-ct-{suffix}")
    host_end, guest_end = f"asct{suffix}h", f"asct{suffix}g"
    file = compose.load()
    try:
        subprocess.run(["ip", "netns", "add", st.netns], check=True)
        _ip("link", "add", host_end, "type", "veth", "peer", "name", guest_end)
        _ip("link", "set", guest_end, "netns", st.netns)
        _ip("addr", "add", f"{HOST}/30", "dev", host_end)
        _ip("link", "set", host_end, "up")
        _ip("addr", "add", f"{GUEST}/30", "dev", guest_end, netns=st.netns)
        _ip("link", "set", guest_end, "up", netns=st.netns)
        _ip("link", "set", "lo", "up", netns=st.netns)
        for name in compose.started_services(file):
            spec = file["services"][name]
            started = time.monotonic()
            compose.podman(*compose.run_args(st, name, spec))
            if name == "redis":  # the others depend on it being healthy (depends_on: service_healthy)
                wait_until(lambda: compose.healthy(st, "redis"), 60, 0.5, "redis's healthcheck")
            if name == "api":
                wait_until(lambda: _answers("/healthz"), 90, 0.2, lambda: _logs(st, "api"))
                print(
                    f"\ncold start: the API container answered /healthz {time.monotonic() - started:.1f} s after `podman run`"
                )
        wait_until(
            lambda: httpx.get(f"{API}/readyz", timeout=5).json().get("ready"),
            120,
            1,
            lambda: f"/readyz never ready:\n{_logs(st, 'worker')}",
            ignore=(httpx.TransportError,),
        )
        yield st
    finally:
        for name in reversed(compose.started_services(file)):
            compose.podman("rm", "--force", "--time", "2", st.container(name), check=False)
        for volume in ("redis-data", "supernets"):
            compose.podman("volume", "rm", "--force", st.volume(volume), check=False)
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", st.netns], capture_output=True)


def _answers(path: str) -> bool:
    try:
        return httpx.get(f"{API}{path}", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def _logs(st: compose.Stack, service: str) -> str:
    return compose.podman("logs", "--tail", "40", st.container(service), check=False).stdout


def _job(job_id: str) -> dict:
    return httpx.get(f"{API}/v1/jobs/{job_id}", timeout=10).json()


def _finished(body: dict, timeout: float = 240) -> dict:
    """POST /v1/scores and poll the job until it is done, as a client does; the finished job."""
    resp = httpx.post(f"{API}/v1/scores", json=body, timeout=30)
    assert resp.status_code in (200, 202), resp.text
    job = resp.json()
    if job["status"] != "done":
        job = wait_until(
            lambda: (j := _job(job["job_id"]))["status"] == "done" and j, timeout, 1, lambda: str(_job(job["job_id"]))
        )
    return job


@container
@pytest.mark.container
@pytest.mark.timeout(600)
def test_the_services_are_healthy_and_run_as_a_user_without_privileges(stack):
    for service in ("redis", "api", "worker", "trainer"):
        wait_until(
            lambda: compose.healthy(stack, service), 90, 2, lambda: f"{service}'s healthcheck:\n{_logs(stack, service)}"
        )
    for service in ("api", "worker", "trainer"):
        uid = compose.podman("exec", stack.container(service), "id", "-u").stdout.strip()
        assert uid == "10001", f"{service} runs as uid {uid}"
    # the API's worker census is refreshed every few seconds: the trainer may join it a little later
    ready = wait_until(lambda: (r := httpx.get(f"{API}/readyz", timeout=5).json())["missing"] == [] and r, 60, 1)
    assert ready["ready"], ready
    assert ready["queues"] == {"celery": 1, "training": 1} and ready["redis_memory"]["bounded"], ready


@container
@pytest.mark.container
@pytest.mark.timeout(600)
def test_a_score_request_with_a_truth_column_is_answered_with_rankings(stack):
    archs = cells(12, seed=3)
    body = _finished(request(archs, ["synflow", "params"], seed=7, truth="cifar10_test"))
    assert [r["arch"] for r in body["results"]] == archs
    assert all(r["scores"]["synflow"] is not None for r in body["results"]), [
        r for r in body["results"] if r["scores"]["synflow"] is None
    ][:1]
    rankings = body["rankings"]
    assert rankings["n"] == 12, rankings
    for name in ("synflow", "params"):
        tau = rankings["estimators"][name]["kendall_tau"]
        assert tau is not None and -1 <= tau <= 1, rankings


@container
@pytest.mark.container
@pytest.mark.timeout(600)
def test_a_predictor_is_fitted_and_named_in_a_score_request(stack):
    """LightGBM runs in the image (its OpenMP runtime installed): the API fits the trees and predicts."""
    protocol = {"batch_size": 16, "num_batches": 1, "seed": 7}
    fit = {"name": "in-the-image", "archs": cells(8, seed=5), "estimators": ["params", "flops"], "protocol": protocol}
    resp = httpx.post(f"{API}/v1/predictors", json=fit, timeout=30)
    assert resp.status_code == 202, resp.text
    fitted = httpx.get(f"{API}/v1/predictors/in-the-image", params={"wait": 30}, timeout=60).json()
    assert fitted["status"] == "done" and fitted["library"].startswith("lightgbm"), fitted
    body = _finished(request(cells(3, seed=6), ["predictor:in-the-image"], seed=7))
    assert all(0 < r["scores"]["predictor:in-the-image"] <= 1 for r in body["results"]), body["results"]


@container
@pytest.mark.container
@pytest.mark.timeout(600)
def test_a_supernet_trained_for_one_epoch_scores_oneshot_acc(stack):
    resp = httpx.post(
        f"{API}/v1/supernets",
        json={"name": "tiny", "network": {"C": 4, "N": 1}, "epochs": 1, "steps_per_epoch": 3, "batch_size": 64},
        timeout=10,
    )
    assert resp.status_code in (200, 202), resp.text
    job_id = resp.json()["job_id"]
    wait_until(lambda: _job(job_id)["status"] == "done", 300, 2, lambda: f"{_job(job_id)}\n{_logs(stack, 'trainer')}")
    archs = cells(4, seed=5)
    body = {
        **request(archs, ["oneshot_acc"], seed=1),
        "protocol": {"oneshot": {"supernet": "tiny", "batch_size": 16, "num_batches": 1}},
    }
    results = _finished(body)["results"]
    assert [r["arch"] for r in results] == archs
    assert all(0 <= r["scores"]["oneshot_acc"] <= 1 for r in results), results
    builtin = [c for c in httpx.get(f"{API}/v1/supernets", timeout=10).json() if c["builtin"]]
    assert [c["name"] for c in builtin] == ["nb201-deiso"], builtin  # the image holds its weights too
    body["protocol"]["oneshot"]["supernet"] = "nb201-deiso"
    results = _finished(body)["results"]
    assert all(0 <= r["scores"]["oneshot_acc"] <= 1 for r in results), results


@container
@pytest.mark.container
@pytest.mark.timeout(600)
def test_a_killed_worker_container_is_restarted_and_the_job_finishes(stack):
    archs = cells(40, seed=11)
    resp = httpx.post(
        f"{API}/v1/scores", json=request(archs, ["synflow", "jacob_cov"], seed=13, batch_size=32), timeout=30
    )
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["job_id"]
    wait_until(lambda: _job(job_id)["progress"]["done"] > 0, 120, 0.2, lambda: f"no progress: {_job(job_id)}")
    assert _job(job_id)["status"] != "done", "the job finished before the worker could be killed: give it more work"
    worker = stack.container("worker")
    restarts = int(compose.podman("inspect", "--format", "{{.RestartCount}}", worker).stdout)
    pid = int(compose.podman("inspect", "--format", "{{.State.Pid}}", worker).stdout)
    os.kill(pid, signal.SIGKILL)  # the container's init, as the kernel's OOM killer would
    wait_until(
        lambda: int(compose.podman("inspect", "--format", "{{.RestartCount}}", worker).stdout) > restarts,
        60,
        0.5,
        "the restart policy bringing the worker back",
    )
    wait_until(lambda: _job(job_id)["status"] == "done", 240, 1, lambda: f"{_job(job_id)}\n{_logs(stack, 'worker')}")
    body = _job(job_id)
    assert [r["arch"] for r in body["results"]] == archs
    assert all(r["scores"]["synflow"] is not None and r["scores"]["jacob_cov"] is not None for r in body["results"])
