"""Few-shot predictors through the service (a real Celery worker on a real Redis): POST /v1/predictors
scores the training set and fits the same trees as the library, the fitted file downloads, score requests
name it ``predictor:NAME`` and get its predictions from the members' scores, and bad requests get a 422
naming the field."""

from __future__ import annotations

import pytest
from helpers.scoring import cells, phash, request

import archscore
from archscore.contract import store
from archscore.estimators.predictor import PRIOR_LABELS, PredictorModel
from archscore.estimators.ranking import ranking_report
from archscore.estimators.spaces import get_space
from archscore.estimators.truth import load_builtin

pytestmark = pytest.mark.usefixtures("celery_worker")
SEED = 9301
FEATURES = ["params", "flops", "layers"]  # layers: a forward pass on the worker
NB201 = get_space("nb201")


def _fit_body(name: str, archs: list[str], seed: int = SEED, **extra) -> dict:
    return {
        "name": name,
        "space": "nb201",
        "archs": archs,
        "estimators": FEATURES,
        "protocol": {"batch_size": 16, "num_batches": 1, "seed": seed},
        **extra,
    }


@pytest.fixture(scope="module")
def fitted(client):
    """A predictor fitted over the API on 10 cells; (its body, its training cells)."""
    train = cells(10, seed=931)
    posted = client.post("/v1/predictors", json=_fit_body("small", train))
    assert posted.status_code == 202, posted.text
    assert posted.json()["status"] in ("queued", "running", "done") and posted.json()["estimator"] == "predictor:small"
    body = client.get("/v1/predictors/small", params={"wait": 240}).json()
    assert body["status"] == "done", body
    return body, train


def test_the_service_fits_the_trees_the_library_fits(client, fitted):
    body, train = fitted
    assert body["train"] == 10 and body["library"].startswith("lightgbm ") and body["protocol_hash"] == phash(SEED)
    assert body["progress"] == {"done": body["progress"]["total"], "total": body["progress"]["total"]}
    document = client.get("/v1/predictors/small/model").json()
    model = PredictorModel.model_validate(document)
    assert model.train == tuple(train) and model.truth == "cifar10_test" and model.estimators == tuple(FEATURES)
    assert body["prior"] == [] and model.prior == ()  # auto: FEATURES hold no ensemble's members
    library = archscore.Predictor(
        "nb201", estimators=FEATURES, protocol={"batch_size": 16, "num_batches": 1, "seed": SEED}, seed=0
    ).fit(train)
    assert library.model.model == model.model and library.model.labels == model.labels


def test_a_score_request_naming_the_predictor_gets_its_predictions(client, fitted):
    _, train = fitted
    archs = cells(4, seed=932)
    job = client.post(
        "/v1/scores", params={"wait": 240}, json=request(archs, ["predictor:small", *FEATURES], SEED)
    ).json()
    assert job["status"] == "done", job
    rows = [res["scores"] for res in job["results"]]
    model = PredictorModel.model_validate(client.get("/v1/predictors/small/model").json())
    expected = model.predict(NB201, [NB201.parse(a) for a in archs], rows)
    assert [row["predictor:small"] for row in rows] == pytest.approx(expected, rel=1e-12)
    # the job, read again, gives the same answer; asked alone, the members are scored but not shown
    again = client.get(f"/v1/jobs/{job['job_id']}").json()
    assert [res["scores"]["predictor:small"] for res in again["results"]] == [row["predictor:small"] for row in rows]
    alone = client.post("/v1/scores", params={"wait": 240}, json=request(archs, ["predictor:small"], SEED)).json()
    assert [list(res["scores"]) for res in alone["results"]] == [["predictor:small"]] * 4
    assert [res["scores"]["predictor:small"] for res in alone["results"]] == pytest.approx(expected, rel=1e-12)


def test_the_rankings_and_the_dashboard_rank_the_predictor_on_cells_it_was_not_fitted_on(client, fitted, r):
    _, train = fitted
    archs = cells(6, seed=937)
    scored = client.post("/v1/scores", params={"wait": 240}, json=request(archs, FEATURES, SEED)).json()
    assert scored["status"] == "done", scored
    every = sorted(r.hgetall(store.members_key("nb201", phash(SEED))))  # all scored under the protocol
    rows = {
        res["arch"]: res["scores"]
        for res in client.post("/v1/scores", params={"wait": 240}, json=request(every, FEATURES, SEED)).json()[
            "results"
        ]
    }
    trained = {NB201.canonical_key(NB201.parse(a)) for a in train}
    held_out = [a for a in every if NB201.canonical_key(NB201.parse(a)) not in trained]
    assert set(archs) <= set(held_out) and len(held_out) < len(every)
    model = PredictorModel.model_validate(client.get("/v1/predictors/small/model").json())
    predicted = model.predict(NB201, [NB201.parse(a) for a in held_out], [rows[a] for a in held_out])
    truth = load_builtin("nb201", "cifar10_test")
    keys = [NB201.canonical_key(NB201.parse(a)) + a for a in held_out]
    expected = ranking_report(predicted, [truth.lookup(a) for a in held_out], keys)

    page = client.get("/v1/rankings/nb201", params={"protocol_hash": phash(SEED)}).json()
    criteria = page["rankings"][0]["estimators"]["predictor:small"]
    assert criteria["n"] == len(held_out) and criteria["kendall_tau"] == pytest.approx(expected["kendall_tau"])
    assert "layers" in page["rankings"][0]["estimators"]  # beside the estimators
    points = client.get(
        "/v1/rankings/nb201/points",
        params={"protocol_hash": phash(SEED), "truth": "cifar10_test", "estimator": "predictor:small"},
    ).json()["points"]
    assert {a: s for s, _, a in points} == pytest.approx(dict(zip(held_out, predicted)))
    unknown = client.get(
        "/v1/rankings/nb201/points",
        params={"protocol_hash": phash(SEED + 1), "truth": "cifar10_test", "estimator": "predictor:small"},
    )
    assert "no fitted predictor 'predictor:small'" in _fields(unknown)["estimator"]


def test_a_named_prior_adds_its_members_and_the_model_holds_it(client):
    members = ["relu_logdet", "az_expressivity"]  # ensemble:nb301's
    posted = client.post("/v1/predictors", json=_fit_body("leaning", cells(6, seed=936), prior="ensemble:nb301"))
    assert posted.status_code == 202, posted.text
    assert posted.json()["prior"] == members and posted.json()["estimators"] == [*FEATURES, *members]
    body = client.get("/v1/predictors/leaning", params={"wait": 240}).json()
    assert body["status"] == "done", body
    model = PredictorModel.model_validate(client.get("/v1/predictors/leaning/model").json())
    assert model.prior == tuple(members) and model.prior_weight == pytest.approx(PRIOR_LABELS / 6)
    client.delete("/v1/predictors/leaning")


def test_a_sample_with_built_in_truth_listed_and_deleted(client):
    posted = client.post(
        "/v1/predictors",
        json={
            "name": "sampled",
            "train": 6,
            "seed": 3,
            "estimators": ["params", "flops"],
            "protocol": {"batch_size": 16, "num_batches": 1, "seed": SEED},
        },
    )
    assert posted.status_code == 202, posted.text
    body = client.get("/v1/predictors/sampled", params={"wait": 60}).json()
    assert body["status"] == "done" and body["train"] == 6, body
    assert "sampled" in [p["name"] for p in client.get("/v1/predictors").json()]
    again = client.post("/v1/predictors", json={"name": "sampled", "train": 7, "estimators": ["params"]})
    assert again.status_code == 202 and again.json()["estimators"] == ["params"]  # replaced
    assert client.get("/v1/predictors/sampled", params={"wait": 60}).json()["train"] == 7
    assert client.delete("/v1/predictors/sampled").json() == {"deleted": "sampled"}
    assert client.get("/v1/predictors/sampled").status_code == 404
    gone = client.post("/v1/scores", json=request(cells(2, seed=933), ["predictor:sampled"], SEED))
    assert gone.status_code == 422 and "no predictor 'sampled'" in gone.text


def _fields(response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {d["field"]: d["reason"] for d in response.json()["error"]["details"]}


def test_bad_requests_name_the_field(client, fitted):
    archs = cells(2, seed=934)
    other_protocol = client.post("/v1/scores", json=request(archs, ["params", "predictor:small"], SEED + 1))
    assert "send the protocol it was fitted with" in _fields(other_protocol)["estimators[1]"]
    unknown = client.post("/v1/scores", json=request(archs, ["predictor:nope"], SEED))
    assert "no predictor 'nope'" in _fields(unknown)["estimators[0]"]
    wrong_space = client.post(
        "/v1/scores",
        json={"space": "nb101", "archs": [NB201_TO_NB101], "estimators": ["predictor:small"]},
    )
    assert "ranks nb201, not nb101" in _fields(wrong_space)["estimators[0]"]
    bad_feature = client.post("/v1/predictors", json=_fit_body("bad", archs * 3, estimators=["te_nas"]))
    assert "not a zero-shot estimator" in _fields(bad_feature)["estimators[0]"]
    both = client.post("/v1/predictors", json={**_fit_body("bad", archs * 3), "train": 10})
    assert both.status_code == 422 and "give one of train" in both.text
    too_few = client.post("/v1/predictors", json=_fit_body("bad", archs))
    assert "archs" in _fields(too_few)
    bad_prior = client.post("/v1/predictors", json=_fit_body("bad", archs * 3, prior="te_nas"))
    assert "'te_nas' is not an ensemble" in _fields(bad_prior)["prior"]
    no_estimator = client.post("/v1/predictors", json=_fit_body("bad", archs * 3, estimators=[]))
    assert "estimators" in _fields(no_estimator)
    study = client.post(
        "/v1/studies",
        json={**request(cells(4, seed=935), ["predictor:small"], SEED), "study": "complexity_bias"},
    )
    assert "not fitted predictors" in _fields(study)["estimators[0]"]


def test_a_predictor_fitted_on_other_encoding_features_is_refused(client, fitted, test_redis):
    """A predictor stored by a version of archscore whose encoding features differed gets a 422 saying to
    fit it again, rather than predictions from misread features."""
    redis = test_redis.client()
    key = next(iter(redis.scan_iter(store.predictor_key("*", "small"))))
    record = store.decode_predictor(redis.get(key))
    assert record is not None and record.model is not None
    stale = record.model_copy(
        update={"name": "stale", "model": {**record.model, "encoding": record.model["encoding"][:35]}}
    )
    redis.set(key.removesuffix(":small") + ":stale", stale.model_dump_json())
    refused = client.post("/v1/scores", json=request(cells(2, seed=936), ["predictor:stale"], SEED))
    assert "fit it again" in _fields(refused)["estimators[0]"]


NB201_TO_NB101 = {
    "matrix": [[0, 1, 1], [0, 0, 1], [0, 0, 0]],
    "ops": ["input", "conv3x3-bn-relu", "output"],
}
