"""One-shot estimators through the service: training jobs over the API, checkpoint listing, and
oneshot_acc / oneshot_loss through POST /v1/scores, with a real Redis and a real Celery worker.

Supernets here are tiny (C=4, N=1, a few steps): the point is the plumbing and the numbers' identity
with the library, not their quality (benchmarks/one_shot.py measures that)."""

from __future__ import annotations

import os
import time

import pytest
from helpers.stack import tasks_run

from archscore.contract import store
from archscore.contract.records import TrainingJob, TrainingStatus
from archscore.estimators.one_shot.checkpoints import load_checkpoint
from archscore.estimators.one_shot.evaluation import calibration_batches, score_arch, validation_batches
from archscore.estimators.one_shot.registry import BUILTIN_DIR, builtin_supernet
from archscore.estimators.predictor import DEFAULT_ESTIMATORS, DEFAULT_ONE_SHOT
from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces import get_space
from archscore.estimators.spaces.nb201 import has_conv_path

pytestmark = pytest.mark.usefixtures("celery_worker")

SP = get_space("nb201")
TINY = {"network": {"C": 4, "N": 1}, "epochs": 1, "steps_per_epoch": 3, "batch_size": 64}


def cells(n: int, seed: int) -> list[str]:
    picked = [a for a in SP.sample(4 * n, seed=seed, deisomorphic=True) if has_conv_path(a)][:n]
    return [SP.to_string(a) for a in picked]


def train(client, name: str, **extra) -> dict:
    resp = client.post("/v1/supernets", json={"name": name, **TINY, **extra})
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert job["kind"] == "supernet_training" and job["status"] in ("queued", "running", "done")
    done = client.get(f"/v1/jobs/{job['job_id']}", params={"wait": 60}).json()
    assert done["status"] == "done", done
    return done


def score(client, archs: list[str], oneshot: dict, estimators=("oneshot_acc", "oneshot_loss")) -> dict:
    body = {"space": "nb201", "archs": archs, "estimators": list(estimators), "protocol": {"oneshot": oneshot}}
    resp = client.post("/v1/scores", params={"wait": 60}, json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def in_process(folder, archs, post_deiso=True, bn_mode="train", num_batches=2, images="validation") -> list[dict]:
    net, manifest = load_checkpoint(folder)
    batches = validation_batches(manifest, 100, num_batches, images=images)
    calib = calibration_batches(manifest) if bn_mode == "recalibrate" else None
    return [score_arch(net, SP.representative(SP.parse(a)), batches, bn_mode, post_deiso, calib) for a in archs]


def test_one_shot_scores_need_a_checkpoint(client, settings_env, tmp_path):
    """Without a checkpoint named, the newest complete one of the space, else the built-in one (NB201's);
    a space with neither is refused."""
    settings_env(supernet_dir=str(tmp_path))
    nb301 = get_space("nb301")
    resp = client.post(
        "/v1/scores",
        json={"space": "nb301", "archs": [nb301.to_json(nb301.sample(1, 0)[0])], "estimators": ["oneshot_acc"]},
    )
    assert resp.status_code == 422
    (detail,) = resp.json()["error"]["details"]
    assert detail["field"] == "protocol.oneshot.supernet" and "no complete supernet checkpoint" in detail["reason"]
    builtin = score(client, cells(1, 1), {"num_batches": 1})
    assert builtin["protocol"]["oneshot"]["supernet"] == builtin_supernet("nb201")["sha256"]
    assert builtin["results"][0]["scores"]["oneshot_acc"] is not None
    resp = client.post(
        "/v1/scores",
        json={"archs": cells(1, 1), "estimators": ["oneshot_acc"], "protocol": {"oneshot": {"supernet": "missing"}}},
    )
    assert resp.status_code == 422 and "no supernet checkpoint 'missing'" in resp.text


def test_train_list_and_score_new_checkpoints_without_a_worker_restart(client, r, supernet_dir):
    import archscore.workers.supernets as held

    alpha = train(client, "alpha")
    assert alpha["progress"]["epoch"] == 1 and alpha["progress"]["step"] == alpha["progress"]["steps"] == 3
    sha_alpha = alpha["checkpoint"]["sha256"]
    assert load_checkpoint(supernet_dir / "alpha")[1]["sha256"] == sha_alpha
    listed = client.get("/v1/supernets").json()
    assert [(c["name"], c["sha256"], c["complete"], c["builtin"]) for c in listed] == [
        ("alpha", sha_alpha, True, False),
        ("nb201-deiso", builtin_supernet("nb201")["sha256"], True, True),  # after those of the folder
    ]

    archs = cells(3, seed=31)
    loads = held.loads
    first = score(client, archs, {"supernet": "alpha", "num_batches": 2})
    assert first["protocol"]["oneshot"]["supernet"] == sha_alpha
    assert first["protocol_hash"] != Protocol().hash()
    expected = in_process(supernet_dir / "alpha", archs)
    for result, want in zip(first["results"], expected):
        assert result["scores"]["oneshot_acc"] == pytest.approx(want["oneshot_acc"])
        assert result["scores"]["oneshot_loss"] == pytest.approx(want["oneshot_loss"])
    assert held.loads == loads + 1  # read from disk once, then kept in memory
    assert "oneshot_acc" in first["rankings"]["estimators"]
    key = store.score_key("nb201", first["protocol_hash"], "oneshot_acc")
    assert r.hlen(key) == 3

    # a checkpoint trained after the worker started is served by the same worker
    beta = train(client, "beta", seed=1)
    sha_beta = beta["checkpoint"]["sha256"]
    assert sha_beta != sha_alpha
    assert client.get("/v1/supernets").json()[0]["name"] == "beta"  # newest first
    tasks = tasks_run()
    second = score(client, archs, {"supernet": sha_beta[:12], "num_batches": 2})
    assert second["protocol"]["oneshot"]["supernet"] == sha_beta and second["cached"] == 0
    assert tasks_run() > tasks
    for result, want in zip(second["results"], in_process(supernet_dir / "beta", archs)):
        assert result["scores"]["oneshot_acc"] == pytest.approx(want["oneshot_acc"])
    assert held.loads == loads + 2 and {sha_alpha, sha_beta} <= set(held._loaded)
    # the checkpoint hash is part of the cache key: alpha's scores are still there, answered from the cache
    again = score(client, archs, {"supernet": "alpha", "num_batches": 2})
    assert again["cached"] == 3 and [x["scores"] for x in again["results"]] == [x["scores"] for x in first["results"]]
    # the newest complete checkpoint is the default
    assert score(client, archs[:1], {"num_batches": 2})["protocol"]["oneshot"]["supernet"] == sha_beta


def test_one_shot_evaluation_options_reach_the_worker(client, supernet_dir):
    if not (supernet_dir / "gamma").exists():
        train(client, "gamma", seed=2)
    archs = cells(2, seed=32)
    plain = score(client, archs, {"supernet": "gamma", "num_batches": 2, "post_deiso": False})
    recal = score(client, archs, {"supernet": "gamma", "num_batches": 2, "bn_mode": "recalibrate"})
    assert plain["protocol_hash"] != recal["protocol_hash"]
    for result, want in zip(plain["results"], in_process(supernet_dir / "gamma", archs, post_deiso=False)):
        assert result["scores"]["oneshot_acc"] == pytest.approx(want["oneshot_acc"])
    for result, want in zip(recal["results"], in_process(supernet_dir / "gamma", archs, bn_mode="recalibrate")):
        assert result["scores"]["oneshot_loss"] == pytest.approx(want["oneshot_loss"])
    # the held-out images: the validation split and the 1,000 test images, 15 batches of 100
    held = score(client, archs, {"supernet": "gamma", "images": "held_out", "num_batches": 15, "post_deiso": False})
    assert held["protocol"]["oneshot"]["images"] == "held_out"
    assert held["protocol_hash"] not in (plain["protocol_hash"], recal["protocol_hash"])
    expected = in_process(supernet_dir / "gamma", archs, post_deiso=False, num_batches=15, images="held_out")
    for result, want in zip(held["results"], expected):
        assert result["scores"]["oneshot_acc"] == pytest.approx(want["oneshot_acc"])
        assert result["scores"]["oneshot_loss"] == pytest.approx(want["oneshot_loss"])
    assert [x["scores"]["oneshot_loss"] for x in held["results"]] != [
        x["scores"]["oneshot_loss"] for x in plain["results"]
    ]
    # mixing zero-shot and one-shot estimators in one request
    mixed = score(client, archs, {"supernet": "gamma", "num_batches": 1}, ("params", "relu", "oneshot_acc"))
    assert all(
        isinstance(x["scores"]["relu"], float) and isinstance(x["scores"]["oneshot_acc"], float)
        for x in mixed["results"]
    )


def test_a_predictor_reads_one_shot_scores_of_the_supernet_its_protocol_names(client, supernet_dir):
    """POST /v1/predictors with oneshot_acc among the features: the worker scores the training set on the
    supernet, the model holds those scores and the protocol, and a score request naming the predictor under
    that protocol gets its predictions."""
    if not (supernet_dir / "gamma").exists():
        train(client, "gamma", seed=2)
    protocol = {"oneshot": {"supernet": "gamma", "num_batches": 1, "post_deiso": False}}
    features = ["params", "oneshot_acc"]
    archs = cells(8, seed=33)
    body = {"name": "os", "space": "nb201", "archs": archs, "estimators": features, "prior": "none"}
    posted = client.post("/v1/predictors", json={**body, "protocol": protocol})
    assert posted.status_code == 202, posted.text
    fitted = client.get("/v1/predictors/os", params={"wait": 120}).json()
    assert fitted["status"] == "done", fitted
    document = client.get("/v1/predictors/os/model").json()
    assert document["estimators"] == features and document["protocol"]["oneshot"]["supernet"] != "gamma"
    expected = in_process(supernet_dir / "gamma", archs, post_deiso=False, num_batches=1)
    assert [row[1] for row in document["scores"]] == pytest.approx([e["oneshot_acc"] for e in expected])
    query = cells(3, seed=34)
    job = client.post(
        "/v1/scores",
        params={"wait": 60},
        json={"space": "nb201", "archs": query, "estimators": ["predictor:os"], "protocol": protocol},
    )
    assert job.status_code == 200, job.text
    job = job.json()
    assert job["status"] == "done" and all(0 <= r["scores"]["predictor:os"] <= 1 for r in job["results"]), job


def test_a_predictor_naming_no_estimators_reads_the_built_in_supernet(client, settings_env, tmp_path):
    """POST /v1/predictors without estimators, no checkpoint in the supernet folder: the default features,
    the one-shot ones on the built-in NB201 supernet; on a space with no supernet at hand, the zero-shot
    defaults only."""
    settings_env(supernet_dir=str(tmp_path))
    protocol = {"batch_size": 8, "oneshot": {"num_batches": 1}}
    archs = cells(6, seed=35)
    body = {"name": "defaults", "space": "nb201", "archs": archs, "prior": "none", "protocol": protocol}
    posted = client.post("/v1/predictors", json=body)
    assert posted.status_code == 202, posted.text
    fitted = client.get("/v1/predictors/defaults", params={"wait": 120}).json()
    assert fitted["status"] == "done", fitted
    document = client.get("/v1/predictors/defaults/model").json()
    assert tuple(document["estimators"]) == DEFAULT_ESTIMATORS + DEFAULT_ONE_SHOT
    assert document["protocol"]["oneshot"]["supernet"] == builtin_supernet("nb201")["sha256"]
    expected = in_process(BUILTIN_DIR / "nb201-deiso", archs, num_batches=1)
    column = document["estimators"].index("oneshot_acc")
    assert [row[column] for row in document["scores"]] == pytest.approx([e["oneshot_acc"] for e in expected])
    nb301 = client.post("/v1/predictors", json={"name": "zero-shot", "space": "nb301", "train": 5, "prior": "none"})
    assert nb301.status_code == 202 and tuple(nb301.json()["estimators"]) == DEFAULT_ESTIMATORS, nb301.text
    assert client.delete("/v1/predictors/zero-shot").status_code == 200


def test_training_requests_are_validated_and_resumable(client, supernet_dir):
    def fields(resp, status):
        assert resp.status_code == status, resp.text
        return {d["field"]: d["reason"] for d in resp.json()["error"]["details"]}

    assert "sampler" in fields(client.post("/v1/supernets", json={"name": "x", "sampler": "nope"}), 422)
    assert "epochs" in fields(client.post("/v1/supernets", json={"name": "x", "epochs": 0}), 422)
    assert "name" in fields(client.post("/v1/supernets", json={"name": "../etc"}), 422)
    assert "resume" in fields(client.post("/v1/supernets", json={"name": "nothing", "resume": True}), 422)
    train(client, "delta")
    assert "name" in fields(client.post("/v1/supernets", json={"name": "delta", **TINY}), 409)
    assert "epochs" in fields(client.post("/v1/supernets", json={"name": "delta", **TINY, "resume": True}), 422)
    resumed = train(client, "delta", epochs=2, resume=True)
    assert resumed["checkpoint"]["epochs"] == 2 and resumed["progress"]["epoch"] == 2
    assert not (supernet_dir / "x").exists() and not (supernet_dir / "nothing").exists()


def test_a_training_whose_worker_died_is_reported_failed(client, r):
    """The trainer refreshes the checkpoint name's lock with each progress report; once the lock has
    expired, a job still marked running is reported failed, and the name can be trained again."""
    job_id = "f" * 32
    job = TrainingJob(
        job_id=job_id, kind="supernet_training", name="orphan", config={"epochs": 3}, resume=False, created=time.time()
    )
    r.set(store.job_key(job_id), store.encode_record(job), ex=60)
    status = TrainingStatus(status="running", progress={"epoch": 1})
    r.set(store.training_status_key(job_id), store.encode_record(status), ex=60)
    r.set(store.supernet_lock_key("orphan"), job_id, ex=60)
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
    r.delete(store.supernet_lock_key("orphan"))  # what expiry does when the worker stops reporting
    body = client.get(f"/v1/jobs/{job_id}").json()
    assert body["status"] == "failed" and "resume" in body["error"] and body["progress"]["epoch"] == 1


def test_averaging_checkpoints_over_the_api(client, supernet_dir):
    def fields(resp, status):
        assert resp.status_code == status, resp.text
        return {d["field"]: d["reason"] for d in resp.json()["error"]["details"]}

    train(client, "snap", epochs=2, keep_snapshots=2, seed=3)
    train(client, "plain", seed=4)
    resp = client.post("/v1/supernets/average", json={"name": "snap-avg", "snapshots_of": "snap"})
    assert resp.status_code == 202, resp.text
    job = client.get(f"/v1/jobs/{resp.json()['job_id']}", params={"wait": 60}).json()
    assert job["kind"] == "supernet_average" and job["status"] == "done", job
    assert job["config"]["average_of"] == ["snap/snapshots/epoch-0001", "snap/snapshots/epoch-0002"]
    averaged = job["checkpoint"]
    assert [s["epochs"] for s in averaged["averaged_from"]] == [1, 2]
    net = load_checkpoint(supernet_dir / "snap-avg")[0].state_dict()
    one, two = (load_checkpoint(supernet_dir / "snap" / "snapshots" / f"epoch-000{i}")[0].state_dict() for i in (1, 2))
    assert (net["classifier.weight"] - (one["classifier.weight"] + two["classifier.weight"]) / 2).abs().max() < 1e-6
    scored = score(client, cells(2, seed=33), {"supernet": "snap-avg", "num_batches": 1})
    assert scored["protocol"]["oneshot"]["supernet"] == averaged["sha256"]

    assert "snapshots_of" in fields(
        client.post("/v1/supernets/average", json={"name": "x", "snapshots_of": "plain"}), 422
    )
    assert "checkpoints[1]" in fields(
        client.post("/v1/supernets/average", json={"name": "x", "checkpoints": ["plain", "nope"]}), 422
    )
    assert "checkpoints" in fields(
        client.post("/v1/supernets/average", json={"name": "x", "checkpoints": ["plain"]}), 422
    )
    assert "name" in fields(
        client.post("/v1/supernets/average", json={"name": "plain", "checkpoints": ["plain", "snap"]}), 409
    )
    assert not (supernet_dir / "x").exists()


def test_averaging_names_checkpoints_only_under_the_supernet_folder(client, supernet_dir, tmp_path):
    """Sources are checkpoints by name or sha256 under the supernet folder: absolute paths, '..' and
    folders elsewhere holding a manifest are refused before anything runs, and listings show names,
    never server paths."""
    first = train(client, "conf-a", seed=5)["checkpoint"]
    train(client, "conf-b", seed=6)
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("weights.pt", "manifest.json"):  # a valid checkpoint, but not under the supernet folder
        (outside / name).write_bytes((supernet_dir / "conf-a" / name).read_bytes())
    relative = os.path.relpath(outside, supernet_dir)
    for sources in ([str(outside), "conf-b"], [relative, "conf-b"], ["conf-b", "../conf-a"], ["conf-a/..", "conf-b"]):
        resp = client.post("/v1/supernets/average", json={"name": "escaped", "checkpoints": sources})
        assert resp.status_code == 422, (sources, resp.text)
        assert resp.json()["error"]["details"][0]["field"].startswith("checkpoints[")
    assert not (supernet_dir / "escaped").exists()

    resp = client.post(
        "/v1/supernets/average", json={"name": "by-sha", "checkpoints": [first["sha256"][:12], "conf-b"]}
    )
    assert resp.status_code == 202, resp.text
    job = client.get(f"/v1/jobs/{resp.json()['job_id']}", params={"wait": 60}).json()
    assert job["status"] == "done" and job["config"]["average_of"] == ["conf-a", "conf-b"]
    listing = client.get("/v1/supernets").text
    assert str(supernet_dir) not in listing and str(tmp_path) not in listing
    averaged = next(c for c in client.get("/v1/supernets").json() if c["name"] == "by-sha")
    assert [s["name"] for s in averaged["averaged_from"]] == ["conf-a", "conf-b"]


def test_the_worker_confines_sources_to_the_supernet_folder(tmp_path):
    from archscore.estimators.one_shot.registry import CheckpointError, inside

    (tmp_path / "root" / "a" / "snapshots" / "epoch-0001").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path / "elsewhere")
    root = tmp_path / "root"
    assert inside(root, "a/snapshots/epoch-0001") == (root / "a" / "snapshots" / "epoch-0001").resolve()
    for bad in ("/etc", str(tmp_path / "elsewhere"), "../elsewhere", "a/../..", "link", ".", ""):
        with pytest.raises(CheckpointError):
            inside(root, bad)


def test_a_checkpoint_removed_after_the_request_is_an_error_per_architecture(supernet_dir):
    """The worker finds checkpoints by the sha256 the API resolved; one that is gone (or was replaced
    by retraining) is reported, never silently swapped for another."""
    from archscore.estimators.one_shot.registry import CheckpointError
    from archscore.workers.supernets import supernet

    with pytest.raises(CheckpointError, match="replaced or removed"):
        supernet("0" * 64, "cpu")
