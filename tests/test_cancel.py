"""DELETE /v1/jobs/{id}: a scoring job stops, a training stops and frees its checkpoint name at once."""

from __future__ import annotations

import time

import pytest

from archscore.service import store
from test_one_shot_service import supernet_dir  # noqa: F401 - the fixture
from test_service import cells, error_fields, phash, request

pytestmark = pytest.mark.usefixtures("celery_worker")


def _scored(r, seed: int, batch_size: int) -> int:
    return r.hlen(store.score_key("nb201", phash(seed, batch_size), "snip", "1"))


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
    time.sleep(4)  # all ten would be scored by now (~0.3 s each) were the chunks not revoked
    assert _scored(r, 151, 64) <= at_cancel + 1, "chunks kept running after the cancel"
    job = client.get(f"/v1/jobs/{job_id}", params={"wait": 5}).json()
    assert job["status"] == "cancelled"
    assert len(job["results"]) == n
    unscored = [x for x in job["results"] if x["scores"]["snip"] is None]
    assert len(unscored) >= n - at_cancel - 1 and all(x["error"] == "cancelled before it was scored" for x in unscored)
    assert r.ttl(store.job_key(job_id)) > 0, "a cancelled job has ended: its record expires"
    # a finished job cannot be cancelled; an unknown one is 404
    done = client.post("/v1/scores", params={"wait": 30}, json=request(cells(1, seed=52), ["snip"], seed=152)).json()
    error_fields(client.delete(f"/v1/jobs/{done['job_id']}"), 409)
    error_fields(client.delete(f"/v1/jobs/{'0' * 32}"), 404)


def test_cancel_a_training_frees_its_name_at_once(client, supernet_dir):  # noqa: F811
    body = {"name": "long", "network": {"C": 4, "N": 1}, "epochs": 50, "steps_per_epoch": 100_000, "batch_size": 32}
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
