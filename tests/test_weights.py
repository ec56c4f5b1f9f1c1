"""Zero-shot estimators on supernet weights (protocol ``weights``, RQ4) and the zero_shot_on_supernet
study: in the library, from the command line and over HTTP (real Redis and Celery worker)."""

from __future__ import annotations

import json

import pytest
import torch
from helpers.http import error_fields
from helpers.scoring import same as _same
from typer.testing import CliRunner

from archscore.estimators.analysis import StudyContext, get_study
from archscore.estimators.analysis.run import local_source
from archscore.estimators.one_shot.checkpoints import load_checkpoint
from archscore.estimators.one_shot.training import TrainConfig, train
from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces import get_space
from archscore.estimators.truth import load_builtin
from archscore.estimators.zero_shot.engine import protocol_batches, score_architecture, score_module
from archscore.service.cli import app

SP = get_space("nb201")
ESTIMATORS = ["synflow", "snip", "grad_norm", "jacob_cov"]
runner = CliRunner()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny NB201 supernet (C=4, N=1, 4 steps) in a folder of its own, as the service keeps them."""
    root = tmp_path_factory.mktemp("supernets")
    manifest = train(
        TrainConfig(network={"C": 4, "N": 1}, epochs=1, steps_per_epoch=4, batch_size=32, seed=3), root / "tiny"
    )
    return root, manifest


def loader(root):
    def load(sha256: str):
        net, manifest = load_checkpoint(root / "tiny")
        assert manifest["sha256"] == sha256
        return net, manifest

    return load


def test_weights_enter_the_protocol_hash_only_when_set(checkpoint):
    _, manifest = checkpoint
    plain = Protocol(batch_size=8)
    assert plain.hash() == Protocol(batch_size=8, weights=None).hash()  # hashes of earlier protocols stay
    with_weights = Protocol(batch_size=8, weights=manifest["sha256"])
    assert with_weights.hash() != plain.hash()
    assert with_weights.model_copy(update={"init": "random"}).hash() not in (with_weights.hash(), plain.hash())
    assert Protocol(batch_size=8, init="random").hash() == plain.hash()  # init means nothing without weights
    with pytest.raises(ValueError):
        Protocol(weights="not-a-sha")


def test_networks_take_their_paths_weights_from_the_supernet(checkpoint):
    root, manifest = checkpoint
    arch = SP.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|")
    protocol = Protocol(batch_size=8, weights=manifest["sha256"])
    on_supernet = score_architecture(arch, "nb201", ESTIMATORS, protocol, supernets=loader(root))
    # the reference: the standalone network of the checkpoint's size, loaded by hand from the supernet
    supernet, _ = load_checkpoint(root / "tiny")
    net = SP.build_network(arch, C=4, N=1)
    net.load_state_dict(supernet.standalone_state_dict(arch), strict=True)
    assert torch.equal(net.cells[0].edges[0][1].weight, supernet.cells[0].edges[0]["nor_conv_3x3"][1].weight)
    x, y = protocol_batches(protocol)[0]
    reference = score_module(net, x, y, ESTIMATORS, protocol.bn_mode)
    for name in ESTIMATORS:
        assert on_supernet.scores[name].value == pytest.approx(reference[name].value, rel=1e-6), name
    # init random: the same size of network, randomly initialised from the seed (RQ4's baseline)
    random_init = score_architecture(
        arch, "nb201", ESTIMATORS, protocol.model_copy(update={"init": "random"}), supernets=loader(root)
    )
    torch.manual_seed(protocol.seed)
    fresh = SP.build_network(arch, C=4, N=1)
    expected = score_module(fresh, x, y, ESTIMATORS, protocol.bn_mode)
    for name in ESTIMATORS:
        assert random_init.scores[name].value == pytest.approx(expected[name].value, rel=1e-6), name
    assert on_supernet.scores["synflow"].value != random_init.scores["synflow"].value
    # scoring does not change the supernet (synflow takes absolute values of the weights it scores)
    again, _ = load_checkpoint(root / "tiny")
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), supernet.state_dict().values()))
    with pytest.raises(ValueError, match="supernets="):
        score_architecture(arch, "nb201", ["synflow"], protocol)


def _study_library(root, archs, weights: str, estimators: list[str]) -> dict:
    truth = load_builtin("nb201", "cifar10_test")
    protocol = Protocol(batch_size=4, seed=20, weights=weights)
    ctx = StudyContext(
        SP,
        archs,
        [truth.get(a) for a in archs],
        estimators,
        protocol,
        local_source("nb201", archs, estimators, 1, supernet_dir=root),
    )
    return get_study("zero_shot_on_supernet").run(ctx)


def test_study_compares_random_and_supernet_weights_from_the_command_line(checkpoint, tmp_path, monkeypatch):
    root, manifest = checkpoint
    monkeypatch.setenv("ARCHSCORE_SUPERNET_DIR", str(root))
    result = runner.invoke(
        app,
        [
            "study",
            "zero_shot_on_supernet",
            "--sample",
            "12",
            "--seed",
            "4",
            "-e",
            "snip,params",
            "--batch-size",
            "4",
            "--weights",
            "tiny",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "result.json").read_text())
    numbers = written["result"]
    assert numbers["weights"] == manifest["sha256"] and numbers["inits"] == ["random", "supernet"]
    snip, params = numbers["estimators"]["snip"], numbers["estimators"]["params"]
    assert snip["agreement"] < 1  # trained weights reorder snip's scores
    assert params["kendall_tau"]["random"] == params["kendall_tau"]["supernet"] and params["agreement"] == 1.0
    assert params["ndcg"]["random"] == params["ndcg"]["supernet"] is not None
    archs = [SP.parse(a) for a in written["inputs"]["archs"]]
    assert _same(numbers, json.loads(json.dumps(_study_library(root, archs, manifest["sha256"], ["snip", "params"]))))
    assert (tmp_path / "zero_shot_on_supernet.png").is_file()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--weights", "nope"], "--weights: no supernet checkpoint 'nope'"),
        ([], "--weights: name the supernet checkpoint"),
        (["--space", "nb101", "--weights", "tiny"], "--weights: search space nb101 has no supernet"),
    ],
)
def test_study_command_without_usable_weights_exits_2(checkpoint, tmp_path, monkeypatch, args, needle):
    monkeypatch.setenv("ARCHSCORE_SUPERNET_DIR", str(checkpoint[0]))
    result = runner.invoke(
        app, ["study", "zero_shot_on_supernet", "--sample", "6", "-e", "params", "--out", str(tmp_path), *args]
    )
    assert result.exit_code == 2 and needle in result.output, result.output


@pytest.fixture
def served_checkpoint(checkpoint, settings_env):
    settings_env(supernet_dir=str(checkpoint[0]))
    return checkpoint


@pytest.mark.usefixtures("celery_worker")
def test_study_over_http_gives_the_library_numbers(client, served_checkpoint):
    root, manifest = served_checkpoint
    # class representatives: the service scores one architecture per isomorphism class, and a tiny
    # network's random init differs between isomorphic cells by more than ranks can hide
    archs = list(dict.fromkeys(SP.representative(a) for a in SP.sample(8, seed=31)))
    body = {
        "study": "zero_shot_on_supernet",
        "space": "nb201",
        "archs": [SP.to_string(a) for a in archs],
        "estimators": ["synflow", "params"],
        "truth": "cifar10_test",
        "protocol": {"batch_size": 4, "seed": 20, "weights": manifest["sha256"][:12]},
    }
    resp = client.post("/v1/studies", json=body)
    assert resp.status_code == 202, resp.text
    assert resp.json()["protocol"]["weights"] == manifest["sha256"]  # resolved from the prefix
    done = client.get(f"/v1/studies/{resp.json()['study_id']}?wait=120").json()
    assert done["status"] == "done", done
    expected = _study_library(root, archs, manifest["sha256"], body["estimators"])
    assert _same(done["result"]["result"], json.loads(json.dumps(expected)))
    # the same weights through POST /v1/scores: the cached supernet-weight scores
    scores = client.post(
        "/v1/scores?wait=60", json={k: body[k] for k in ("space", "archs", "estimators", "protocol", "truth")}
    ).json()
    assert scores["status"] == "done" and scores["cached"] == len({SP.canonical_key(a) for a in archs})


@pytest.mark.usefixtures("celery_worker")
def test_weights_that_cannot_be_used_are_422(client, served_checkpoint):
    base = {"space": "nb201", "archs": [SP.to_string(SP.sample(1, seed=1)[0])], "estimators": ["synflow"]}
    missing = client.post("/v1/scores", json={**base, "protocol": {"weights": "nope"}})
    assert "no supernet checkpoint 'nope'" in error_fields(missing, 422)["protocol.weights"]
    nb101 = client.post(
        "/v1/scores",
        json={**base, "space": "nb101", "archs": ["4a0ab8bbe2441a002e07b0f445ec2d63"], "protocol": {"weights": "tiny"}},
    )
    assert error_fields(nb101, 422)["protocol.weights"] == (
        "search space nb101 has no supernet whose weights its standalone networks can take"
    )
    study = client.post(
        "/v1/studies",
        json={
            **base,
            "study": "zero_shot_on_supernet",
            "truth": "cifar10_test",
            "archs": [SP.to_string(a) for a in SP.sample(4, seed=2)],
        },
    )
    assert "name the supernet checkpoint" in error_fields(study, 422)["protocol.weights"]
