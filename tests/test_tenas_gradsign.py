"""TE-NAS's ntk_cond and linear_regions and GradSign's gradsign against independent re-implementations
(tests/helpers/reference_tenas_gradsign.py) on the same network and batch, their undefined cases, and their passes
run once however many proxies read them."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from helpers.proxies import InplaceCNN, proxy_batches, small_net
from helpers.reference_tenas_gradsign import REFERENCES, ref_gradsign, ref_linear_regions, ref_ntk_cond
from torch import nn

from archscore.estimators.datasets import fixed_batches, load_embedded_cifar10
from archscore.estimators.zero_shot.engine import score_module
from archscore.estimators.zero_shot.passes import OWN_PASSES
from archscore.estimators.zero_shot.passes.gradient_signs import signs_by_loop, signs_by_vmap
from archscore.estimators.zero_shot.shared_pass import scored_layers

pytestmark = pytest.mark.usefixtures("one_thread")
NAMES = list(REFERENCES)
PASSES = ("tangent_kernel", "activation_regions", "gradient_signs")
ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "|avg_pool_3x3~0|+|none~0|nor_conv_1x1~1|+|nor_conv_3x3~0|skip_connect~1|none~2|",
]
NO_PATH = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


class FewRegions(nn.Module):
    """Five ReLU neurons on a 1x1 image (one ReLU module run twice): few patterns over many samples."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 3, 1), nn.Conv2d(3, 2, 1)
        self.bn, self.relu, self.head = nn.BatchNorm2d(2), nn.ReLU(), nn.Linear(2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn(self.b(self.relu(self.a(x)))))
        return self.head(x.mean((2, 3)))


class ItemGate(nn.Module):
    """Data-dependent control flow (.item()): torch.func cannot vmap it, so gradsign takes the loop."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.abs().sum().item() > 0 else x * 0


@pytest.fixture(scope="module")
def data():
    """24 images with labels, and a Gaussian batch of 8 (linear_regions)."""
    return proxy_batches()


NETWORKS = {
    **{f"nb201-{i}": (lambda i=i: small_net(ARCHS[i], 10 + i)) for i in range(len(ARCHS))},
    "inplace-cnn": lambda: (torch.manual_seed(4), InplaceCNN())[1],
}


@pytest.fixture(scope="module")
def results(data):
    """Per network: the library's three in one call, and the references, each on its own copy."""
    x, y, noise = data
    out = {}
    for key, make in NETWORKS.items():
        net = make()
        lib = {k: v.value for k, v in score_module(net, x, y, NAMES, noise=noise).items()}
        out[key] = (lib, {name: fn(net, x, y, noise) for name, fn in REFERENCES.items()})
    return out


@pytest.mark.parametrize("key", list(NETWORKS))
@pytest.mark.parametrize("name", NAMES)
def test_equals_the_reference(results, key, name):
    lib, ref = results[key]
    want, got = ref[name], lib[name]
    assert want is not None and math.isfinite(want) and want != 0, (name, want)
    assert got == pytest.approx(want, rel=1e-4), (name, got, want)


def test_the_values_tell_networks_apart(results):
    for name in ("ntk_cond", "gradsign"):
        values = [results[k][0][name] for k in NETWORKS]
        assert len(set(values)) == len(values), (name, values)
    # full-width networks on 32x32 images: every Gaussian sample has its own pattern
    assert {results[k][0]["linear_regions"] for k in NETWORKS} == {8.0}


def test_linear_regions_counts_samples_sharing_a_pattern():
    noise = torch.randn((300, 3, 1, 1), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    net = FewRegions()
    got = score_module(net, noise[:2], None, ["linear_regions"], noise=noise)["linear_regions"].value
    assert got is not None and 1 < got < 300
    assert got == pytest.approx(ref_linear_regions(net, noise), rel=1e-9)


def test_linear_regions_reads_the_gaussian_batch_not_the_images(data):
    x, y, noise = data
    net = small_net(ARCHS[0], 5)
    a = score_module(net, x[:8], y[:8], ["linear_regions"], noise=noise)["linear_regions"].value
    assert a == 8.0
    assert score_module(net, x[8:12], y[8:12], ["linear_regions"], noise=noise)["linear_regions"].value == a
    same = torch.zeros_like(noise)  # eight equal samples: one pattern
    assert score_module(net, x[:8], y[:8], ["linear_regions"], noise=same)["linear_regions"].value == 1.0


def test_ntk_cond_reads_the_first_64_images():
    x, y = fixed_batches(load_embedded_cifar10(), 70, 1, seed=1)[0]
    torch.manual_seed(2)
    net = InplaceCNN()
    calls: list[int] = []
    handle = net.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        whole = score_module(net, x, y, ["ntk_cond"])["ntk_cond"].value
    finally:
        handle.remove()
    assert calls == [64]
    assert whole == score_module(net, x[:64], y[:64], ["ntk_cond"])["ntk_cond"].value
    assert whole == pytest.approx(ref_ntk_cond(net, x), rel=1e-4)


def test_each_pass_runs_once(data, monkeypatch):
    x, y, noise = data
    calls: dict[str, int] = {}
    for name in PASSES:
        original = OWN_PASSES[name]

        def counted(inp, original=original):
            calls[original.name] = calls.get(original.name, 0) + 1
            return original.compute(inp)

        monkeypatch.setitem(OWN_PASSES, name, dataclasses.replace(original, compute=counted))
    net = small_net(ARCHS[1], 1)
    values = score_module(net, x, y, [*NAMES, "grad_norm", "swap", "zico"], noise=noise)
    assert calls == dict.fromkeys(PASSES, 1)
    assert all(v.value is not None for v in values.values())
    calls.clear()
    score_module(net, x, y, ["grad_norm", "swap"])
    assert calls == {}


def test_undefined_cases_give_a_reason(data):
    x, y, noise = data
    net = small_net(ARCHS[0], 2)
    one = score_module(net, x[:1], y[:1], NAMES, noise=noise)
    assert one["ntk_cond"].value is None and "at least 2 images" in one["ntk_cond"].reason
    assert one["gradsign"].value is None and "at least 2 images" in one["gradsign"].reason
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3072, 32), nn.ReLU(), nn.Linear(32, 10))
    got = score_module(mlp, x, y, NAMES, noise=noise)
    assert got["linear_regions"].value is None and "4-D" in got["linear_regions"].reason
    assert got["ntk_cond"].value is not None and got["gradsign"].value is not None
    bn1d = nn.Sequential(nn.Flatten(), nn.Linear(3072, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))
    got = score_module(bn1d, x, y, NAMES, noise=noise)
    assert got["gradsign"].value is None and "one value per channel" in got["gradsign"].reason
    assert got["ntk_cond"].value is not None  # the batch's one forward: BatchNorm sees every image
    # no path from the cell's input to its output: the logits do not depend on the image
    got = score_module(small_net(NO_PATH, 3), x, y, NAMES, noise=noise)
    assert got["ntk_cond"].value is None and "tangent kernel is 0" in got["ntk_cond"].reason
    assert got["gradsign"].value == 0.0 and got["linear_regions"].value == 1.0
    # two equal images (eval mode: their gradients are equal): a singular kernel
    twice = torch.cat([x[:7], x[:1]])
    got = score_module(net, twice, y[:8], ["ntk_cond"], bn_mode="eval")["ntk_cond"]
    assert got.value is None and "singular" in got.reason


def test_gradsign_both_paths_equal_the_reference(data):
    x, y, _ = data
    for net in (small_net(ARCHS[2], 6).train(), (torch.manual_seed(7), InplaceCNN())[1].train()):
        weights = [m.weight for m in scored_layers(net)]
        want = ref_gradsign(net, x, y)
        for path in (signs_by_vmap, signs_by_loop):
            got = math.fsum(s.abs().sum().item() for s in path(net, x, y, weights))
            assert got == pytest.approx(want, rel=1e-4), path.__name__
    torch.manual_seed(8)
    gated = nn.Sequential(ItemGate(), InplaceCNN())
    with pytest.raises(RuntimeError):
        signs_by_vmap(gated, x, y, [m.weight for m in scored_layers(gated)])
    got = score_module(gated, x, y, ["gradsign"])["gradsign"].value
    assert got == pytest.approx(ref_gradsign(gated, x, y), rel=1e-4)
