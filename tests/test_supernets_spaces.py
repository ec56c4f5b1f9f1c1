"""Every space that declares a supernet (timm-style, parametrised over the registry): the supernet
computes each architecture's function with the weights it shares (equivalence with the standalone
network, or for NB101 with a reference forward written here), trains, resumes, averages and scores
from a checkpoint, and samplers draw only what the supernet covers."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archscore.estimators.one_shot import training
from archscore.estimators.one_shot.checkpoints import average_checkpoints, load_checkpoint
from archscore.estimators.one_shot.evaluation import NotCovered, score_arch, validation_batches
from archscore.estimators.one_shot.samplers import SAMPLERS
from archscore.estimators.spaces import get_space, list_spaces
from archscore.estimators.spaces.base import ISOMORPHISM, SUPERNET, NetworkConfigError

SUPERNET_SPACES = [name for name in list_spaces() if get_space(name).has(SUPERNET)]
# the smallest networks that still have every kind of module (reductions, several blocks per stage)
TINY = {
    "nb201": {"C": 4, "N": 1},
    "nb301": {"C": 4, "layers": 3},
    "nb101": {"stem_channels": 4, "num_stacks": 2, "cells_per_stack": 1},
    "nds_resnet": {"max_depth": 2, "max_width": 32},
    "nds_resnexta": {"max_depth": 2, "max_width": 32},
}


def test_every_space_has_a_supernet_and_a_tiny_setting():
    sampled = {name for name in list_spaces() if get_space(name).samples}  # onnx: models given, no supernet
    assert set(SUPERNET_SPACES) == sampled == set(TINY)


def tiny_supernet(name: str, seed: int = 0):
    space = get_space(name)
    torch.manual_seed(seed)
    net = space.build_supernet(**space.supernet_config(TINY[name]), num_classes=10)
    with torch.no_grad():  # BN statistics and affine parameters away from their identity defaults
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                if m.affine:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.3, 0.3)
    return space, net


def nb101_reference(net, cell, x: torch.Tensor) -> torch.Tensor:
    """NB101 written out with the supernet's weights: node t = op(sum of its projected input and
    interior predecessors), output = sum of the nodes feeding it and its projected input."""

    def conv_bn_relu(seq, h, padding):
        conv, bn = seq[0], seq[1]
        h = F.conv2d(h, conv.weight, padding=padding)
        return F.relu(F.batch_norm(h, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps))

    def cell_forward(sc, h):
        m, n = cell.matrix, len(cell.matrix)
        nodes = [h]
        for t in range(1, n - 1):
            total = sum((nodes[s] for s in range(1, t) if m[s][t]), torch.zeros(()))
            if m[0][t]:
                total = total + conv_bn_relu(sc.projections[str(t)], h, 0)
            op = cell.ops[t]
            if op == "maxpool3x3":
                nodes.append(F.max_pool2d(total, 3, 1, 1))
            else:
                nodes.append(conv_bn_relu(sc.ops[str(t)][op], total, 1 if op.startswith("conv3x3") else 0))
        out = sum((nodes[t] for t in range(1, n - 1) if m[t][n - 1]), torch.zeros(()))
        if m[0][n - 1]:
            out = out + conv_bn_relu(sc.projections["out"], h, 0)
        return out

    h = conv_bn_relu(net.stem, x, 1)
    for layer in net.layers:
        h = F.max_pool2d(h, 2, 2) if isinstance(layer, nn.MaxPool2d) else cell_forward(layer, h)
    return F.linear(h.mean((2, 3)), net.classifier.weight, net.classifier.bias)


@pytest.mark.parametrize("name", SUPERNET_SPACES)
def test_supernet_computes_each_architecture_with_its_shared_weights(name):
    space, net = tiny_supernet(name)
    archs = SAMPLERS["uniform"](net.sampling_space(space), random.Random(3), 6)
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    net.eval()
    for arch in archs:
        with torch.no_grad():
            out = net(x, arch)
            if space.supernet_transfers_weights:  # the form the supernet runs (NB201: dead edges set to none)
                path = space.supernet_path(arch)
                standalone = space.build_network(path, **net.standalone_config())
                standalone.load_state_dict(net.standalone_state_dict(path))  # strict: every name matches
                expected = standalone.eval()(x)
            else:
                expected = nb101_reference(net, arch, x)
        assert out.shape == (3, 10)
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5, msg=f"{name} {space.to_string(arch)}")


@pytest.mark.parametrize("name", SUPERNET_SPACES)
def test_architectures_share_weights_and_run_only_their_own(name):
    """A gradient step through one architecture reaches no parameter another architecture alone
    would use, and two architectures have parameters in common (the stem at least)."""
    space, net = tiny_supernet(name)
    a, b = SAMPLERS["uniform"](net.sampling_space(space), random.Random(4), 2)
    x = torch.randn(2, 3, 32, 32)

    def used(arch) -> set[str]:
        net.zero_grad(set_to_none=True)
        net.train()(x, arch).sum().backward()
        return {n for n, p in net.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}

    used_a, used_b = used(a), used(b)
    assert used_a & used_b and used_a != used_b
    assert len(used_a) < len(list(net.parameters()))


@pytest.mark.parametrize("name", SUPERNET_SPACES)
def test_samplers_draw_only_trainable_covered_architectures(name):
    space, net = tiny_supernet(name)
    view = net.sampling_space(space)
    samplers = [s for s in SAMPLERS if s != "deiso" or space.has(ISOMORPHISM)]
    for sampler in samplers:
        archs = [a for _ in range(10) for a in SAMPLERS[sampler](view, random.Random(5), 3)]
        assert all(space.trainable(a) and net.covers(a) for a in archs), sampler
        assert all(space.parse(space.to_json(a)) == a for a in archs)


@pytest.mark.parametrize("name", SUPERNET_SPACES)
def test_fair_sampler_uses_every_option_of_the_first_slot_size_once(name):
    space, net = tiny_supernet(name)
    view = net.sampling_space(space)
    slots = view.choice_slots()
    k = len(slots[0])
    archs = SAMPLERS["fair"](view, random.Random(6))
    assert len(archs) == k
    if name == "nb101":  # pruning drops vertices: a cell no longer tells which slot an op came from
        return
    for i, options in enumerate(slots):
        if len(options) == k:
            picked = [_choices(space, a)[i] for a in archs]
            assert sorted(map(str, picked)) == sorted(map(str, options)), (name, i)


def _choices(space, arch):
    """The slot values of an architecture (the inverse of from_choices)."""
    name = space.name
    if name == "nb201":
        return list(arch)
    if name == "nb301":
        values = []
        for pairs in (arch.normal, arch.reduce):
            for k in range(4):
                (op_a, a), (op_b, b) = pairs[2 * k], pairs[2 * k + 1]
                values += [op_a, op_b, (a, b)]
        return values
    return [v for field in space.fields for v in getattr(arch, field)]


@pytest.mark.parametrize("name", SUPERNET_SPACES)
def test_network_settings_are_checked_field_by_field(name):
    space = get_space(name)
    field, spec = next(iter(space.supernet_network.items()))
    assert space.supernet_config({})[field] == spec.default
    with pytest.raises(NetworkConfigError) as too_big:
        space.supernet_config({field: spec.high + 1})
    assert too_big.value.field == field and str(spec.high) in too_big.value.reason
    with pytest.raises(NetworkConfigError) as unknown:
        space.supernet_config({"depth_of_the_sea": 3})
    assert unknown.value.field == "depth_of_the_sea" and field in unknown.value.reason
    with pytest.raises(NetworkConfigError):
        space.supernet_config({field: "8"})


@pytest.mark.slow
@pytest.mark.parametrize("name", SUPERNET_SPACES)
def test_train_resume_average_and_score_from_checkpoints(name, tmp_path):
    config = dict(space=name, network=TINY[name], batch_size=32, steps_per_epoch=2, keep_snapshots=2)
    first = training.train(training.TrainConfig(**config, epochs=1), tmp_path / "run")
    resumed = training.train(training.TrainConfig(**config, epochs=2), tmp_path / "run", resume=True)
    assert first["space"] == resumed["space"] == name and resumed["epochs"] == 2
    assert resumed["network"].items() >= {**get_space(name).supernet_config(TINY[name]), "num_classes": 10}.items()
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    averaged = average_checkpoints(sorted((tmp_path / "run" / "snapshots").glob("epoch-*")), tmp_path / "avg")
    assert averaged["space"] == name
    net, manifest = load_checkpoint(tmp_path / "run")
    space = get_space(name)
    batches = validation_batches(manifest, 50, 1)
    arch = SAMPLERS["uniform"](net.sampling_space(space), random.Random(7), 1)[0]
    scores = score_arch(net.eval(), arch, batches)
    assert 0.0 <= scores["oneshot_acc"] <= 1.0 and scores["oneshot_loss"] < 0
    assert score_arch(net, arch, batches) == scores  # batch statistics: the supernet is not changed by scoring


def test_resume_with_other_network_settings_is_refused(tmp_path):
    config = dict(space="nb301", network=TINY["nb301"], batch_size=32, steps_per_epoch=1)
    training.train(training.TrainConfig(**config, epochs=1), tmp_path)
    with pytest.raises(ValueError, match="other network settings"):
        training.train(training.TrainConfig(**{**config, "network": {"C": 6}}, epochs=2), tmp_path, resume=True)
    # settings left out are the checkpoint's
    manifest = training.train(training.TrainConfig(**{**config, "network": {}}, epochs=2), tmp_path, resume=True)
    assert manifest["network"]["C"] == 4 and manifest["epochs"] == 2


def test_deiso_sampler_is_refused_where_a_space_has_no_isomorphism_classes(tmp_path):
    with pytest.raises(ValueError, match="no isomorphism classes"):
        training.train(training.TrainConfig(space="nb301", sampler="deiso", network=TINY["nb301"]), tmp_path)


@pytest.mark.parametrize("name", ["nds_resnet", "nds_resnexta"])
def test_nds_architectures_beyond_the_supernet_are_not_scored(name):
    space, net = tiny_supernet(name)
    wide = space.parse("d1-1-1_w16-16-64" if name == "nds_resnet" else "d1-1-1_w16-16-64_b1-1-1_g1-1-1")
    assert not net.covers(wide)
    with pytest.raises(NotCovered, match="width 32"):
        score_arch(net, wide, [(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))])


def test_nb301_genotypes_without_the_full_concat_are_not_covered():
    space, net = tiny_supernet("nb301")
    g = space.random_arch(random.Random(8))
    partial = g._replace(normal_concat=(2, 3))
    assert net.covers(g) and not net.covers(partial) and not space.trainable(partial)
    with pytest.raises(NotCovered, match="concat"):
        score_arch(net, partial, [(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))])


def test_resnexta_groups_share_one_dense_kernel():
    """Two architectures that differ only in groups read the same dense kernel: group k of the
    standalone weight is the k-th diagonal block."""
    space, net = tiny_supernet("nds_resnexta")
    one = space.parse("d1-1-1_w32-32-32_b1-1-1_g1-1-1")
    four = space.parse("d1-1-1_w32-32-32_b1-1-1_g4-1-1")
    dense = net.standalone_state_dict(one)["stages.0.0.f.3.weight"]
    grouped = net.standalone_state_dict(four)["stages.0.0.f.3.weight"]
    assert dense.shape == (32, 32, 3, 3) and grouped.shape == (32, 8, 3, 3)
    for k in range(4):
        torch.testing.assert_close(grouped[8 * k : 8 * (k + 1)], dense[8 * k : 8 * (k + 1), 8 * k : 8 * (k + 1)])


@pytest.mark.parametrize("name", ["nb301", "nds_resnexta"])
def test_recalibrated_statistics_are_the_standalone_networks(name):
    """BN recalibration through the supernet (sliced running statistics for NDS) gives the statistics
    the standalone network gets from the same calibration batch; the supernet's own are restored."""
    from archscore.estimators.one_shot.evaluation import recalibrated

    space, net = tiny_supernet(name)
    arch = SAMPLERS["uniform"](net.sampling_space(space), random.Random(9), 1)[0]
    calibration = [(torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(1)), None)]
    x = torch.randn(2, 3, 32, 32)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    standalone = space.build_network(arch, **net.standalone_config())
    standalone.load_state_dict(net.standalone_state_dict(arch))
    with torch.no_grad():
        with recalibrated(net, arch, calibration):
            out = net(x, arch)
        for m in standalone.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
        standalone.train()(calibration[0][0])
        expected = standalone.eval()(x)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("name", SUPERNET_SPACES)
def test_reduced_sharing_trains_each_part_only_on_its_own_architectures(name, tmp_path):
    """K=2 supernets in one checkpoint: an architecture runs in the part its partition value falls
    to, a training step changes only that part, and scores come from the owner."""
    space = get_space(name)
    config = training.TrainConfig(
        space=name,
        network={**TINY[name], "partitions": 2},
        batch_size=32,
        steps_per_epoch=1,
        epochs=1,
        seed=1,
        augment=False,
    )
    torch.manual_seed(config.seed)
    fresh = space.make_supernet(**space.supernet_config(config.network), num_classes=10)
    manifest = training.train(config, tmp_path / "k2")
    assert manifest["network"]["partitions"] == 2
    net, _ = load_checkpoint(tmp_path / "k2")
    assert len(net.parts) == 2
    changed = [
        any(not torch.equal(a, b) for a, b in zip(new.parameters(), old.parameters()))
        for new, old in zip(net.parts, fresh.parts)
    ]
    assert sorted(changed) == [False, True]  # one step, one architecture: only its owner moved
    archs = SAMPLERS["uniform"](net.sampling_space(space), random.Random(12), 12)
    owners = {net.part(a) for a in archs}
    assert owners == {0, 1}
    x = torch.randn(2, 3, 32, 32)
    net.eval()
    for arch in archs[:4]:
        with torch.no_grad():
            torch.testing.assert_close(net(x, arch), net.parts[net.part(arch)](x, arch))
        value = space.partition_value(space.supernet_path(arch))
        assert net.part(arch) == space.partition_values().index(value) % 2


@pytest.mark.parametrize("name", SUPERNET_SPACES)
def test_partitions_are_limited_by_the_partition_values(name):
    space = get_space(name)
    assert "partitions" not in space.supernet_config({})  # K=1 manifests are as before reduced sharing
    with pytest.raises(NetworkConfigError) as error:
        space.supernet_config({"partitions": len(space.partition_values()) + 1})
    assert error.value.field == "partitions" and space.partition_rule in error.value.reason


def test_zero_shot_on_the_weights_of_an_nds_supernet(tmp_path):
    """RQ4 on another space: the standalone network holding the supernet's sliced weights is scored,
    and an architecture beyond the supernet gets a null with the reason."""
    from archscore.estimators.protocol import Protocol
    from archscore.estimators.zero_shot.engine import score_architecture

    space, net = tiny_supernet("nds_resnet")
    manifest = {"network": net.config}
    protocol = Protocol(weights="0" * 64, batch_size=8)
    inside, outside = space.parse("d1-2-1_w16-24-32"), space.parse("d1-1-1_w16-16-64")
    scored = score_architecture(
        inside, "nds_resnet", ["synflow", "jacob_cov"], protocol, supernets=lambda sha: (net, manifest)
    )
    by_hand = score_architecture(inside, "nds_resnet", ["synflow"], Protocol(batch_size=8))
    assert scored.scores["synflow"].value is not None and scored.scores["jacob_cov"].value is not None
    assert scored.scores["synflow"].value != by_hand.scores["synflow"].value  # supernet weights, not a random init
    beyond = score_architecture(outside, "nds_resnet", ["synflow"], protocol, supernets=lambda sha: (net, manifest))
    assert beyond.scores["synflow"].value is None and "width 32" in beyond.scores["synflow"].reason
