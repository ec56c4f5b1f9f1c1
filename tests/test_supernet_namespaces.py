"""Supernet checkpoints per API key, over HTTP against an API process with two keys and an admin key (real
Redis, the session's real worker, tiny supernets): a key trains, lists, resumes, averages and scores with
its own checkpoints and the shared ones the operator trained, never another key's, and cannot write a
shared one."""

from __future__ import annotations

import contextlib

import httpx
import pytest
from helpers.stack import api_process

from archscore.estimators.spaces import get_space

pytestmark = [pytest.mark.usefixtures("celery_worker"), pytest.mark.slow]
NB201 = get_space("nb201")
TINY = {"network": {"C": 4, "N": 1}, "epochs": 1, "steps_per_epoch": 2, "batch_size": 32}
ARCHS = ["|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"]


@contextlib.contextmanager
def _keys(test_redis, tmp_path):
    with api_process(test_redis.url, tmp_path, api_keys='["key-a", "key-b"]', admin_keys='["key-admin"]') as base:
        yield {
            who: httpx.Client(base_url=base, headers={"X-API-Key": f"key-{who}"}, timeout=60)
            for who in ("a", "b", "admin")
        }


def _done(client: httpx.Client, response: httpx.Response) -> dict:
    assert response.status_code == 202, response.text
    job = client.get(f"/v1/jobs/{response.json()['job_id']}", params={"wait": 120}).json()
    assert job["status"] == "done", job
    return job


def _train(client: httpx.Client, name: str, seed: int, **extra) -> dict:
    return _done(client, client.post("/v1/supernets", json={"name": name, "seed": seed, **TINY, **extra}))


def _listed(client: httpx.Client) -> dict[str, dict]:
    """The checkpoints of the supernet folder a key sees (not the built-in ones)."""
    return {c["name"]: c for c in client.get("/v1/supernets").json() if not c["builtin"]}


def _one_shot(client: httpx.Client, supernet: str) -> httpx.Response:
    body = {"archs": ARCHS, "estimators": ["oneshot_acc"], "protocol": {"oneshot": {"supernet": supernet}}}
    return client.post("/v1/scores", params={"wait": 120}, json=body)


def _reason(response: httpx.Response, field: str) -> str:
    assert response.status_code == 422, response.text
    return {d["field"]: d["reason"] for d in response.json()["error"]["details"]}[field]


def test_each_key_keeps_its_own_checkpoints_and_reads_the_shared_ones(test_redis, tmp_path, supernet_dir):
    with _keys(test_redis, tmp_path) as key:
        shared = _train(key["admin"], "base", seed=0)["checkpoint"]
        own_a = _train(key["a"], "mine", seed=1)
        own_b = _train(key["b"], "mine", seed=2)  # the same name in another namespace: no 409
        assert own_a["name"] == own_b["name"] == "mine" and own_a["checkpoint"]["name"] == "mine"
        assert own_a["checkpoint"]["sha256"] != own_b["checkpoint"]["sha256"]

        seen_a, seen_b = _listed(key["a"]), _listed(key["b"])
        assert set(seen_a) == set(seen_b) == {"mine", "base"}
        assert seen_a["mine"]["sha256"] == own_a["checkpoint"]["sha256"] and not seen_a["mine"]["shared"]
        assert seen_b["mine"]["sha256"] == own_b["checkpoint"]["sha256"]
        assert seen_a["base"]["sha256"] == shared["sha256"] and seen_a["base"]["shared"]
        folders = _listed(key["admin"])  # the operator sees every folder
        assert {n for n in folders if n.endswith("~mine")} and len(folders) == 3
        assert sum(1 for p in supernet_dir.iterdir() if p.name.endswith("~mine")) == 2

        # scoring resolves a name in the caller's namespace; another key's checkpoint is not there
        scored_a = _one_shot(key["a"], "mine").json()
        assert scored_a["protocol"]["oneshot"]["supernet"] == own_a["checkpoint"]["sha256"]
        assert _one_shot(key["b"], "mine").json()["protocol"]["oneshot"]["supernet"] == own_b["checkpoint"]["sha256"]
        assert "no supernet checkpoint" in _reason(
            _one_shot(key["a"], own_b["checkpoint"]["sha256"][:12]), "protocol.oneshot.supernet"
        )
        assert _one_shot(key["b"], "base").status_code == 200

        # a shared checkpoint is read-only to keys: resuming it is refused and nothing changes on disk
        resumed = key["b"].post("/v1/supernets", json={"name": "base", "resume": True, **TINY, "epochs": 2})
        assert "shared checkpoint" in _reason(resumed, "resume")
        assert _listed(key["b"])["base"]["sha256"] == shared["sha256"]

        # an average of one's own and a shared checkpoint is one's own, its sources by the names given
        averaged = _done(
            key["a"], key["a"].post("/v1/supernets/average", json={"name": "avg", "checkpoints": ["mine", "base"]})
        )
        assert averaged["name"] == "avg" and averaged["config"]["average_of"] == ["mine", "base"]
        assert [s["name"] for s in averaged["checkpoint"]["averaged_from"]] == ["mine", "base"]
        assert "avg" in _listed(key["a"]) and "avg" not in _listed(key["b"])
        builtin = key["a"].post("/v1/supernets/average", json={"name": "x", "checkpoints": ["mine", "nb201-deiso"]})
        assert "built into archscore" in _reason(builtin, "checkpoints[1]")
        assert [c["shared"] for c in key["b"].get("/v1/supernets").json() if c["builtin"]] == [True]

        # a key's checkpoint of a shared name hides the shared one from that key only
        hiding = _train(key["b"], "base", seed=3)["checkpoint"]
        assert _listed(key["b"])["base"]["sha256"] == hiding["sha256"] and not _listed(key["b"])["base"]["shared"]
        assert _listed(key["a"])["base"]["sha256"] == shared["sha256"]
