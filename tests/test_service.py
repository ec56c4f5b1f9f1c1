"""The HTTP service end to end: a real Redis, a real Celery worker, the FastAPI app.

Fixtures (tests/conftest.py): ``test_redis`` (a locked, flushed DB pair on 127.0.0.1:6379 or an
embedded redis-server), ``celery_worker`` (a solo-pool worker in a thread of this process),
``client`` (TestClient on archscore.service.app.app), ``r`` (sync Redis on the test DB), ``settings_env``.

Scoring is kept cheap: batch 16, one batch, cheap estimators, and a distinct protocol seed per test
wherever a cold cache matters (the score cache is shared by every test of the session).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from helpers.http import error_fields, wait_answering
from helpers.scoring import cells, phash, request, snapshot, stored_job, worker_idle
from helpers.stack import REPO, child, child_env, stopped, tasks_run
from helpers.waiting import wait_until

from archscore.contract import store
from archscore.estimators.catalog import POPULATION
from archscore.estimators.ranking import ranking_report
from archscore.estimators.spaces import get_space
from archscore.estimators.spaces.nb201 import arch_to_naslib, has_conv_path, isomorphism_classes
from archscore.estimators.truth import load_builtin
from archscore.estimators.zero_shot.manifest import ZERO_SHOT
from archscore.service import runner
from archscore.service.schemas import EXAMPLE_ARCH

pytestmark = pytest.mark.usefixtures("celery_worker")

SP = get_space("nb201")
CHEAP = ["params", "flops", "synflow", "relu", "snip"]
TRUTH = load_builtin("nb201", "cifar10_test")
BAD_OP = "|nor_conv_3x3~0|+|nor_conv_3x3~0|bogus_op~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


# --- 1, 2: scoring -----------------------------------------------------------------------------------


def test_scores_wait_returns_results_for_every_encoding(client):
    encodings = [EXAMPLE_ARCH, [0, 1, 2, 3, 4, 0], 1234]
    resp = client.post("/v1/scores?wait=60", json=request(encodings, CHEAP, seed=101))
    assert resp.status_code == 200, resp.text
    job = resp.json()
    assert job["status"] == "done"
    assert job["protocol_hash"] == phash(101)
    assert job["progress"] == {"done": 3, "total": 3}
    assert [res["index"] for res in job["results"]] == [0, 1, 2]
    for enc, res in zip(encodings, job["results"]):
        arch = SP.parse(enc)
        assert res["arch"] == SP.to_string(arch)
        assert res["canonical_key"] == SP.canonical_key(arch)
        assert res["ground_truth"] == TRUTH.lookup(enc)
        assert res["error"] is None
        assert set(res["scores"]) == set(CHEAP)
        # the scores belong to this architecture: params is its exact analytic count
        assert res["scores"]["params"] == pytest.approx(SP.cost(arch)[0] / 1e6)
        for name, value in res["scores"].items():
            if has_conv_path(arch):
                assert isinstance(value, float), (enc, name, value)
            else:  # a degenerate cell may have null scores, but then it says why
                assert isinstance(value, float) or res["reasons"].get(name), (enc, name)
    assert isinstance(job["results"][0]["scores"]["snip"], float)
    stats = job["rankings"]
    assert stats["truth"] == "cifar10_test" and stats["protocol_hash"] == job["protocol_hash"]
    assert stats["n"] == 3
    assert set(stats["estimators"]) == set(CHEAP)
    assert all("kendall_tau" in s for s in stats["estimators"].values())


def test_scores_without_wait_is_202_then_job_long_poll_finishes(client):
    archs = cells(2, seed=2)
    resp = client.post("/v1/scores", json=request(archs, ["params", "relu"], seed=102))
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert job["status"] in ("queued", "running") and job["results"] is None
    assert job["progress"] == {"done": 0, "total": 2}
    resp = client.get(f"/v1/jobs/{job['job_id']}", params={"wait": 60})
    assert resp.status_code == 200
    done = resp.json()
    assert done["status"] == "done"
    assert done["progress"] == {"done": 2, "total": 2}
    assert [res["arch"] for res in done["results"]] == archs
    for res in done["results"]:
        assert isinstance(res["scores"]["relu"], float) and isinstance(res["scores"]["params"], float)
    assert error_fields(client.get("/v1/jobs/" + "0" * 32), 404) == {}
    assert "job_id" in error_fields(client.get("/v1/jobs/no-such-job"), 422)


# --- 3, 4: validation ----------------------------------------------------------------------------------


def test_bad_encodings_are_422_per_index_and_nothing_is_stored(client, r):
    good = cells(2, seed=3)
    before, tasks_before = snapshot(r), tasks_run()
    resp = client.post(
        "/v1/scores?wait=5",
        json=request([good[0], BAD_OP, [0, 1, 2], 99999, True, good[1], [0, 1, 2, 3, 4, 9]], ["params"], seed=103),
    )
    fields = error_fields(resp, 422)
    assert list(fields) == ["archs[1]", "archs[2]", "archs[3]", "archs[4]", "archs[6]"]
    assert "edge 1->2" in fields["archs[1]"] and "bogus_op" in fields["archs[1]"]
    assert "6 entries" in fields["archs[2]"]
    assert "99999" in fields["archs[3]"] and "out of range" in fields["archs[3]"]
    assert "boolean" in fields["archs[4]"]
    assert "op index 9" in fields["archs[6]"]
    assert snapshot(r) == before
    assert not r.exists(store.members_key("nb201", phash(103)))
    assert tasks_run() == tasks_before


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"estimators": ["no_such_proxy"]}, "estimators[0]", "no_such_proxy"),
        ({"estimators": ["params", "no_such_proxy"]}, "estimators[1]", "no_such_proxy"),
        ({"space": "nb999"}, "space", "nb999"),
        ({"truth": "no_such_column"}, "truth", "no_such_column"),
        ({"colour": "red"}, "colour", "xtra"),
        ({"archs": 5}, "archs", "list"),
        ({"archs": []}, "archs", "at least 1"),
        ({"estimators": "params"}, "estimators", "list"),
        ({"protocol": {"batch_size": 0}}, "protocol.batch_size", "greater than or equal to 1"),
        ({"protocol": {"data_root": "/etc"}}, "protocol.data_root", "xtra"),
        ({"protocol": {"oneshot": {"num_batches": 6}}}, "protocol.oneshot", "at most 500 (the validation images)"),
        (
            {"protocol": {"oneshot": {"images": "held_out", "num_batches": 16}}},
            "protocol.oneshot",
            "at most 1500 (the held-out images)",
        ),
        ({"protocol": {"oneshot": {"images": "test"}}}, "protocol.oneshot.images", "'held_out'"),
    ],
)
def test_invalid_requests_are_422_in_the_error_shape(client, r, change, field, reason):
    body = {**request(cells(1, seed=4), ["params"], seed=104), **change}
    before = snapshot(r)
    fields = error_fields(client.post("/v1/scores?wait=5", json=body), 422)
    assert field in fields, fields
    assert reason in fields[field]
    assert snapshot(r) == before


def test_malformed_json_is_422(client):
    resp = client.post("/v1/scores", content=b'{"archs": [1,', headers={"content-type": "application/json"})
    assert error_fields(resp, 422)


def test_too_many_archs_is_422(client, r, settings_env):
    settings_env(max_archs_per_request="2")
    before = snapshot(r)
    fields = error_fields(client.post("/v1/scores", json=request(cells(3, seed=5), ["params"], seed=105)), 422)
    assert "3 given, at most 2" in fields["archs"]
    assert snapshot(r) == before


def test_wait_above_the_servers_bound_is_422_naming_the_bound(client, r, settings_env):
    """A long-poll longer than the server allows is refused before anything is queued, rather than
    silently cut short (a job answered 202 'queued' after a wait that never happened)."""
    settings_env(max_wait_seconds="5")
    before, tasks_before = snapshot(r), tasks_run()
    for method, path, body in [
        ("POST", "/v1/scores", request(cells(2, seed=6), ["params"], seed=106)),
        ("GET", f"/v1/jobs/{'0' * 32}", None),
        ("GET", f"/v1/studies/{'0' * 32}", None),
    ]:
        fields = error_fields(client.request(method, f"{path}?wait=120", json=body), 422)
        assert "at most 5 seconds" in fields["wait"] and "ARCHSCORE_MAX_WAIT_SECONDS" in fields["wait"]
    assert snapshot(r) == before and tasks_run() == tasks_before
    done = client.post("/v1/scores?wait=5", json=request([EXAMPLE_ARCH], ["params"], seed=106))
    assert done.status_code == 200  # at the bound: waited on as asked


def test_body_over_the_limit_is_413(client, r, settings_env):
    settings_env(max_body_bytes="2000")
    before = snapshot(r)
    big = request([EXAMPLE_ARCH] * 40, ["params"], seed=105)  # ~4 kB
    fields = error_fields(client.post("/v1/scores", json=big), 413)
    assert "at most 2000" in fields["body"]
    assert snapshot(r) == before
    small = request([EXAMPLE_ARCH], ["no_such_proxy"], seed=105)  # under the limit: validated as usual
    assert "estimators[0]" in error_fields(client.post("/v1/scores", json=small), 422)


# --- 5: API keys -------------------------------------------------------------------------------------------


def test_api_keys_guard_every_v1_route(client, r, settings_env):
    settings_env(api_keys='["k1"]')
    csv = f"arch,value\n{EXAMPLE_ARCH},50.0\n"
    calls = [
        ("GET", "/v1/spaces", {}, 200),
        ("GET", "/v1/estimators", {}, 200),
        ("GET", "/v1/spaces/nb201/canonical?arch=[0,1,2,3,4,0]", {}, 200),
        ("GET", "/v1/rankings/nb201", {}, 200),
        ("GET", "/v1/jobs/" + "0" * 32, {}, 404),
        ("PUT", "/v1/truth/nb201/keyed", {"content": csv, "headers": {"content-type": "text/plain"}}, 200),
        ("POST", "/v1/scores?wait=60", {"json": request([EXAMPLE_ARCH], ["params"], seed=106)}, 200),
    ]
    before = snapshot(r)
    for method, url, kwargs, ok in calls:
        headers = kwargs.get("headers", {})
        rest = {k: v for k, v in kwargs.items() if k != "headers"}
        missing = client.request(method, url, headers=headers, **rest)
        assert error_fields(missing, 401) == {"X-API-Key": "this server requires an API key"}, url
        wrong = client.request(method, url, headers={**headers, "X-API-Key": "k2"}, **rest)
        assert "X-API-Key" in error_fields(wrong, 401), url
    assert snapshot(r) == before  # rejected requests stored and enqueued nothing
    assert not r.exists(store.truth_key("nb201", "keyed"))
    for method, url, kwargs, ok in calls:
        headers = {**kwargs.get("headers", {}), "X-API-Key": "k1"}
        rest = {k: v for k, v in kwargs.items() if k != "headers"}
        resp = client.request(method, url, headers=headers, **rest)
        assert resp.status_code == ok, (url, resp.text)
    assert client.get("/healthz").status_code == 200


# --- 6, 7: cache and isomorphism -------------------------------------------------------------------------------


def test_second_identical_request_is_answered_from_the_cache(client, r):
    archs = cells(3, seed=6)
    body = request(archs, ["params", "relu"], seed=107)
    first = client.post("/v1/scores?wait=60", json=body).json()
    assert first["status"] == "done" and first["cached"] == 0 and first["progress"]["total"] == 3
    tasks_before = tasks_run()

    resp = client.post("/v1/scores", json=body)  # no wait: the answer is already complete
    assert resp.status_code == 200
    second = resp.json()
    assert second["status"] == "done"
    assert second["cached"] == 3
    assert second["progress"] == {"done": 0, "total": 0}
    assert [x["scores"] for x in second["results"]] == [x["scores"] for x in first["results"]]
    assert stored_job(r, second["job_id"])["chunk_sizes"] == []
    assert not r.exists(store.job_done_key(second["job_id"]))
    assert r.llen("celery") == 0
    wait_until(lambda: worker_idle(r), 30, interval=0.05, message="the worker to finish anything it had taken")
    assert tasks_run() == tasks_before  # the worker was not involved

    # a partial hit enqueues only the new class
    extra = cells(4, seed=6)[3]
    third = client.post("/v1/scores?wait=60", json={**body, "archs": [*archs, extra]}).json()
    assert third["cached"] == 3 and third["progress"] == {"done": 1, "total": 1}
    assert stored_job(r, third["job_id"])["chunk_sizes"] == [1]
    assert tasks_run() == tasks_before + 1


def test_isomorphic_duplicates_are_scored_once(client, r):
    members = next(m for m in isomorphism_classes().values() if len(m) >= 3 and has_conv_path(m[0]))
    a, b = SP.to_string(members[1]), SP.to_string(members[2])
    assert a != b
    resp = client.post("/v1/scores?wait=60", json=request([a, b], ["params", "relu"], seed=108))
    assert resp.status_code == 200, resp.text
    job = resp.json()
    assert job["progress"] == {"done": 1, "total": 1}
    assert stored_job(r, job["job_id"])["chunk_sizes"] == [1]
    ra, rb = job["results"]
    assert (ra["arch"], rb["arch"]) == (a, b)
    assert ra["canonical_key"] == rb["canonical_key"] == SP.canonical_key(members[0])
    assert ra["scores"]["relu"] == rb["scores"]["relu"] and isinstance(ra["scores"]["relu"], float)
    for res, member in ((ra, members[1]), (rb, members[2])):  # params: each cell's own count
        assert res["scores"]["params"] == pytest.approx(SP.cost(member)[0] / 1e6)
    relu_key = store.score_key("nb201", phash(108), "relu")
    assert r.hkeys(relu_key) == [ra["canonical_key"]]  # one entry for the class


# --- 8: ranking statistics --------------------------------------------------------------------------------------


def test_rankings_are_recomputed_only_when_new_scores_land(client, r):
    archs = cells(6, seed=8)
    names = ["params", "relu"]  # computed by the API / scored by the worker
    h = phash(109)

    def score(batch):
        job = client.post("/v1/scores?wait=60", json=request(batch, names, seed=109)).json()
        assert job["status"] == "done"
        return job

    def check_tau(report, results):
        for name in names:
            expected = ranking_report(
                [x["scores"][name] for x in results],
                [x["ground_truth"] for x in results],
                [x["canonical_key"] + x["arch"] for x in results],
            )
            for criterion in ("kendall_tau", "ndcg"):
                assert expected[criterion] is not None
                assert report["estimators"][name][criterion] == pytest.approx(expected[criterion]), (name, criterion)

    def get():
        resp = client.get("/v1/rankings/nb201", params={"protocol_hash": h, "truth": "cifar10_test"})
        assert resp.status_code == 200, resp.text
        (entry,) = resp.json()["rankings"]
        return entry

    first = score(archs[:3])
    before = get()
    assert before["n"] == 3 and before["protocol"]["seed"] == 109
    check_tau(before, first["results"])

    assert get() == before  # nothing new: the cached entry, same generation
    key = store.rankings_key("nb201", h, "cifar10_test")
    entry = store.decode(r.get(key))
    assert entry["generation"] == before["generation"]
    r.set(key, store.encode({**entry, "probe": "served from the cache"}))
    assert get()["probe"] == "served from the cache"

    second = score(archs[3:])
    after = get()
    assert "probe" not in after  # recomputed
    assert after["n"] == 6 and after["generation"] > before["generation"]
    results = first["results"] + second["results"]
    check_tau(after, results)
    assert any(after["estimators"][n]["kendall_tau"] != before["estimators"][n]["kendall_tau"] for n in names)
    # POST responses carry the current statistics of the requested estimators
    assert second["rankings"]["n"] == 6 and set(second["rankings"]["estimators"]) == set(names)

    # an isomorphic sibling of a scored cell is answered from the cache (no task), yet it is a new
    # architecture with its own ground truth: the statistics must include it
    sibling = next(
        SP.to_string(m)
        for a in archs
        for m in isomorphism_classes()[SP.canonical_key(SP.parse(a))]
        if SP.to_string(m) != a
    )
    third = score([sibling])
    assert third["cached"] == 1 and third["progress"]["total"] == 0
    latest = get()
    assert latest["n"] == 7 and latest["generation"] > after["generation"]
    check_tau(latest, results + third["results"])

    assert error_fields(client.get("/v1/rankings/nb201", params={"protocol_hash": "0" * 16}), 404) == {}
    assert "truth" in error_fields(client.get("/v1/rankings/nb201", params={"truth": "nope"}), 422)
    huge = error_fields(client.get("/v1/rankings/nb201", params={"offset": 9223372036854775807}), 422)
    assert "less than or equal to 1000000" in huge["offset"]


OVERFLOWING_GENOTYPE = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=range(2, 99999999999999999999), reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=range(2, 6))"
)


def test_a_range_past_any_index_in_a_genotype_is_422_not_500(client, r):
    before = snapshot(r)
    body = {"space": "nb301", "archs": [OVERFLOWING_GENOTYPE], "estimators": ["params"]}
    assert "too many nodes" in error_fields(client.post("/v1/scores", json=body), 422)["archs[0]"]
    canonical = client.get("/v1/spaces/nb301/canonical", params={"arch": OVERFLOWING_GENOTYPE})
    assert "too many nodes" in error_fields(canonical, 422)["arch"]
    assert snapshot(r) == before


# --- 9: uploaded ground truth -------------------------------------------------------------------------------------


def test_uploaded_truth_table_is_used_for_results(client):
    a, b, c = cells(3, seed=9)
    b_naslib = json.dumps(list(arch_to_naslib(SP.parse(b))))  # the table may use any encoding
    csv = f'arch,acc\n{a},91.5\n"{b_naslib}",42.25\n'
    text = {"content-type": "text/plain"}
    resp = client.put("/v1/truth/nb201/mytable", content=csv, headers=text)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"space": "nb201", "name": "mytable", "rows": 2, "column": "acc", "skipped": []}

    job = client.post("/v1/scores?wait=60", json=request([a, b, c], ["params"], seed=110, truth="mytable")).json()
    assert job["status"] == "done" and job["truth"] == "mytable"
    assert [x["ground_truth"] for x in job["results"]] == [91.5, 42.25, None]
    assert job["rankings"]["truth"] == "mytable" and job["rankings"]["n"] == 2

    # an upload replaces the table of that name, and the statistics over it
    resp = client.put("/v1/truth/nb201/mytable", content=f"arch,acc\n{c},10\n{b},30\n", headers=text)
    assert resp.json()["rows"] == 2
    job = client.post("/v1/scores", json=request([a, b, c], ["params"], seed=110, truth="mytable")).json()
    assert [x["ground_truth"] for x in job["results"]] == [None, 30.0, 10.0]
    stats = client.get("/v1/rankings/nb201", params={"protocol_hash": phash(110), "truth": "mytable"}).json()
    params = [x["scores"]["params"] for x in job["results"][1:]]
    assert stats["rankings"][0]["estimators"]["params"] == ranking_report(params, [30.0, 10.0])

    bad = f"arch,acc\n{c},1\n{BAD_OP},2\n"
    fields = error_fields(client.put("/v1/truth/nb201/bad", content=bad, headers=text), 422)
    assert "entry 1" in fields["body"] and "bogus_op" in fields["body"]
    fields = error_fields(client.put("/v1/truth/nb201/bad", content=f"arch,acc\n{c},high\n", headers=text), 422)
    assert "entry 0" in fields["body"] and "not a number" in fields["body"]
    fields = error_fields(client.put("/v1/truth/nb201/cifar10_test", content=csv, headers=text), 422)
    assert "built-in" in fields["name"]
    assert "name" in error_fields(client.put("/v1/truth/nb201/bad.name", content=csv, headers=text), 422)
    unknown = request([a], ["params"], seed=110, truth="bad")  # the refused uploads stored nothing
    assert "truth" in error_fields(client.post("/v1/scores", json=unknown), 422)


# --- 10, 11: discovery, health, metrics, torch-free API ---------------------------------------------------------------


def test_discovery_health_and_metrics(client):
    spaces = client.get("/v1/spaces").json()
    nb201 = next(s for s in spaces if s["name"] == "nb201")
    assert nb201["size"] == 15625 and "cifar10_test" in nb201["ground_truth_columns"]
    assert set(nb201["encodings"]) >= {"string", "naslib", "index"}

    estimators = client.get("/v1/estimators").json()
    assert {e["name"] for e in estimators} == set(ZERO_SHOT) | {"oneshot_acc", "oneshot_loss"} | set(POPULATION)
    assert {e["kind"] for e in estimators if e["name"].startswith("oneshot")} == {"one_shot"}
    assert all(e["kind"] == "population" and e["members"] for e in estimators if e["name"] in POPULATION)
    assert all(e["version"] and e["direction"] == "higher" for e in estimators)

    arch = SP.parse([0, 1, 2, 3, 4, 0])
    resp = client.get("/v1/spaces/nb201/canonical", params={"arch": "[0,1,2,3,4,0]"})
    assert resp.status_code == 200
    assert resp.json() == {
        "space": "nb201",
        "arch": SP.to_string(arch),
        "canonical_key": SP.canonical_key(arch),
        "representative": SP.to_string(SP.representative(arch)),
    }
    by_index = client.get("/v1/spaces/nb201/canonical", params={"arch": "1234"}).json()
    assert by_index["arch"] == SP.to_string(SP.parse(1234))
    fields = error_fields(client.get("/v1/spaces/nb201/canonical", params={"arch": "[0,1,2]"}), 422)
    assert "6 entries" in fields["arch"]
    error_fields(client.get("/v1/spaces/nb999/canonical", params={"arch": "1"}), 404)

    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["ready"] is True and ready.json()["redis"] is True and ready.json()["workers"] >= 1

    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert "archscore_http_requests_total" in metrics.text
    assert 'route="/healthz"' in metrics.text and 'route="/v1/spaces/{space}/canonical"' in metrics.text


def test_readyz_counts_a_redis_without_a_memory_bound_as_not_ready(client, test_redis, settings_env):
    """The tests' Redis has no maxmemory (the test session allows it); the service reads the bound and
    never sets it."""
    memory = test_redis.client().info("memory")
    assert int(memory["maxmemory"]) == 0  # the premise: the tests' Redis is unbounded
    settings_env(allow_unbounded_redis="false")
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["redis"] is True
    assert ready.json()["redis_memory"] == {
        "maxmemory": 0,
        "policy": memory["maxmemory_policy"],
        "bounded": False,
        "reason": "maxmemory is 0: Redis may grow until the machine runs out of memory; set one",
    }
    assert any(m.startswith("redis memory bound (maxmemory is 0") for m in ready.json()["missing"])
    assert int(test_redis.client().info("memory")["maxmemory"]) == 0  # left as it was


def test_api_process_never_imports_torch():
    code = (
        "import archscore.service.app, sys; assert 'torch' not in sys.modules, 'archscore.service.app imported torch'"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# --- over a real socket ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_api_over_a_real_socket(test_redis, tmp_path):
    port = runner.free_port()
    url = f"http://127.0.0.1:{port}"
    with child(runner.api_command("127.0.0.1", port), child_env(test_redis.url), tmp_path / "api.log") as api:
        with httpx.Client(base_url=url, timeout=75) as http:
            wait_answering(f"{url}/healthz", 30, procs={"API": api}, logs={"API": tmp_path / "api.log"}, interval=0.1)
            archs = cells(2, seed=11)
            resp = http.post("/v1/scores", params={"wait": 60}, json=request(archs, ["flops", "relu"], seed=111))
            assert resp.status_code == 200, resp.text
            job = resp.json()
            assert [x["arch"] for x in job["results"]] == archs
            assert all(isinstance(x["scores"]["relu"], float) for x in job["results"])
            again = http.get(f"/v1/jobs/{job['job_id']}").json()
            assert again["status"] == "done" and again["results"] == job["results"]
            assert "archscore_http_requests_total" in http.get("/metrics").text
            # the body limit also holds for a streamed (chunked, no Content-Length) body
            big = json.dumps(request([EXAMPLE_ARCH] * 60_000, ["params"], seed=111)).encode()
            assert len(big) > 2_000_000
            chunks = (big[i : i + 65536] for i in range(0, len(big), 65536))
            error_fields(http.post("/v1/scores", content=chunks, headers={"content-type": "application/json"}), 413)


# --- 12: crash safety -----------------------------------------------------------------------------------------------


def _chunk_index(unacked_entry: str) -> int:
    """The chunk index of a task message that kombu parked in its ``unacked`` hash."""
    message = json.loads(unacked_entry)[0]
    assert message["headers"]["task"] == "archscore.score_chunk"
    _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    return kwargs["chunk_index"]


@pytest.mark.slow
def test_sigkill_worker_mid_job_then_a_new_worker_finishes_it(test_redis, settings_env, tmp_path):
    """The Done criterion of the issue, with real worker processes (solo pool, so the task runs in the
    process that is killed) on their own Redis DB, and an API instance with one cell per chunk.

    Timing, as measured here (kombu 5.7 Redis transport): the message the killed worker had taken
    stays in kombu's ``unacked`` hash; a consuming worker puts it back on the queue once it is older
    than the visibility timeout (5 s here) at its next restore sweep -- at start-up, then every
    ``unacked_restore_interval`` seconds, which workers/celery_app.py sets to visibility_timeout/5
    (1 s here). Without that setting kombu sweeps only every 10 * 10 s, and this job would wait up to
    100 s after the timeout (seen: the job stuck at 5/6 for the whole 60 s wait). So the chunk comes
    back 5-6 s after it was delivered (measured: 5.46 s, the kill 0.07 s after the delivery), or as
    soon as the new worker starts if that is later; the whole test takes ~10 s on an idle machine.
    """
    crash = test_redis.client(test_redis.crash_db)
    crash.flushdb()
    settings_env(redis_url=test_redis.crash_url, chunk_size="1")  # this API instance: crash DB, 1 cell per chunk
    from archscore.service.app import create_app

    env = child_env(test_redis.crash_url, visibility_timeout="5")
    cmd = runner.worker_command(1, "info")
    cmd[cmd.index("prefork")] = "solo"  # the task runs in the worker process itself: SIGKILL hits it
    n = 5
    archs = cells(n, seed=12)
    body = request(archs, ["snip", "relu"], seed=112)
    logs = [tmp_path / "worker1.log", tmp_path / "worker2.log"]

    with TestClient(create_app()) as api:
        with child([*cmd, "-n", "first@%h"], env, logs[0]) as first:
            resp = api.post("/v1/scores", json=body)
            assert resp.status_code == 202, resp.text
            job_id = resp.json()["job_id"]
            assert resp.json()["progress"]["total"] == n
            done_key = store.job_done_key(job_id)

            def frozen_mid_chunk():
                """At least one chunk done, one in flight (taken, not acknowledged): the worker frozen there."""
                assert first.poll() is None, logs[0].read_text()
                if not (crash.scard(done_key) >= 1 and crash.hlen("unacked") == 1):
                    return None
                os.kill(first.pid, signal.SIGSTOP)  # freeze it, then look: no race with its next step
                wait_until(lambda: stopped(first.pid), 5, interval=0.001, message="the first worker frozen")
                done_at_kill = {int(i) for i in crash.smembers(done_key)}
                in_flight = crash.hgetall("unacked")
                mutex = crash.exists("unacked_mutex")  # killed while sweeping, it would block sweeps 300 s
                if len(in_flight) == 1 and _chunk_index(*in_flight.values()) not in done_at_kill and not mutex:
                    return done_at_kill, in_flight
                os.kill(first.pid, signal.SIGCONT)  # between two chunks (or sweeping): let it go on
                return None

            done_at_kill, in_flight = wait_until(
                frozen_mid_chunk,
                60,
                interval=0.01,
                message="the first worker to make progress (one chunk done, one in flight)",
            )
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
            killed_at = time.time()
        ((tag, stranded),) = in_flight.items()
        lost_chunk = _chunk_index(stranded)
        delivered_at = crash.zscore("unacked_index", tag)
        assert 1 <= len(done_at_kill) < n
        assert crash.hgetall("unacked") == in_flight, "the chunk in flight stays unacknowledged"
        assert crash.llen("celery") == n - len(done_at_kill) - 1  # the rest is still queued

        with child([*cmd, "-n", "second@%h"], env, logs[1]):
            # until the broker gives the lost chunk back
            wait_until(
                lambda: not crash.hexists("unacked", tag),
                60,
                interval=0.05,
                message=lambda: "the lost chunk given back\n" + logs[1].read_text(),
            )
            restored_at = time.time()
            resp = api.get(f"/v1/jobs/{job_id}", params={"wait": 60})
            job = resp.json()
            assert job["status"] == "done", (job, logs[1].read_text())
            assert job["progress"] == {"done": n, "total": n}
            assert [x["arch"] for x in job["results"]] == archs
            for res in job["results"]:
                assert res["error"] is None
                assert isinstance(res["scores"]["snip"], float) and isinstance(res["scores"]["relu"], float)
            assert lost_chunk in {int(i) for i in crash.smembers(done_key)}
            wait_until(
                lambda: not crash.hlen("unacked"), 10, interval=0.05, message="the redelivered message acknowledged"
            )  # in the end
    # redelivered by the visibility timeout, not earlier
    assert restored_at - delivered_at >= 5 - 0.1, (restored_at - delivered_at, restored_at - killed_at)
    crash.flushdb()
