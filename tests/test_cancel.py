"""DELETE /v1/jobs/{id}: a scoring job stops, a training stops and frees its checkpoint name at once."""

from __future__ import annotations

import time

import pytest
from helpers.http import error_fields
from helpers.scoring import cells, phash, request, worker_idle
from helpers.waiting import wait_until

from archscore.contract import store

pytestmark = pytest.mark.usefixtures("celery_worker")


def _scored(r, seed: int, batch_size: int) -> int:
    return r.hlen(store.score_key("nb201", phash(seed, batch_size), "snip"))


@pytest.mark.slow
def test_cancel_a_scoring_job_stops_its_queued_chunks(client, r, settings_env):
    settings_env(chunk_size="1")
    n = 10
    resp = client.post("/v1/scores", json=request(cells(n, seed=51), ["snip", "grad_norm"], seed=151, batch_size=64))
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["job_id"]
    assert r.ttl(store.job_key(job_id)) == -1, "an unfinished job has no TTL: never expired nor evicted"
    cancelled = client.delete(f"/v1/jobs/{job_id}")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    at_cancel = _scored(r, 151, 64)
    # every chunk taken and finished: all ten would be scored by now (~0.3 s each) were the chunks not revoked
    wait_until(lambda: worker_idle(r), 60, message="the worker to take and finish every chunk of the cancelled job")
    assert _scored(r, 151, 64) <= at_cancel + 1, "chunks kept running after the cancel"
    job = client.get(f"/v1/jobs/{job_id}", params={"wait": 5}).json()
    assert job["status"] == "cancelled"
    assert len(job["results"]) == n
    unscored = [x for x in job["results"] if x["scores"]["snip"] is None]
    assert len(unscored) >= n - at_cancel - 1 and all(x["error"] == "cancelled before it was scored" for x in unscored)
    assert r.ttl(store.job_key(job_id)) > 0, "a cancelled job has ended: its record expires"
    # a finished job cannot be cancelled; an unknown one is 404
    done = client.post("/v1/scores", params={"wait": 60}, json=request(cells(1, seed=52), ["snip"], seed=152)).json()
    assert done["status"] == "done", done  # finished before it is asked to be cancelled (wait: the most allowed)
    error_fields(client.delete(f"/v1/jobs/{done['job_id']}"), 409)
    error_fields(client.delete(f"/v1/jobs/{'0' * 32}"), 404)


@pytest.mark.slow
def test_cancel_a_training_frees_its_name_at_once(client, supernet_dir):
    body = {"name": "long", "network": {"C": 4, "N": 1}, "epochs": 50, "steps_per_epoch": 50_000, "batch_size": 32}
    first = client.post("/v1/supernets", json=body)
    assert first.status_code == 202, first.text
    first_id = first.json()["job_id"]
    blocked = client.post("/v1/supernets", json=body)
    assert error_fields(blocked, 409)["name"]  # the name is locked by the running job
    gone = client.delete(f"/v1/jobs/{first_id}")
    assert gone.status_code == 200 and gone.json()["status"] == "cancelled", gone.text
    second = client.post("/v1/supernets", json=body)  # free at once, not after a lock timeout
    assert second.status_code == 202, second.text
    assert client.delete(f"/v1/jobs/{second.json()['job_id']}").json()["status"] == "cancelled"
    # the worker stopped training: it is free for scoring again soon (a training left running would hold it for
    # hours; the bound is loose because a loaded CI machine takes a while to load the scoring data)
    started = time.monotonic()
    quick = client.post("/v1/scores", params={"wait": 60}, json=request(cells(1, seed=54), ["snip"], seed=154)).json()
    assert quick["status"] == "done" and time.monotonic() - started < 60
    assert client.get(f"/v1/jobs/{first_id}").json()["status"] == "cancelled"
    assert not (supernet_dir / "long" / "manifest.json").exists()


@pytest.mark.slow
def test_cancel_stops_a_training_inside_its_step(client, r, supernet_dir):
    """One step of 32 architectures on 512 images takes about a minute here; a cancel is noticed between
    architectures, so the worker is free again within seconds, not after the step."""
    body = {
        "name": "slow-step",
        "network": {"C": 8, "N": 2},
        "epochs": 1,
        "steps_per_epoch": 2,
        "archs_per_step": 32,
        "batch_size": 512,
        "augment": False,
    }
    job_id = client.post("/v1/supernets", json=body).json()["job_id"]
    wait_until(
        lambda: (store.decode(r.get(store.training_status_key(job_id))) or {}).get("status") == "running",
        60,
        message="the training to start",
    )
    # into its first step (nothing outside the worker marks the step's start: a minute long, it is there by now)
    time.sleep(3)
    cancelled_at = time.monotonic()
    assert client.delete(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"
    quick = client.post("/v1/scores", params={"wait": 60}, json=request(cells(1, seed=55), ["snip"], seed=155)).json()
    assert quick["status"] == "done" and time.monotonic() - cancelled_at < 25
    assert not (supernet_dir / "slow-step" / "manifest.json").exists()


def test_training_work_is_bounded_like_scoring_work(client, settings_env):
    body = {"name": "huge", "epochs": 2000, "steps_per_epoch": 1_000_000, "archs_per_step": 32, "batch_size": 1024}
    fields = error_fields(client.post("/v1/supernets", json=body), 422)
    assert (
        "2000 epochs x 1000000 steps x 32 architectures x 1024 images = 65,536,000,000,000 exceeds this "
        "server's bound of 100,000,000 (ARCHSCORE_MAX_TRAINING_WORK)"
    ) in fields["epochs"]
    settings_env(max_training_work="1000")
    default_steps = {"name": "small", "epochs": 1, "batch_size": 100}  # one pass: 3,500 training images / 100
    assert (
        "1 epochs x 35 steps x 1 architectures x 100 images = 3,500"
        in error_fields(client.post("/v1/supernets", json=default_steps), 422)["epochs"]
    )
