"""zen (Zen-NAS) and epe_nas (EPE-NAS) against independent re-implementations (tests/helpers/reference_zen_epe.py) on
the same network and batch; where zen finds the feature map before global pooling on every space's networks
and on networks outside them; their undefined cases; zen's own pass run once, epe_nas adding no pass."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers.proxies import proxy_batches, small_net
from helpers.reference_zen_epe import eval_score_perclass, pre_gap_by_hook, ref_epe_nas, ref_zen
from torch import nn

from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces import get_space
from archscore.estimators.zero_shot.engine import score_architecture, score_module
from archscore.estimators.zero_shot.measures.epe_nas import epe_of

pytestmark = pytest.mark.usefixtures("one_thread")
NB201 = get_space("nb201")
ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "|avg_pool_3x3~0|+|none~0|nor_conv_1x1~1|+|nor_conv_3x3~0|skip_connect~1|none~2|",
]
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
BOTH = ["zen", "epe_nas"]


def nb201_pre_gap(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The authors' TinyNetwork.forward_pre_GAP: stem, cells, lastact."""
    return net.lastact(net.cells(net.stem(x)))


class UserCNN(nn.Module):
    """A network outside any space: in-place ReLU after BN, max pool, a conv with bias, BatchNorm without
    affine parameters, a global pooling of the kind ``gap`` names, a linear head."""

    def __init__(self, gap: str = "module") -> None:
        super().__init__()
        self.gap = gap
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(16, affine=False),
            nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.head = nn.Linear(16, 10)

    def forward_pre_GAP(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        if self.gap == "module":
            pooled = self.pool(f).flatten(1)
        elif self.gap == "mean":
            pooled = f.mean((-2, -1))
        elif self.gap == "functional":
            pooled = F.avg_pool2d(f, f.shape[2:]).flatten(1)
        else:  # no global pooling: flatten
            pooled = F.adaptive_max_pool2d(f, 1).flatten(1)
        return self.head(pooled)


@pytest.fixture(scope="module")
def data():
    """24 images of 10 classes (some labels held by one image only) and a Gaussian batch of 8."""
    return proxy_batches()


def _networks():
    for i, arch in enumerate(ARCHS):
        yield f"nb201-{i}", (lambda i=i, arch=arch: small_net(arch, 10 + i)), nb201_pre_gap
    for gap in ("module", "mean", "functional"):
        yield f"user-{gap}", (lambda gap=gap: (torch.manual_seed(4), UserCNN(gap))[1]), UserCNN.forward_pre_GAP


NETWORKS = {key: (make, pre_gap) for key, make, pre_gap in _networks()}


@pytest.fixture(scope="module")
def results(data):
    x, y, noise = data
    out = {}
    for key, (make, pre_gap) in NETWORKS.items():
        net = make()
        lib = {k: v.value for k, v in score_module(net, x, y, BOTH, noise=noise, seed=2).items()}
        ref = {"zen": ref_zen(net, noise, seed=2, pre_gap=pre_gap), "epe_nas": ref_epe_nas(net, x, y)}
        out[key] = lib, ref
    return out


@pytest.mark.parametrize("key", list(NETWORKS))
@pytest.mark.parametrize("name", BOTH)
def test_equals_the_reference(results, key, name):
    lib, ref = results[key]
    assert ref[name] is not None and math.isfinite(ref[name]) and ref[name] != 0, (name, ref[name])
    assert lib[name] == pytest.approx(ref[name], rel=1e-4), (name, lib[name], ref[name])


def test_the_values_tell_networks_apart(results):
    for name in BOTH:
        values = [results[k][0][name] for k in NETWORKS if k.startswith("nb201")]
        assert len(set(values)) == len(values), (name, values)


def test_the_batch_has_labels_held_by_one_image(data):
    """The authors' quirk is exercised: a label with one image adds log(1 + 1e-5)."""
    _, y, _ = data
    counts = np.bincount(y.numpy(), minlength=10)
    assert (counts == 1).any() and (counts > 2).any()


@pytest.mark.parametrize("space_name", ["nb101", "nb301", "nds_resnet", "nds_resnexta"])
def test_zen_on_every_space_reads_the_input_of_its_global_pooling(data, space_name):
    """On every space's networks the feature map before global pooling is the input of the module they pool
    with (the reference hooks it); epe_nas equals its reference there too."""
    x, y, noise = data
    space = get_space(space_name)
    config = {"nb101": {"stem_channels": 8, "num_stacks": 2, "cells_per_stack": 1}, "nb301": {"C": 4, "layers": 3}}
    (arch,) = space.sample(1, seed=3)
    torch.manual_seed(0)
    net = space.build_network(arch, **config.get(space_name, {}))
    got = score_module(net, x[:8], y[:8], BOTH, noise=noise, seed=1)
    assert got["zen"].value == pytest.approx(ref_zen(net, noise, seed=1, pre_gap=pre_gap_by_hook), rel=1e-4)
    assert got["epe_nas"].value == pytest.approx(ref_epe_nas(net, x[:8], y[:8]), rel=1e-4)


def test_epe_of_equals_the_authors_function_on_synthetic_jacobians():
    rng = np.random.default_rng(0)
    jac = rng.normal(size=(30, 50))
    labels = rng.integers(0, 7, size=30)
    labels[5] = 9  # a label of one image
    want = eval_score_perclass(jac, [labels])
    assert epe_of(torch.from_numpy(jac), torch.from_numpy(labels)) == pytest.approx(want, rel=1e-12)


def test_undefined_cases_give_a_reason(data):
    x, y, noise = data
    torch.manual_seed(1)
    flat = score_module(UserCNN("none"), x, y, BOTH, noise=noise)
    assert flat["zen"].value is None and "global average pooling" in flat["zen"].reason
    assert flat["epe_nas"].value is not None
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3072, 32), nn.ReLU(), nn.Linear(32, 10))
    assert "global average pooling" in score_module(mlp, x, y, ["zen"], noise=noise)["zen"].reason
    empty = score_module(small_net(ALL_NONE, 0), x, y, BOTH, noise=noise)  # the output ignores the image
    assert empty["zen"].value is None and "does not change" in empty["zen"].reason
    assert empty["epe_nas"].value is None and "constant input Jacobian" in empty["epe_nas"].reason
    untracked = UserCNN()
    untracked.features[1] = nn.BatchNorm2d(8, track_running_stats=False)
    got = score_module(untracked, x, y, ["zen"], noise=noise)["zen"]
    assert got.value is None and "running variance" in got.reason
    no_labels = score_module(small_net(ARCHS[0], 0), x, None, ["epe_nas"])["epe_nas"]
    assert no_labels.value is None and "labels" in no_labels.reason


def test_zen_reads_the_gaussian_batch_and_the_seed_not_the_images_or_weights(data):
    x, y, noise = data
    a, b = small_net(ARCHS[1], 5), small_net(ARCHS[1], 6)
    value = score_module(a, x[:8], y[:8], ["zen"], noise=noise)["zen"].value
    assert score_module(a, x[8:16], y[8:16], ["zen"], noise=noise)["zen"].value == value
    assert score_module(b, x[8:16], y[8:16], ["zen"], noise=noise)["zen"].value == value  # re-initialised
    assert score_module(a, x[:8], y[:8], ["zen"], noise=noise * 2)["zen"].value != value
    assert score_module(a, x[:8], y[:8], ["zen"], noise=noise, seed=1)["zen"].value != value
    assert (
        score_module(a, x[:8], y[:8], ["zen"])["zen"].value == score_module(b, x[8:16], y[8:16], ["zen"])["zen"].value
    )
    state = {k: v.clone() for k, v in a.state_dict().items()}
    score_module(a, x, y, BOTH, noise=noise)
    assert all(torch.equal(state[k], v) for k, v in a.state_dict().items())  # the network is left as it was


def test_protocol_gaussian_batches_are_those_of_inputs_noise():
    """score_architecture gives zen the batches `inputs: noise` gives, and the protocol's seed."""
    arch = ARCHS[0]
    images = Protocol(batch_size=4, num_batches=2, seed=1)
    a = score_architecture(arch, estimators=["zen"], protocol=images)
    b = score_architecture(arch, estimators=["zen"], protocol=images.model_copy(update={"inputs": "noise"}))
    assert a.per_batch["zen"] == b.per_batch["zen"] and a.per_batch["zen"][0] != a.per_batch["zen"][1]
    other = score_architecture(arch, estimators=["zen"], protocol=images.model_copy(update={"seed": 2}))
    assert other.scores["zen"].value != a.scores["zen"].value


def _passes(net, x, y, names, monkeypatch, **kw):
    """The forward passes (their batch sizes) and autograd.grad calls of one score_module call."""
    calls: list[int] = []
    grads: list[int] = []
    real_grad = torch.autograd.grad

    def counted(*args, **kwargs):
        grads.append(1)
        return real_grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counted)
    handle = net.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))  # copies keep it
    try:
        score_module(net, x, y, names, **kw)
    finally:
        handle.remove()
        monkeypatch.undo()
    return sorted(calls), len(grads)


def test_zen_pass_runs_once_and_epe_nas_adds_no_pass(data, monkeypatch):
    x, y, noise = data
    net = small_net(ARCHS[0], 1)
    assert _passes(net, x, y, ["zen"], monkeypatch, noise=noise) == ([8, 8], 0)  # x and x + γε, no gradient
    jacob_cov = _passes(net, x, y, ["jacob_cov"], monkeypatch)
    assert jacob_cov == ([24], 1)
    assert _passes(net, x, y, ["epe_nas"], monkeypatch) == jacob_cov
    assert _passes(net, x, y, ["jacob_cov", "epe_nas"], monkeypatch) == jacob_cov
    assert _passes(net, x, y, ["zen", "epe_nas", "jacob_cov"], monkeypatch, noise=noise) == ([8, 8, 24], 1)
