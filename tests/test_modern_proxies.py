"""The proxies published since 2021 (layers, zico, meco, swap, swap_reg, vkdnw) against independent
re-implementations (tests/helpers/reference_modern_proxies.py) on the same network and batch, and the passes of
their own inputs run once however many proxies read them."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from helpers.proxies import InplaceCNN, proxy_batches, small_net
from helpers.reference_modern_proxies import REFERENCES, _authors_cholesky, ref_vkdnw, ref_vkdnw_single
from torch import nn

from archscore.estimators.datasets import fixed_batches, load_embedded_cifar10
from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces import get_space
from archscore.estimators.zero_shot.engine import altered_inputs, score_architecture, score_module
from archscore.estimators.zero_shot.passes import fisher_information as fisher_pass
from archscore.estimators.zero_shot.passes.fisher_information import _cholesky_factor_product, _smoothing

pytestmark = pytest.mark.usefixtures("one_thread")
SPACE = get_space("nb201")
MODERN = list(REFERENCES)
ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "|avg_pool_3x3~0|+|none~0|nor_conv_1x1~1|+|nor_conv_3x3~0|skip_connect~1|none~2|",
]


@pytest.fixture(scope="module")
def data():
    """24 images (swap reads 16 of them alone, zico two halves of 12), and a Gaussian batch of 8 (vkdnw)."""
    return proxy_batches()


def _networks():
    yield from ((f"nb201-{i}", lambda i=i: small_net(ARCHS[i], 10 + i)) for i in range(len(ARCHS)))
    yield "inplace-cnn", lambda: (torch.manual_seed(4), InplaceCNN())[1]


NETWORKS = dict(_networks())


@pytest.fixture(scope="module")
def results(data):
    """Per network: the library's six in one call, and the references, each on its own copy. vkdnw is
    compared on float64 copies too: its Fisher matrix's eigenvalues span some 20 orders of magnitude, so its
    lower deciles sit below float32 resolution and two float32 computations (a batch, or one sample at a time)
    differ by about 1e-3; in float64 they agree to 1e-12."""
    x, y, noise = data
    out = {}
    for key, make in NETWORKS.items():
        net = make()
        lib = {k: v.value for k, v in score_module(net, x, y, MODERN, noise=noise).items()}
        ref = {name: fn(net, x, y, noise) for name, fn in REFERENCES.items()}
        wide = copy.deepcopy(net).double()
        lib["vkdnw"] = score_module(wide, x.double(), y, ["vkdnw"], noise=noise.double())["vkdnw"].value
        ref["vkdnw"], ref["vkdnw_float32"] = ref_vkdnw(wide, noise.double()), ref["vkdnw"]
        out[key] = (lib, ref, lib_float32(net, x, y, noise))
    return out


def lib_float32(net, x, y, noise):
    return score_module(net, x, y, ["vkdnw"], noise=noise)["vkdnw"].value


@pytest.mark.parametrize("key", list(NETWORKS))
@pytest.mark.parametrize("name", MODERN)
def test_equals_the_reference(results, key, name):
    lib, ref, vkdnw_float32 = results[key]
    want, got = ref[name], lib[name]
    assert want is not None and math.isfinite(want) and want != 0, (name, want)
    if name in ("layers", "swap"):
        assert got == want
    else:
        assert got == pytest.approx(want, rel=1e-4, abs=1e-12), (name, got, want)
    if name == "vkdnw":
        assert vkdnw_float32 == pytest.approx(ref["vkdnw_float32"], rel=1e-2)


def test_vkdnw_single_orders_networks_as_the_authors_pairs(data):
    """VKDNW_single ranks the pairs (parameter tensors, vkdnw): the library's one number has the pair's count
    as its integer part, vkdnw / 3 as the rest, and so sorts the networks as the pairs sort."""
    x, y, noise = data
    nets = {key: make() for key, make in NETWORKS.items()}
    got, pairs = {}, {}
    for key, net in nets.items():
        wide = copy.deepcopy(net).double()
        got[key] = score_module(wide, x.double(), y, ["vkdnw_single"], noise=noise.double())["vkdnw_single"].value
        pairs[key] = ref_vkdnw_single(wide, noise.double())
        count, entropy = pairs[key]
        assert math.floor(got[key]) == count
        assert (got[key] - count) * 3 == pytest.approx(entropy, rel=1e-6)
    assert sorted(nets, key=got.__getitem__) == sorted(nets, key=pairs.__getitem__)
    assert len({count for count, _ in pairs.values()}) > 1, "the networks should differ in their counts"


def test_the_values_tell_networks_apart(results):
    for name in ("zico", "meco", "swap", "swap_reg", "vkdnw"):
        values = [results[k][0][name] for k in NETWORKS]
        assert len(set(values)) == len(values), (name, values)


def test_layers_counts_the_cells_convolutions():
    """C=8, N=1: the stem, 3 per reduction block, the classifier, and one per convolution edge of 3 cells."""
    x, y = fixed_batches(load_embedded_cifar10(), 4, 1, seed=0)[0]
    for i, arch in enumerate(ARCHS):
        convs = arch.count("conv")
        net = small_net(arch, i)
        assert score_module(net, x, y, ["layers"])["layers"].value == 1 + 2 * 3 + 1 + 3 * convs
    net = small_net(ARCHS[0], 0)
    net.classifier.weight.requires_grad_(False)  # frozen: not a trainable layer
    assert score_module(net, x, y, ["layers"])["layers"].value == 8 + 3 * 3 - 1


def _forwards(net, x, y, names, **kw):
    calls: list[int] = []
    handle = net.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        values = score_module(net, x, y, names, **kw)
    finally:
        handle.remove()
    return calls, values


def test_each_own_pass_runs_once(data):
    x, y, _ = data
    net = small_net(ARCHS[0], 1)
    assert _forwards(net, x, y, ["swap", "swap_reg"])[0] == [16]  # the first 16 of 24, once for both
    assert _forwards(net, x, y, ["zico"])[0] == [12, 12]  # two halves
    assert _forwards(net, x, y, ["meco"])[0] == [1]  # one image
    assert _forwards(net, x, y, ["layers", "relu", "grad_norm"])[0] == [24]
    calls, _ = _forwards(net, x, y, ["zico", "meco", "swap", "layers", "grad_norm", "jacob_cov"])
    assert sorted(calls) == [1, 12, 12, 16, 24]


def test_undefined_cases_give_a_reason(data):
    x, y, noise = data
    net = small_net(ARCHS[0], 2)
    one = score_module(net, x[:1], y[:1], ["zico"])["zico"]
    assert one.value is None and "2 images" in one.reason
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3072, 32), nn.ReLU(), nn.Linear(32, 10))
    got = score_module(mlp, x, y, MODERN, noise=noise)
    assert got["swap"].value is None and "4-D" in got["swap"].reason
    assert got["swap_reg"].value is None
    assert got["meco"].value == 0.0  # no module output has channels: every term is absent
    assert got["layers"].value == 2.0
    assert got["zico"].value is not None and got["vkdnw"].value is not None


def test_vkdnw_reads_the_gaussian_batch_not_the_images(data):
    x, y, noise = data
    net = small_net(ARCHS[1], 5)
    a = score_module(net, x[:8], y[:8], ["vkdnw"], noise=noise)["vkdnw"].value
    b = score_module(net, x[8:16], y[8:16], ["vkdnw"], noise=noise)["vkdnw"].value
    assert a == b
    assert score_module(net, x[:8], y[:8], ["vkdnw"], noise=noise * 2)["vkdnw"].value != a
    # without a Gaussian batch, one of the images' shape from a fixed seed
    assert (
        score_module(net, x[:8], y[:8], ["vkdnw"])["vkdnw"].value
        == score_module(net, x[8:16], y[8:16], ["vkdnw"])["vkdnw"].value
    )


def test_protocol_gaussian_batches_are_those_of_inputs_noise():
    """score_architecture gives vkdnw the batches `inputs: noise` would give: the same value either way,
    another with another data_seed; the batches themselves equal altered_inputs(..., 'noise', data_seed)."""
    arch = ARCHS[0]
    images = Protocol(batch_size=4, num_batches=2, seed=1)
    noise = images.model_copy(update={"inputs": "noise"})
    a = score_architecture(arch, estimators=["vkdnw"], protocol=images)
    b = score_architecture(arch, estimators=["vkdnw"], protocol=noise)
    assert a.per_batch["vkdnw"] == b.per_batch["vkdnw"] and a.per_batch["vkdnw"][0] != a.per_batch["vkdnw"][1]
    other = score_architecture(arch, estimators=["vkdnw"], protocol=images.model_copy(update={"data_seed": 3}))
    assert other.scores["vkdnw"].value != a.scores["vkdnw"].value
    batches = fixed_batches(load_embedded_cifar10(), 4, 2, images.data_seed)
    gaussian = altered_inputs(batches, "noise", images.data_seed)
    torch.manual_seed(images.seed)
    net = SPACE.build_network(SPACE.parse(arch))
    direct = score_module(net, batches[1][0], batches[1][1], ["vkdnw"], noise=gaussian[1][0], seed=images.seed)
    direct = direct["vkdnw"].value
    assert direct == pytest.approx(a.per_batch["vkdnw"][1], rel=1e-9)


def test_the_authors_cholesky_factor():
    """LLᵀ is the covariance diag(p) - ppᵀ of the smoothed probabilities (to the authors' back-test
    tolerance: float16 smoothing makes them sum to 0.9999...); the matrix VKDNW averages is LᵀL, as the authors'
    code multiplies the Jacobian by L on the left."""
    scale, shift = _smoothing(10)
    assert (scale, shift) == (0.9501953125, 0.00499725341796875)  # float16 results: probabilities sum to 1.00017
    assert (scale, shift) == (float(np.float16(1) - np.float16(0.05)), float(np.float16(0.05) / np.float16(10)))
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 10))
    probs = np.exp(z) / np.exp(z).sum(1, keepdims=True) * scale + shift
    product = _cholesky_factor_product(torch.from_numpy(probs)).numpy()
    for p, m in zip(probs, product):
        lower = _authors_cholesky(p)
        assert np.abs(lower @ lower.T - (np.diag(p) - np.outer(p, p))).max() < 1e-3
        np.testing.assert_allclose(m, lower.T @ lower, rtol=1e-12, atol=1e-15)


class Scale(nn.Module):
    """A parameter outside Conv2d/Linear/BatchNorm: VKDNW's Jacobian then goes the authors' torch.func way."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.full((3,), 1.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain[None, :, None, None]


def test_vkdnw_both_jacobian_paths_equal_the_reference(data):
    _, _, noise = data
    torch.manual_seed(6)
    custom = nn.Sequential(Scale(), InplaceCNN())
    assert fisher_pass._first_weight_owners(custom, list(custom.named_parameters())) is None
    custom, wide = custom.double(), noise.double()
    got = score_module(custom, wide, None, ["vkdnw"], noise=wide)["vkdnw"].value
    assert got == pytest.approx(ref_vkdnw(custom, wide), rel=1e-4)
    net = small_net(ARCHS[0], 7).eval()
    named = list(net.named_parameters())
    owners = fisher_pass._first_weight_owners(net, named[:128])
    assert owners is not None
    _, by_hooks = fisher_pass._jacobians_by_hooks(net, noise, owners)
    buffers = dict(net.named_buffers())
    _, functional = fisher_pass._jacobians_functional(net, noise, buffers, named[:128], named)
    torch.testing.assert_close(by_hooks, functional, rtol=1e-4, atol=1e-7)


def test_vkdnw_scores_a_copy_reinitialised_from_the_seed(data):
    """As its authors, vkdnw re-initialises (a copy of) the network: its own weights do not matter, the seed
    does; score_architecture passes the protocol's seed."""
    x, y, noise = data
    a, b = small_net(ARCHS[2], 1), small_net(ARCHS[2], 2)
    value = score_module(a, x, y, ["vkdnw"], noise=noise, seed=5)["vkdnw"].value
    assert score_module(b, x, y, ["vkdnw"], noise=noise, seed=5)["vkdnw"].value == value
    assert score_module(a, x, y, ["vkdnw"], noise=noise, seed=6)["vkdnw"].value != value
    assert value == pytest.approx(ref_vkdnw(a, noise, seed=5), rel=1e-2)  # float32 (test_equals_the_reference)
    protocol = Protocol(batch_size=4, num_batches=1, seed=1)
    first = score_architecture(ARCHS[2], estimators=["vkdnw"], protocol=protocol).scores["vkdnw"].value
    other = score_architecture(ARCHS[2], estimators=["vkdnw"], protocol=protocol.model_copy(update={"seed": 2}))
    assert other.scores["vkdnw"].value != first
