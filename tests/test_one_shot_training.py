"""Supernet samplers, training, resume, checkpoints, averaging and evaluation on tiny configurations."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from archscore.estimators.datasets import DatasetError, load_dataset
from archscore.estimators.one_shot import training
from archscore.estimators.one_shot.checkpoints import average_checkpoints, load_checkpoint
from archscore.estimators.one_shot.evaluation import (
    calibration_batches,
    class_paths,
    evaluate_arch,
    score_arch,
    validation_batches,
)
from archscore.estimators.one_shot.registry import (
    BUILTIN_DIR,
    CheckpointError,
    builtin_supernet,
    folder_of,
    list_checkpoints,
    resolve,
    sha256_file,
)
from archscore.estimators.one_shot.samplers import SAMPLERS
from archscore.estimators.one_shot.split import VALIDATION_IMAGES, held_out, split
from archscore.estimators.protocol import EVALUATION_IMAGES
from archscore.estimators.spaces import get_space
from archscore.estimators.spaces.nb201 import OPS, canonical_key, has_conv_path, isomorphism_classes

NB201 = get_space("nb201")
live_form = NB201.supernet_path

TINY = dict(network={"C": 4, "N": 1}, batch_size=100, epochs=1, steps_per_epoch=6)


def test_every_sampler_resamples_cells_without_a_conv_path():
    for name, sampler in SAMPLERS.items():
        rng = random.Random(0)
        archs = [a for _ in range(50) for a in sampler(NB201, rng, 5)]
        assert all(has_conv_path(a) for a in archs), name


def test_fair_sampler_uses_every_op_once_per_edge():
    archs = SAMPLERS["fair"](NB201, random.Random(1), 5)
    assert len(archs) == len(OPS)
    for edge in range(6):
        assert sorted(a[edge] for a in archs) == sorted(OPS)


def test_deiso_sampler_is_uniform_over_classes_not_cells():
    """Classes with many members (e.g. all dead-node variants) are drawn far less often than by the
    uniform sampler: count how often the drawn cell's class is large."""
    sizes = {k: len(v) for k, v in isomorphism_classes().items()}
    share_large = {}
    for name in ("uniform", "deiso"):
        archs = SAMPLERS[name](NB201, random.Random(2), 3000)
        share_large[name] = sum(sizes[canonical_key(a)] > 5 for a in archs) / len(archs)
    assert share_large["deiso"] < share_large["uniform"] / 2


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("supernet") / "tiny"
    seen = []
    manifest = training.train(training.TrainConfig(sampler="uniform", **TINY), out, progress=seen.append)
    return out, manifest, seen


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("weights.pt", "optimizer.pt", "manifest.json"):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def test_training_writes_a_checkpoint_that_loads_safely(trained):
    out, manifest, seen = trained
    assert {p.name for p in Path(out).iterdir()} == {"weights.pt", "optimizer.pt", "manifest.json"}
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["sha256"] == sha256_file(out / "weights.pt")
    assert on_disk["space"] == "nb201" and on_disk["sampler"] == "uniform" and on_disk["epochs"] == 1
    assert on_disk["complete"] is True and on_disk["dataset"] == "cifar10" and on_disk["seed"] == 0
    assert on_disk["network"] == {"C": 4, "N": 1, "num_classes": 10, "affine": True}
    supernet, _ = load_checkpoint(out)
    state = torch.load(out / "weights.pt", weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in supernet.state_dict().items())
    # progress reports every step with a time estimate
    assert [p["step"] for p in seen] == list(range(1, 7))
    assert seen[-1]["seconds_left"] == pytest.approx(0, abs=1e-6)


def test_tampered_weights_are_refused(trained, tmp_path):
    copy = _copy(trained[0], tmp_path / "copy")
    state = torch.load(copy / "weights.pt", weights_only=True)
    state["classifier.bias"] += 1
    torch.save(state, copy / "weights.pt")
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(copy)


def test_resume_continues_from_the_checkpoint(trained, tmp_path):
    out, first, _ = trained
    copy = _copy(out, tmp_path / "copy")
    config = training.TrainConfig(sampler="uniform", **{**TINY, "epochs": 2})
    resumed = training.train(config, copy, resume=True)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert resumed["history"][0] == first["history"][0]
    assert resumed["sha256"] != first["sha256"]
    with pytest.raises(CheckpointError, match="nothing to train"):
        training.train(config, copy, resume=True)
    with pytest.raises(CheckpointError, match="already holds a checkpoint"):
        training.train(config, copy)  # never overwrite a checkpoint by accident


def test_augmentation_crops_and_flips_without_changing_shape():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 3, 32, 32)
    out = training.augment_batch(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and not torch.equal(out, x)
    same = training.augment_batch(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, same)


def test_evaluation_gives_accuracy_and_negated_loss(trained):
    out, _, _ = trained
    supernet, manifest = load_checkpoint(out)
    batches = validation_batches(manifest, 100, 2)
    arch = ("nor_conv_3x3",) * 6
    result = evaluate_arch(supernet, arch, batches)
    assert 0 <= result["oneshot_acc"] <= 1 and result["oneshot_loss"] < 0
    assert result == evaluate_arch(supernet, arch, batches)  # deterministic
    assert sum(len(y) for _, y in batches) == 200


def test_recalibration_uses_its_own_statistics_and_restores_the_supernets(trained):
    out, _, _ = trained
    supernet, manifest = load_checkpoint(out)
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    batches, calib = validation_batches(manifest, 100, 1), calibration_batches(manifest, 100, 2)
    arch = ("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "avg_pool_3x3", "nor_conv_3x3", "none")
    recal = evaluate_arch(supernet, arch, batches, "recalibrate", calib)
    assert recal != evaluate_arch(supernet, arch, batches, "train")
    assert recal == evaluate_arch(supernet, arch, batches, "recalibrate", calib)
    assert all(torch.equal(before[k], v) for k, v in supernet.state_dict().items())
    with pytest.raises(ValueError, match="calibration"):
        evaluate_arch(supernet, arch, batches, "recalibrate")


def test_post_deisomorphism_is_the_mean_over_the_class(trained):
    out, _, _ = trained
    supernet, manifest = load_checkpoint(out)
    batches = validation_batches(manifest, 100, 1)
    # a class whose members run different supernet paths (edges swapped between the two inner nodes)
    members = next(
        m for m in isomorphism_classes().values() if has_conv_path(m[0]) and len(class_paths(NB201, m[0])) == 3
    )
    arch = members[0]
    by_member = [evaluate_arch(supernet, m, batches) for m in members]
    expected = sum(s["oneshot_acc"] for s in by_member) / len(members)
    result = score_arch(supernet, arch, batches, post_deiso=True)
    assert result["oneshot_acc"] == pytest.approx(expected)
    assert sum(n for _, n in class_paths(NB201, arch)) == len(members)
    # every member of a class gets the same score
    assert score_arch(supernet, members[-1], batches, post_deiso=True) == pytest.approx(result)


def test_dead_edges_do_not_change_the_supernet_path(trained):
    arch = ("nor_conv_3x3", "nor_conv_1x1", "none", "none", "none", "nor_conv_3x3")  # node 1 leads nowhere
    assert live_form(arch) == ("none", "nor_conv_1x1", "none", "none", "none", "nor_conv_3x3")
    supernet, manifest = load_checkpoint(trained[0])
    batches = validation_batches(manifest, 100, 1)
    assert evaluate_arch(supernet, arch, batches) == evaluate_arch(supernet, live_form(arch), batches)


def test_snapshots_keep_the_last_epochs_for_averaging(tmp_path):
    config = training.TrainConfig(sampler="uniform", **{**TINY, "epochs": 3}, keep_snapshots=2)
    final = training.train(config, tmp_path / "run")
    kept = training.snapshots(tmp_path / "run")
    assert [p.name for p in kept] == ["epoch-0002", "epoch-0003"]
    assert load_checkpoint(kept[-1])[1]["sha256"] == final["sha256"]
    assert not (kept[0] / "optimizer.pt").exists()
    assert [c["name"] for c in list_checkpoints(tmp_path) if not c["builtin"]] == ["run"]  # snapshots are not listed
    average_checkpoints(kept, tmp_path / "avg")
    assert load_checkpoint(tmp_path / "avg")[1]["averaged_from"][0]["epochs"] == 2


def test_averaging_checkpoints(trained, tmp_path):
    out, first, _ = trained
    second_dir = _copy(out, tmp_path / "two")
    second = training.train(training.TrainConfig(sampler="uniform", **{**TINY, "epochs": 2}), second_dir, resume=True)
    averaged = average_checkpoints([out, second_dir], tmp_path / "avg")
    net, manifest = load_checkpoint(tmp_path / "avg")
    a, b = load_checkpoint(out)[0].state_dict(), load_checkpoint(second_dir)[0].state_dict()
    name = "classifier.weight"
    assert torch.allclose(net.state_dict()[name], (a[name] + b[name]) / 2)
    assert [s["sha256"] for s in averaged["averaged_from"]] == [first["sha256"], second["sha256"]]
    assert not (tmp_path / "avg" / "optimizer.pt").exists()
    with pytest.raises(CheckpointError, match="at least two"):
        average_checkpoints([out], tmp_path / "avg2")


def test_registry_lists_and_resolves_by_name_or_sha_prefix(trained, tmp_path):
    out, manifest, _ = trained
    root = out.parent
    listed = list_checkpoints(root)
    assert [c["name"] for c in listed] == ["tiny", "nb201-deiso"]  # the folder's, then the built-in one
    assert listed[0]["sha256"] == manifest["sha256"] and [c["builtin"] for c in listed] == [False, True]
    assert resolve(root, "tiny")["sha256"] == manifest["sha256"]
    assert resolve(root, manifest["sha256"][:10])["name"] == "tiny"
    assert resolve(root, None)["name"] == "tiny"  # the newest complete one
    with pytest.raises(CheckpointError, match="no supernet checkpoint 'nope'"):
        resolve(root, "nope")
    with pytest.raises(CheckpointError, match="no complete supernet checkpoint of nb301"):
        resolve(tmp_path, None, "nb301")


def test_the_built_in_supernet_is_found_unless_a_folder_takes_its_name(trained, tmp_path):
    builtin = resolve(tmp_path, None, "nb201")  # nothing in the folder: the built-in one
    assert builtin == builtin_supernet("nb201") | {"shared": True} and builtin["name"] == "nb201-deiso"
    assert builtin["complete"] and builtin["epochs"] == 250 and builtin["space"] == "nb201"
    folder = folder_of(tmp_path, builtin["sha256"])
    assert folder == BUILTIN_DIR / "nb201-deiso" and sha256_file(folder / "weights.pt") == builtin["sha256"]
    net, manifest = load_checkpoint(folder)  # weights_only load, sha256 checked
    assert manifest["sha256"] == builtin["sha256"] and sum(p.numel() for p in net.parameters()) > 0
    assert resolve(tmp_path, builtin["sha256"][:8])["builtin"]
    assert builtin_supernet("nb101") is None
    _copy(trained[0], tmp_path / "nb201-deiso")  # a folder of the same name takes its place
    (shadow,) = list_checkpoints(tmp_path)
    assert not shadow["builtin"] and resolve(tmp_path, "nb201-deiso")["sha256"] == trained[1]["sha256"]


def test_train_and_validation_splits_are_disjoint_and_fixed():
    images = load_dataset("cifar10", "train")
    a_train, a_val = split(images)
    b_train, b_val = split(images)
    assert len(a_val) == VALIDATION_IMAGES and len(a_train) == len(images) - VALIDATION_IMAGES
    assert (a_val.x == b_val.x).all()
    train_rows = {row.tobytes() for row in a_train.x.reshape(len(a_train), -1)}
    assert not any(row.tobytes() in train_rows for row in a_val.x.reshape(len(a_val), -1))


def test_held_out_images_are_the_validation_split_and_the_test_images_never_trained_on():
    train_split, val = split(load_dataset("cifar10", "train"))
    test = load_dataset("cifar10", "test")
    pool = held_out("cifar10")
    assert len(pool) == len(val) + len(test) == EVALUATION_IMAGES["held_out"] == 1500
    assert (pool.x[: len(val)] == val.x).all() and (pool.x[len(val) :] == test.x).all()
    assert (pool.y[len(val) :] == test.y).all()
    train_rows = {row.tobytes() for row in train_split.x.reshape(len(train_split), -1)}
    assert not any(row.tobytes() in train_rows for row in pool.x.reshape(len(pool), -1))
    # 15 batches of 100 fit; the validation split alone holds 5
    manifest = {"dataset": "cifar10"}
    batches = validation_batches(manifest, 100, 15, images="held_out")
    assert sum(len(y) for _, y in batches) == 1500
    with pytest.raises(DatasetError, match="only 500 available"):
        validation_batches(manifest, 100, 6)
    with pytest.raises(ValueError, match="unknown images 'test'"):
        validation_batches(manifest, 100, 1, images="test")


def test_cosine_schedule_anneals_the_lr_per_step_to_zero_at_the_last_epoch(tmp_path):
    assert [training.cosine_lr(0.1, t, 12) for t in (0, 6, 12)] == pytest.approx([0.1, 0.05, 0.0])
    config = training.TrainConfig(sampler="uniform", **{**TINY, "epochs": 2}, schedule="cosine", lr=0.1)
    lrs = [h["lr"] for h in training.train(config, tmp_path / "cosine")["history"]]
    # the lr of each epoch's last step (6 steps an epoch), whatever the validation loss did
    assert lrs == pytest.approx([training.cosine_lr(0.1, 5, 12), training.cosine_lr(0.1, 11, 12)])
    assert lrs[1] < 0.002


def test_bad_configurations_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown schedule"):
        training.train(training.TrainConfig(schedule="linear", **TINY), tmp_path)
    with pytest.raises(ValueError, match="unknown sampler"):
        training.train(training.TrainConfig(sampler="nope", **TINY), tmp_path)
    with pytest.raises(ValueError, match="out of range"):
        training.train(training.TrainConfig(**{**TINY, "epochs": 0}), tmp_path)


def test_a_training_step_that_would_not_fit_is_refused_with_a_batch_size_that_fits(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCORE_MEMORY_LIMIT_MB", "600")
    config = training.TrainConfig(network={"C": 8, "N": 2}, batch_size=1024, epochs=1, steps_per_epoch=1)
    with pytest.raises(training.TrainingTooLarge, match=r"batch_size 1024.*a batch_size of at most \d+ fits"):
        training.train(config, tmp_path / "too-big")
    assert not (tmp_path / "too-big").exists()


def test_should_stop_ends_a_training_between_architectures(tmp_path):
    asked = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 3  # the fourth question: inside the first step of 8 architectures

    config = training.TrainConfig(
        network={"C": 4, "N": 1}, archs_per_step=8, batch_size=16, epochs=1, steps_per_epoch=2
    )
    with pytest.raises(training.TrainingStopped):
        training.train(config, tmp_path / "stopped", should_stop=should_stop)
    assert len(asked) == 4 and not (tmp_path / "stopped" / "manifest.json").exists()
