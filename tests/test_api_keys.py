"""API keys own their work, over HTTP against an API process with two keys and an admin key (real Redis,
the session's real worker): jobs, studies and truth tables are each key's own, the score cache is shared,
a key's requests are rate limited (429 + Retry-After) and its unfinished jobs bounded."""

from __future__ import annotations

import contextlib

import httpx
import pytest
from helpers.stack import api_process

from archscore.estimators.spaces import get_space

pytestmark = pytest.mark.usefixtures("celery_worker")
NB201 = get_space("nb201")
KEYS = '["key-a", "key-b"]'


@contextlib.contextmanager
def _api(test_redis, tmp_path, **settings):
    with api_process(test_redis.url, tmp_path, api_keys=KEYS, admin_keys='["key-admin"]', **settings) as base:
        yield {
            name: httpx.Client(base_url=base, headers={"X-API-Key": f"key-{name}"}, timeout=60)
            for name in ("a", "b", "admin")
        }


def _archs(n: int, seed: int) -> list[str]:
    return [NB201.to_string(a) for a in NB201.sample(n, seed=seed)]


@pytest.mark.slow
def test_each_key_sees_only_its_own_jobs_studies_and_tables(test_redis, tmp_path):
    with _api(test_redis, tmp_path) as key:
        archs = _archs(6, seed=71)
        body = {"archs": archs, "estimators": ["snip"], "protocol": {"batch_size": 8, "seed": 171}}
        job = key["a"].post("/v1/scores", json=body).json()
        job_id = job["job_id"]
        assert key["a"].get(f"/v1/jobs/{job_id}").status_code == 200
        assert key["b"].get(f"/v1/jobs/{job_id}").status_code == 404  # not even told it exists
        assert key["b"].delete(f"/v1/jobs/{job_id}").status_code == 404
        assert job_id not in [j["job_id"] for j in key["b"].get("/v1/jobs").json()]
        assert job_id in [j["job_id"] for j in key["a"].get("/v1/jobs").json()]
        assert job_id in [j["job_id"] for j in key["admin"].get("/v1/jobs").json()]
        done = key["a"].get(f"/v1/jobs/{job_id}", params={"wait": 60}).json()
        assert done["status"] == "done"
        # the score cache is content-addressed and shared: key B's same request is answered from it
        again = key["b"].post("/v1/scores", json=body).json()
        assert again["status"] == "done" and again["job_id"] != job_id
        assert [r["scores"] for r in again["results"]] == [r["scores"] for r in done["results"]]

        # truth tables: the same name is two tables, one per key
        for name, value in (("a", 10.0), ("b", 90.0)):
            table = "arch,acc\n" + "".join(f"{a},{value + i}\n" for i, a in enumerate(archs))
            put = key[name].put("/v1/truth/nb201/mine", content=table, headers={"content-type": "text/plain"})
            assert put.status_code == 200, put.text
        for name, value in (("a", 10.0), ("b", 90.0)):
            scored = key[name].post("/v1/scores", json={**body, "truth": "mine"}).json()
            assert scored["truth"] == "mine"
            assert [r["ground_truth"] for r in scored["results"]] == [value + i for i in range(len(archs))]
            ranked = key[name].get("/v1/rankings/nb201", params={"truth": "mine"})
            assert ranked.status_code == 200 and ranked.json()["truth"] == "mine"
        assert key["b"].delete("/v1/truth/nb201/mine").status_code == 200
        assert key["b"].post("/v1/scores", json={**body, "truth": "mine"}).status_code == 422
        assert key["a"].post("/v1/scores", json={**body, "truth": "mine"}).json()["results"][0]["ground_truth"] == 10.0

        study = (
            key["a"]
            .post(
                "/v1/studies",
                json={"study": "complexity_bias", "archs": archs, "estimators": ["params"], "truth": "cifar10_test"},
            )
            .json()
        )
        assert key["b"].get(f"/v1/studies/{study['study_id']}").status_code == 404
        assert key["b"].delete(f"/v1/studies/{study['study_id']}").status_code == 404
        assert study["study_id"] not in [s["study_id"] for s in key["b"].get("/v1/studies/runs").json()]
        assert key["admin"].get(f"/v1/studies/{study['study_id']}").status_code == 200


def test_a_key_is_rate_limited_and_its_unfinished_jobs_bounded(test_redis, tmp_path):
    with _api(test_redis, tmp_path, rate_limit_per_minute="40", max_active_jobs_per_key="1") as key:
        heavy = {
            "archs": _archs(40, seed=72),
            "estimators": ["grasp", "jacob_cov"],
            "protocol": {"batch_size": 32, "seed": 172},
        }
        first = key["a"].post("/v1/scores", json=heavy)
        assert first.status_code == 202, first.text
        second = key["a"].post("/v1/scores", json={**heavy, "protocol": {"batch_size": 32, "seed": 173}})
        assert second.status_code == 429 and second.headers["retry-after"]
        assert "at most 1 per key" in second.json()["error"]["details"][0]["reason"]
        other = key["b"].post("/v1/scores", json={**heavy, "archs": heavy["archs"][:2]})  # B has its own quota
        assert other.status_code in (200, 202), other.text
        assert key["a"].delete(f"/v1/jobs/{first.json()['job_id']}").status_code == 200
        assert key["b"].delete(f"/v1/jobs/{other.json()['job_id']}").status_code in (200, 409)

        # the limit counts every /v1 request of the key in a minute (90 requests pass 40 even if a minute
        # ends between them)
        answers = [key["b"].get("/v1/spaces") for _ in range(90)]
        limited = next(a for a in answers if a.status_code == 429)
        # (earlier tests of key B in this minute count too)
        assert sum(a.status_code == 200 for a in answers[: answers.index(limited)]) >= 10
        assert 1 <= int(limited.headers["retry-after"]) <= 60 and "ARCHSCORE_RATE_LIMIT_PER_MINUTE" in limited.text
        assert key["a"].get("/v1/spaces").status_code == 200  # A's count is its own ...
        assert key["admin"].get("/v1/spaces").status_code == 200  # ... and so is the admin's
