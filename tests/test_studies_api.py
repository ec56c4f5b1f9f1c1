"""Studies over HTTP against a real Redis and a real Celery worker: the same numbers as the library,
figures as PNG, progress while the scores are computed, and 422s that name the field."""

from __future__ import annotations

import json

import pytest
from helpers.http import error_fields
from helpers.scoring import PNG, snapshot, worker_idle
from helpers.scoring import same as _same
from helpers.waiting import wait_until

from archscore.estimators.analysis import StudyContext, get_study
from archscore.estimators.analysis.run import local_source
from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces import get_space
from archscore.estimators.truth import load_builtin

pytestmark = pytest.mark.usefixtures("celery_worker")
NB201 = get_space("nb201")


def _request(study: str, archs, estimators, seed: int, **extra) -> dict:
    return {
        "study": study,
        "space": "nb201",
        "archs": [NB201.to_string(a) for a in archs],
        "estimators": estimators,
        "protocol": {"batch_size": 4, "seed": seed},
        "truth": "cifar10_test",
        **extra,
    }


def _library(study: str, archs, estimators, seed: int, options: dict) -> dict:
    truth = load_builtin("nb201", "cifar10_test")
    ctx = StudyContext(
        NB201,
        archs,
        [truth.get(a) for a in archs],
        estimators,
        Protocol(batch_size=4, seed=seed),
        local_source("nb201", archs, estimators, 1),
        options,
    )
    return get_study(study).run(ctx)


@pytest.mark.slow
def test_a_study_over_http_gives_the_library_numbers_and_its_figures(client):
    archs = NB201.sample(16, seed=21)
    resp = client.post(
        "/v1/studies", json=_request("complexity_bias", archs, ["synflow", "params"], 501, options={"bins": 2})
    )
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["status"] in ("queued", "running") and body["progress"]["total"] >= 1 and body["result"] is None
    done = client.get(f"/v1/studies/{body['study_id']}?wait=120").json()
    assert done["status"] == "done", done
    expected = _library("complexity_bias", archs, ["synflow", "params"], 501, {"bins": 2})
    assert _same(done["result"]["result"], json.loads(json.dumps(expected)))
    assert set(done["figures"]) == {"complexity_bias_flops", "complexity_bias_params"}
    png = client.get(done["figures"]["complexity_bias_flops"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content.startswith(PNG)
    # scores are cached now: the same study again is answered at once
    again = client.post(
        "/v1/studies", json=_request("complexity_bias", archs, ["synflow", "params"], 501, options={"bins": 2})
    ).json()
    assert again["status"] == "done" and again["result"]["result"] == done["result"]["result"]


def test_variance_over_http_has_every_protocol_scored(client):
    archs = NB201.sample(8, seed=22)
    options = {"seeds": [20, 2020], "batches": [1, 2]}
    body = client.post(
        "/v1/studies", json=_request("variance", archs, ["synflow", "params"], 20, options=options)
    ).json()
    assert len(body["jobs"]) == 3  # (20, 1), (2020, 1), (20, 2)
    done = client.get(f"/v1/studies/{body['study_id']}?wait=120").json()
    assert done["status"] == "done", done
    expected = _library("variance", archs, ["synflow", "params"], 20, {**options})
    assert _same(done["result"]["result"], json.loads(json.dumps(expected)))
    assert done["result"]["result"]["estimators"]["params"]["std"] == 0
    # a base protocol that none of the variants repeats (seed 7 is not among the seeds, 1 batch not among the
    # batch counts): the study still has its architectures and truth
    other = client.post(
        "/v1/studies", json=_request("variance", archs, ["params"], 7, options={"seeds": [20, 2020], "batches": [2]})
    ).json()
    finished = client.get(f"/v1/studies/{other['study_id']}?wait=60").json()
    assert finished["status"] == "done" and finished["result"]["inputs"]["n"] == 8


def test_studies_are_listed_and_bad_requests_name_the_field(client):
    names = [s["name"] for s in client.get("/v1/studies").json()]
    assert {"complexity_bias", "operation_bias", "architecture_bias", "variance"} <= set(names)
    archs = NB201.sample(5, seed=23)
    fields = error_fields(client.post("/v1/studies", json=_request("nope", archs, ["params"], 1)), 422)
    assert "unknown study 'nope'" in fields["study"]
    nds = {
        "study": "operation_bias",
        "space": "nds_resnet",
        "archs": ["d1-1-1_w16-16-16"] * 4,
        "estimators": ["params"],
        "truth": None,
    }
    fields = error_fields(client.post("/v1/studies", json=nds), 422)
    assert "operation_bias needs a space with operations" in fields["study"]
    fields = error_fields(client.post("/v1/studies", json={**nds, "study": "complexity_bias"}), 422)
    assert "no built-in ground truth" in fields["truth"]
    fields = error_fields(
        client.post("/v1/studies", json=_request("variance", archs, ["params"], 1, options={"seeds": [1, 1]})), 422
    )
    assert any("distinct" in v for v in fields.values())
    assert client.get("/v1/studies/" + "0" * 32).status_code == 404
    assert client.get("/v1/studies/" + "0" * 32 + "/figures/x.png").status_code == 404


def test_every_protocol_a_study_derives_passes_the_checks_and_the_bound_of_a_score_request(client, r):
    """The variance study derives one protocol per seed and batch count: one that needs more images than
    the server holds, or work past the bound summed over them, is a 422 before anything is queued."""
    archs = [NB201.parse(i) for i in (0, 17, 1234, 4000)]
    before = snapshot(r)
    too_many_images = _request("variance", archs, ["grad_norm"], 1, options={"seeds": [20, 21], "batches": [5]})
    too_many_images["protocol"] = {"batch_size": 1000}
    fields = error_fields(client.post("/v1/studies", json=too_many_images), 422)
    assert "batch_size x num_batches = 5000 exceeds the 4000 training images" in fields["protocol.batch_size"]
    assert "the study's protocol 3 of 3" in fields["protocol.batch_size"]

    big = _request("variance", NB201.sample(2000, seed=3), ["grad_norm"], 1, options={"batches": [1, 2, 3, 4, 32]})
    big["protocol"] = {"batch_size": 100}
    fields = error_fields(client.post("/v1/studies", json=big), 422)
    # 3 seeds at 1 batch and batches 1, 2, 3, 4, 32 at seed 20 (one protocol in both): 7 protocols, 4,400 images
    assert "2000 architectures x 1 estimators x 4400 images under 7 protocols = 8,800,000 exceeds" in fields["archs"]
    assert snapshot(r) == before


def test_a_study_can_be_cancelled_and_every_key_it_made_expires(client, r):
    from archscore.contract import store

    archs = NB201.sample(60, seed=31)
    body = _request("complexity_bias", archs, ["grad_norm", "jacob_cov"], 1031)
    created = client.post("/v1/studies", json=body).json()
    study_id = created["study_id"]
    assert 0 < r.ttl(store.study_key(study_id)) <= 24 * 3600  # a lifetime from the start
    cancelled = client.delete(f"/v1/studies/{study_id}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text
    keys: list[str] = []

    def every_key_expires() -> bool:  # the chunk running when the cancel came stops after its current architecture
        keys[:] = [k for job_id in created["jobs"] for k in store.job_keys(job_id) if r.exists(k)]
        return (
            bool(keys)
            and all(r.ttl(k) > 0 for k in keys)
            and client.get(f"/v1/jobs/{created['jobs'][0]}").json()["status"] == "cancelled"
        )

    wait_until(
        every_key_expires,
        60,
        interval=0.5,
        message=lambda: f"every key of the cancelled study to expire: { ({k: r.ttl(k) for k in keys}) }",
    )
    # a chunk finishing after the cancel must not leave a key without a lifetime: wait for the last one
    wait_until(lambda: worker_idle(r), 60, message="the worker to take and finish every chunk of the study")
    assert all(r.ttl(k) > 0 for job_id in created["jobs"] for k in store.job_keys(job_id) if r.exists(k))
    again = client.get(f"/v1/studies/{study_id}", params={"wait": 5}).json()
    assert again["status"] == "cancelled" and again["result"] is None
    assert "figures" not in again

    small = client.post("/v1/studies", json=_request("complexity_bias", NB201.sample(5, seed=32), ["params"], 1032))
    finished = client.get(f"/v1/studies/{small.json()['study_id']}", params={"wait": 30}).json()
    assert finished["status"] == "done"
    assert client.delete(f"/v1/studies/{finished['study_id']}").status_code == 409


# every study is compared with the library over HTTP: these here, the others where their inputs are made
SCORE_ONLY_STUDIES = ["architecture_bias", "complexity_bias", "input_data", "operation_bias", "variance"]
TESTED_ELSEWHERE = {
    "isomorphism_spread": "test_isomorphism_spread",
    "zero_shot_on_supernet": "test_weights",
    "training_length": "test_one_shot_studies",
    "validation_size": "test_one_shot_studies",
    "sampler": "test_one_shot_studies",
    "reduced_sharing": "test_one_shot_studies",
}


def test_every_registered_study_is_compared_over_http():
    from archscore.estimators.analysis import list_studies

    assert {s.name for s in list_studies()} == set(SCORE_ONLY_STUDIES) | set(TESTED_ELSEWHERE)


@pytest.mark.parametrize("study", SCORE_ONLY_STUDIES)
def test_each_study_over_http_gives_the_library_numbers(client, study):
    from archscore.service.schemas import StudyOptions

    archs = NB201.sample(8, seed=23)
    options = {"seeds": [20, 2020], "batches": [1, 2], "bins": 2, "top": 3}
    body = client.post("/v1/studies", json=_request(study, archs, ["synflow", "params"], 31, options=options))
    assert body.status_code == 202, body.text
    done = client.get(f"/v1/studies/{body.json()['study_id']}?wait=180").json()
    assert done["status"] == "done", done
    expected = _library(study, archs, ["synflow", "params"], 31, StudyOptions(**options).model_dump())
    got = done["result"]["result"]
    assert _same(got, json.loads(json.dumps(expected))), (got, expected)
    assert done["figures"], "every study draws at least one figure"
    for url in done["figures"].values():
        png = client.get(url)
        assert png.status_code == 200 and png.content.startswith(PNG)
