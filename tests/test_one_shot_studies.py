"""The one-shot studies -- validation_size and training_length (from the snapshots a training kept) --
from the command line and over HTTP (real Redis and Celery worker), with the same numbers both ways."""

from __future__ import annotations

import json

import pytest
from helpers.http import error_fields
from helpers.scoring import same as _same
from typer.testing import CliRunner

from archscore.estimators.one_shot.registry import snapshots_of
from archscore.estimators.one_shot.training import TrainConfig, train
from archscore.estimators.spaces import get_space
from archscore.service.cli import app

SP = get_space("nb201")
runner = CliRunner()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny NB201 supernet trained 3 epochs, every epoch's snapshot kept."""
    root = tmp_path_factory.mktemp("supernets")
    manifest = train(
        TrainConfig(network={"C": 4, "N": 1}, epochs=3, steps_per_epoch=2, batch_size=32, seed=5, keep_snapshots=3),
        root / "tiny",
    )
    return root, manifest


def archs() -> list[str]:
    # class representatives: the service scores one architecture per isomorphism class
    return [SP.to_string(a) for a in dict.fromkeys(SP.representative(a) for a in SP.sample(10, seed=41))]


def cli_study(study: str, root, tmp_path, monkeypatch, *extra) -> dict:
    monkeypatch.setenv("ARCHSCORE_SUPERNET_DIR", str(root))
    (tmp_path / "archs.txt").write_text("\n".join(archs()))
    out = tmp_path / study
    result = runner.invoke(
        app,
        [
            "study",
            study,
            "-f",
            str(tmp_path / "archs.txt"),
            "-e",
            "oneshot_acc,oneshot_loss",
            "--supernet",
            "tiny",
            "--out",
            str(out),
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return json.loads((out / "result.json").read_text())


def test_snapshots_are_found_by_checkpoint_and_by_sha256(checkpoint):
    from archscore.estimators.one_shot.registry import folder_of

    root, manifest = checkpoint
    snapshots = snapshots_of(root, manifest["sha256"])
    assert [s["epoch"] for s in snapshots] == [1, 2, 3]
    assert snapshots[-1]["sha256"] == manifest["sha256"]  # the last epoch's snapshot is the checkpoint
    assert folder_of(root, snapshots[0]["sha256"]) == root / snapshots[0]["name"]


@pytest.mark.slow
def test_training_length_from_the_command_line_and_over_http(
    checkpoint, tmp_path, monkeypatch, client, settings_env, celery_worker
):
    root, manifest = checkpoint
    written = cli_study("training_length", root, tmp_path, monkeypatch)
    result = written["result"]
    assert result["epochs"] == [1, 2, 3]
    assert list(result["snapshots"].values()) == [s["sha256"] for s in snapshots_of(root, manifest["sha256"])]
    acc = result["estimators"]["oneshot_acc"]
    assert set(acc["kendall_tau"]) == {"1", "2", "3"} and set(acc["stability"]) == {"1-2", "2-3"}
    assert (tmp_path / "training_length" / "training_length.png").is_file()

    settings_env(supernet_dir=str(root))
    body = {
        "study": "training_length",
        "space": "nb201",
        "archs": archs(),
        "truth": "cifar10_test",
        "estimators": ["oneshot_acc", "oneshot_loss"],
        "protocol": {"oneshot": {"supernet": "tiny"}},
    }
    resp = client.post("/v1/studies", json=body)
    assert resp.status_code == 202, resp.text
    assert len(resp.json()["jobs"]) == 3  # one scoring job per kept epoch
    done = client.get(f"/v1/studies/{resp.json()['study_id']}?wait=120").json()
    assert done["status"] == "done", done
    assert _same(done["result"]["result"], result)


@pytest.mark.slow
def test_validation_size_from_the_command_line_and_over_http(
    checkpoint, tmp_path, monkeypatch, client, settings_env, celery_worker
):
    root, _ = checkpoint
    result = cli_study("validation_size", root, tmp_path, monkeypatch, "--validation-batches", "1,3")["result"]
    assert result["validation_batches"] == [1, 3] and result["batch_size"] == 100 and result["images"] == "validation"
    loss = result["estimators"]["oneshot_loss"]
    assert loss["agreement_with_largest"]["3"] == pytest.approx(1.0)
    assert set(loss["kendall_tau"]) == {"1", "3"}

    settings_env(supernet_dir=str(root))
    body = {
        "study": "validation_size",
        "space": "nb201",
        "archs": archs(),
        "truth": "cifar10_test",
        "estimators": ["oneshot_acc", "oneshot_loss"],
        "protocol": {"oneshot": {"supernet": "tiny"}},
        "options": {"validation_batches": [1, 3]},
    }
    done = client.get(f"/v1/studies/{client.post('/v1/studies', json=body).json()['study_id']}?wait=120").json()
    assert done["status"] == "done", done
    assert _same(done["result"]["result"], result)


@pytest.mark.slow
def test_validation_size_on_the_held_out_images_from_the_command_line_and_over_http(
    checkpoint, tmp_path, monkeypatch, client, settings_env, celery_worker
):
    root, _ = checkpoint
    result = cli_study(
        "validation_size", root, tmp_path, monkeypatch, "--images", "held_out", "--validation-batches", "5,15"
    )["result"]
    assert result["validation_batches"] == [5, 15] and result["images"] == "held_out"
    loss = result["estimators"]["oneshot_loss"]
    assert loss["agreement_with_largest"]["15"] == pytest.approx(1.0) and set(loss["kendall_tau"]) == {"5", "15"}

    settings_env(supernet_dir=str(root))
    body = {
        "study": "validation_size",
        "space": "nb201",
        "archs": archs(),
        "truth": "cifar10_test",
        "estimators": ["oneshot_acc", "oneshot_loss"],
        "protocol": {"oneshot": {"supernet": "tiny", "images": "held_out"}},
        "options": {"validation_batches": [5, 15]},
    }
    done = client.get(f"/v1/studies/{client.post('/v1/studies', json=body).json()['study_id']}?wait=120").json()
    assert done["status"] == "done", done
    assert _same(done["result"]["result"], result)
    too_many = runner.invoke(
        app,
        [
            "study",
            "validation_size",
            "-f",
            str(tmp_path / "archs.txt"),
            "-e",
            "oneshot_acc",
            "--supernet",
            "tiny",
            "--out",
            str(tmp_path / "x"),
            "--validation-batches",
            "6",
        ],
    )
    assert too_many.exit_code == 2 and "exceed the 500 images of the validation split" in too_many.output
    wrong = runner.invoke(
        app,
        [
            "study",
            "validation_size",
            "-f",
            str(tmp_path / "archs.txt"),
            "-e",
            "oneshot_acc",
            "--supernet",
            "tiny",
            "--out",
            str(tmp_path / "x"),
            "--images",
            "test",
        ],
    )
    assert wrong.exit_code == 2 and "--images: use one of validation, held_out" in wrong.output


@pytest.mark.usefixtures("celery_worker")
def test_one_shot_studies_refuse_what_they_cannot_run(checkpoint, client, settings_env, tmp_path):
    root, _ = checkpoint
    settings_env(supernet_dir=str(root))
    base = {"space": "nb201", "archs": archs()[:5], "truth": "cifar10_test"}
    zero_shot = client.post("/v1/studies", json={**base, "study": "validation_size", "estimators": ["synflow"]})
    assert "ask for oneshot_acc or oneshot_loss" in error_fields(zero_shot, 422)["estimators"]
    too_big = client.post(
        "/v1/studies",
        json={
            **base,
            "study": "validation_size",
            "estimators": ["oneshot_acc"],
            "options": {"validation_batches": [6]},
        },
    )
    assert "exceed the 500 images" in error_fields(too_big, 422)["options.validation_batches"]
    held_out = client.post(
        "/v1/studies",
        json={
            **base,
            "study": "validation_size",
            "estimators": ["oneshot_acc"],
            "protocol": {"oneshot": {"images": "held_out"}},
            "options": {"validation_batches": [5, 16]},
        },
    )
    assert (
        "16 batches of 100 exceed the 1500 images of the held-out set"
        in error_fields(held_out, 422)["options.validation_batches"]
    )
    # a checkpoint trained without keep_snapshots
    train(TrainConfig(network={"C": 4, "N": 1}, epochs=1, steps_per_epoch=1, batch_size=32), root / "plain")
    plain = client.post(
        "/v1/studies",
        json={
            **base,
            "study": "training_length",
            "estimators": ["oneshot_acc"],
            "protocol": {"oneshot": {"supernet": "plain"}},
        },
    )
    assert "kept no per-epoch snapshots" in error_fields(plain, 422)["protocol.oneshot.supernet"]


@pytest.fixture(scope="module")
def compared(checkpoint):
    """Beside the uniform "tiny": a checkpoint trained with the fair sampler and one with K=2 parts."""
    root, _ = checkpoint
    common = dict(epochs=1, steps_per_epoch=2, batch_size=32, seed=6)
    train(TrainConfig(network={"C": 4, "N": 1}, sampler="fair", **common), root / "fair1")
    train(TrainConfig(network={"C": 4, "N": 1, "partitions": 2}, **common), root / "k2")
    return root


@pytest.mark.slow
def test_sampler_and_reduced_sharing_from_the_command_line_and_over_http(
    compared, tmp_path, monkeypatch, client, settings_env, celery_worker
):
    root = compared
    sampler = cli_study("sampler", root, tmp_path, monkeypatch, "--supernets", "tiny,fair1")["result"]
    assert set(sampler["checkpoints"]) == {"uniform", "fair"}
    assert sampler["checkpoints"]["fair"]["name"] == "fair1"
    acc = sampler["estimators"]["oneshot_acc"]
    assert set(acc["kendall_tau"]) == {"uniform", "fair"} and list(acc["agreement"]) == ["uniform vs fair"]
    assert set(acc["ndcg"]) == {"uniform", "fair"} and all(0 <= v <= 1 for v in acc["ndcg"].values())
    assert (tmp_path / "sampler" / "sampler.png").is_file()
    sharing = cli_study("reduced_sharing", root, tmp_path, monkeypatch, "--supernets", "tiny,k2")["result"]
    assert {lab: c["partitions"] for lab, c in sharing["checkpoints"].items()} == {"K=1": 1, "K=2": 2}
    assert sharing["estimators"]["oneshot_loss"]["kendall_tau"]["K=2"] is not None

    settings_env(supernet_dir=str(root))
    body = {
        "study": "reduced_sharing",
        "space": "nb201",
        "archs": archs(),
        "truth": "cifar10_test",
        "estimators": ["oneshot_acc", "oneshot_loss"],
        "protocol": {"oneshot": {"supernet": "tiny"}},
        "options": {"supernets": ["tiny", "k2"]},
    }
    resp = client.post("/v1/studies", json=body)
    assert resp.status_code == 202, resp.text
    done = client.get(f"/v1/studies/{resp.json()['study_id']}?wait=120").json()
    assert done["status"] == "done", done
    assert _same(done["result"]["result"], sharing)

    one = client.post("/v1/studies", json={**body, "options": {"supernets": ["k2"]}})
    assert "at least two checkpoints" in error_fields(one, 422)["options.supernets"]
    unknown = client.post("/v1/studies", json={**body, "options": {"supernets": ["k2", "nope"]}})
    assert "no supernet checkpoint 'nope'" in error_fields(unknown, 422)["options.supernets[1]"]
    bad = runner.invoke(
        app,
        [
            "study",
            "sampler",
            "--sample",
            "5",
            "-e",
            "oneshot_acc",
            "--supernet",
            "tiny",
            "--supernets",
            "tiny",
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert bad.exit_code == 2 and "--supernets: name at least two checkpoints" in bad.stderr
