"""Supernet samplers, training, resume, checkpoints and evaluation on tiny configurations."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
import torch

from estimators.one_shot import training
from estimators.one_shot.samplers import SAMPLERS
from estimators.spaces.nb201 import OPS, canonical_key, has_conv_path

TINY = dict(C=4, N=1, batch_size=100, epochs=1)


def test_every_sampler_resamples_cells_without_a_conv_path():
    for name, sampler in SAMPLERS.items():
        rng = random.Random(0)
        archs = [a for _ in range(50) for a in sampler(rng, 5)]
        assert all(has_conv_path(a) for a in archs), name


def test_fair_sampler_uses_every_op_once_per_edge():
    archs = SAMPLERS["fair"](random.Random(1), 5)
    assert len(archs) == len(OPS)
    for edge in range(6):
        assert sorted(a[edge] for a in archs) == sorted(OPS)


def test_deiso_sampler_is_uniform_over_classes_not_cells():
    """Classes with many members (e.g. all dead-node variants) are drawn far less often than by the
    uniform sampler: count how often the drawn cell's class is large."""
    from estimators.spaces.nb201 import isomorphism_classes

    sizes = {k: len(v) for k, v in isomorphism_classes().items()}
    share_large = {}
    for name in ("uniform", "deiso"):
        archs = SAMPLERS[name](random.Random(2), 3000)
        share_large[name] = sum(sizes[canonical_key(a)] > 5 for a in archs) / len(archs)
    assert share_large["deiso"] < share_large["uniform"] / 2


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("supernet")
    seen = []
    manifest = training.train(training.TrainConfig(sampler="uniform", **TINY), out, progress=seen.append)
    return out, manifest, seen


def test_training_writes_a_checkpoint_that_loads_safely(trained):
    out, manifest, seen = trained
    assert {p.name for p in Path(out).iterdir()} == {"weights.pt", "optimizer.pt", "manifest.json"}
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["sha256"] == training.sha256_file(out / "weights.pt")
    assert on_disk["space"] == "nb201" and on_disk["sampler"] == "uniform" and on_disk["epochs"] == 1
    assert on_disk["network"] == {"C": 4, "N": 1, "num_classes": 10, "affine": True}
    supernet, _ = training.load_checkpoint(out)
    state = torch.load(out / "weights.pt", weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in supernet.state_dict().items())
    # progress reports every step with a time estimate
    assert [p["step"] for p in seen] == list(range(1, seen[0]["steps"] + 1))
    assert seen[-1]["seconds_left"] == pytest.approx(0, abs=1e-6)


def test_tampered_weights_are_refused(trained, tmp_path):
    out, _, _ = trained
    for name in ("weights.pt", "optimizer.pt", "manifest.json"):
        (tmp_path / name).write_bytes((out / name).read_bytes())
    state = torch.load(tmp_path / "weights.pt", weights_only=True)
    state["classifier.bias"] += 1
    torch.save(state, tmp_path / "weights.pt")
    with pytest.raises(ValueError, match="sha256"):
        training.load_checkpoint(tmp_path)


def test_resume_continues_from_the_checkpoint(trained, tmp_path):
    out, first, _ = trained
    for name in ("weights.pt", "optimizer.pt", "manifest.json"):
        (tmp_path / name).write_bytes((out / name).read_bytes())
    resumed = training.train(training.TrainConfig(sampler="uniform", **{**TINY, "epochs": 2}), tmp_path, resume=True)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert resumed["history"][0] == first["history"][0]
    assert resumed["sha256"] != first["sha256"]
    with pytest.raises(ValueError, match="nothing to train"):
        training.train(training.TrainConfig(sampler="uniform", **{**TINY, "epochs": 2}), tmp_path, resume=True)


def test_evaluation_gives_accuracy_and_negated_loss(trained):
    out, _, _ = trained
    supernet, _ = training.load_checkpoint(out)
    _, val = training.split(training.load_dataset("cifar10", "train"))
    batches = training.fixed_batches(val, 100, 2, seed=0)
    arch = ("nor_conv_3x3",) * 6
    result = training.evaluate_arch(supernet, arch, batches)
    assert 0 <= result["oneshot_acc"] <= 1 and result["oneshot_loss"] < 0
    assert result == training.evaluate_arch(supernet, arch, batches)  # deterministic
    counts = Counter(int(y) for _, ys in batches for y in ys)
    assert sum(counts.values()) == 200


def test_train_and_validation_splits_are_disjoint_and_fixed():
    images = training.load_dataset("cifar10", "train")
    a_train, a_val = training.split(images)
    b_train, b_val = training.split(images)
    assert len(a_val) == training.VALIDATION_IMAGES and len(a_train) == len(images) - training.VALIDATION_IMAGES
    assert (a_val.x == b_val.x).all()
    train_rows = {row.tobytes() for row in a_train.x.reshape(len(a_train), -1)}
    assert not any(row.tobytes() in train_rows for row in a_val.x.reshape(len(a_val), -1))


def test_unknown_sampler_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown sampler"):
        training.train(training.TrainConfig(sampler="nope", **TINY), tmp_path)
