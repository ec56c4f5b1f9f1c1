"""Redis stays bounded: cache entries carry TTLs renewed on use, the server's memory cap evicts only
those (volatile-lru), never queues or unfinished jobs, while thousands of protocols arrive."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from helpers.scoring import cells

from archscore.contract import store
from archscore.service import runner

MAXMEMORY = 4 * 1024 * 1024


@pytest.fixture
def capped_redis(tmp_path):
    port = runner.free_port()
    proc = runner.start_redis(tmp_path / "redis", port, maxmemory=str(MAXMEMORY))
    yield f"redis://127.0.0.1:{port}/0"
    runner.stop([proc])


@pytest.mark.slow
def test_memory_stays_under_the_cap_while_2000_protocols_arrive(capped_redis, settings_env, monkeypatch):
    import redis

    settings_env(redis_url=capped_redis)
    monkeypatch.setattr(store, "PROTOCOLS_KEPT", 1500)
    r = redis.Redis.from_url(capped_redis, decode_responses=True)
    from archscore.service.app import create_app

    archs = cells(40, seed=61)
    with TestClient(create_app()) as api:
        # work in flight: no worker consumes this Redis, so the job stays queued through the flood
        pending = api.post("/v1/scores", json={"archs": archs[:3], "estimators": ["synflow"]}).json()
        assert pending["status"] == "queued"
        queued = r.llen("celery")
        assert queued == 1 and r.ttl(store.job_key(pending["job_id"])) == -1
        peak = 0
        for i in range(2000):
            body = {"archs": archs, "estimators": ["params", "flops"], "protocol": {"seed": 1000 + i}}
            if i % 10:
                body["truth"] = None  # most without statistics; every tenth computes and caches them
            resp = api.post("/v1/scores", json=body)
            assert resp.status_code == 200, (i, resp.text)
            if i % 100 == 99:
                # what the cap bounds: used_memory less the AOF and replication buffers, which Redis does not
                # count for eviction (they grow for a moment whenever the disk is slow to take the AOF)
                memory = r.info("memory")
                peak = max(peak, memory["used_memory"] - memory["mem_not_counted_for_evict"])
        stats = r.info("stats")
        assert stats["evicted_keys"] > 0, "the flood should have filled the cap"
        assert peak <= MAXMEMORY * 1.05, f"used_memory peaked at {peak} bytes"
        # nothing that is not a cache entry was evicted
        assert r.llen("celery") == queued
        assert r.exists(store.job_key(pending["job_id"]))
        job = api.get(f"/v1/jobs/{pending['job_id']}").json()
        assert job["status"] == "queued" and job["progress"] == {"done": 0, "total": 3}
        # cache entries carry TTLs; the newest protocol answers and is listed first
        last = resp.json()["protocol_hash"]
        assert 0 < r.ttl(store.members_key("nb201", last)) <= 30 * 24 * 3600
        # the protocol index is never evicted (no TTL) but bounded: the newest PROTOCOLS_KEPT protocols
        index = store.protocols_key("nb201")
        assert r.ttl(index) == -1 and r.zcard(index) == 1500
        newest = r.zrevrange(index, 0, 1)
        assert newest[0] == last
        # a protocol whose record is gone (as eviction leaves it) is not listed, and leaves the index
        r.delete(store.protocol_key("nb201", newest[1]))
        listed = api.get("/v1/rankings/nb201", params={"limit": 5}).json()
        assert listed["rankings"][0]["protocol_hash"] == last and len(listed["rankings"]) <= 4
        assert newest[1] not in [report["protocol_hash"] for report in listed["rankings"]]
        assert listed["next_offset"] == 5 and r.zscore(index, newest[1]) is None
