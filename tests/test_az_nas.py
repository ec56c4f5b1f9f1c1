"""AZ-NAS's expressivity, progressivity and trainability against an independent re-implementation
(tests/helpers/reference_az_nas.py) on the same network and Gaussian batch, in every space; the cases without a value;
and their one shared pass."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.reference_az_nas import AZ_BATCH, ref_az_nas
from torch import nn

from archscore.estimators.spaces import get_space
from archscore.estimators.zero_shot.engine import score_module
from archscore.estimators.zero_shot.passes import OWN_PASSES, OwnPass
from archscore.estimators.zero_shot.passes.cell_features import tagged_cell_outputs

AZ = ["az_expressivity", "az_progressivity", "az_trainability"]
pytestmark = pytest.mark.usefixtures("one_thread")
NB201 = get_space("nb201")
ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "|avg_pool_3x3~0|+|none~0|nor_conv_1x1~1|+|nor_conv_3x3~0|skip_connect~1|none~2|",
]
IDENTITY_CELL = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"  # output = input
ZERO_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|none~2|"  # output = 0


def nb201_net(arch: str, seed: int, N: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    return NB201.build_network(NB201.parse(arch), C=8, N=N)


def space_net(space: str, seed: int, **config) -> nn.Module:
    sp = get_space(space)
    torch.manual_seed(seed)
    return sp.build_network(sp.sample(1, seed)[0], **config)


@pytest.fixture(scope="module")
def noise():
    return torch.randn((16, 3, 32, 32), generator=torch.Generator().manual_seed(3))


NETWORKS = {
    **{f"nb201-{i}": (lambda i=i: nb201_net(ARCHS[i], 10 + i)) for i in range(len(ARCHS))},
    "nb201-N2": lambda: nb201_net(ARCHS[0], 7, N=2),
    "nb101": lambda: space_net("nb101", 1, stem_channels=16),
    "nb301": lambda: space_net("nb301", 2, C=8, layers=5),
    "nds_resnet": lambda: space_net("nds_resnet", 3),
    "nds_resnexta": lambda: space_net("nds_resnexta", 4),
}


@pytest.mark.parametrize("key", list(NETWORKS))
def test_equals_the_reference(key, noise):
    net = NETWORKS[key]()
    x, y = torch.zeros_like(noise), torch.zeros(noise.shape[0], dtype=torch.long)  # the pass reads the noise only
    got = {k: v.value for k, v in score_module(net, x, y, AZ, noise=noise, seed=5).items()}
    want = ref_az_nas(net, noise, seed=5)
    for name in AZ:
        assert want[name] is not None and math.isfinite(want[name]), (name, want)
        assert got[name] == pytest.approx(want[name], rel=1e-4, abs=1e-9), (key, name, got[name], want[name])


def test_float64_entropies_equal_the_authors_float32_on_full_rank_features(noise):
    """On NB201 (the stem's 8 channels from 27 input taps: full-rank covariances) the authors' float32
    computation gives the same scores up to float32 round-off."""
    net = nb201_net(ARCHS[0], 10)
    ours, authors = ref_az_nas(net, noise), ref_az_nas(net, noise, float64=False)
    assert ours["az_expressivity"] == pytest.approx(authors["az_expressivity"], rel=1e-5)
    assert ours["az_progressivity"] == pytest.approx(authors["az_progressivity"], rel=1e-3)
    assert ours["az_trainability"] == authors["az_trainability"]


def test_the_first_64_gaussian_images_and_the_seed():
    big = torch.randn((AZ_BATCH + 8, 3, 32, 32), generator=torch.Generator().manual_seed(1))
    net = nb201_net(ARCHS[1], 3)
    x, y = big[:4], torch.zeros(4, dtype=torch.long)
    full = {k: v.value for k, v in score_module(net, x, y, AZ, noise=big).items()}
    first = {k: v.value for k, v in score_module(net, x, y, AZ, noise=big[:AZ_BATCH]).items()}
    assert full == first
    assert full["az_expressivity"] == pytest.approx(ref_az_nas(net, big)["az_expressivity"], rel=1e-4)
    other = {k: v.value for k, v in score_module(net, x, y, AZ, noise=big, seed=1).items()}
    assert all(other[k] != full[k] for k in AZ)  # another initialisation and other cotangents


def test_the_network_is_left_as_it_was(noise):
    net = nb201_net(ARCHS[0], 1)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    score_module(net, noise[:4], torch.zeros(4, dtype=torch.long), AZ, noise=noise)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())


def test_the_pass_runs_once_for_the_three(noise, monkeypatch):
    calls: list[int] = []
    original = OWN_PASSES["cell_features"]

    def counted(inp):
        calls.append(inp.noise.shape[0])
        return original.compute(inp)

    monkeypatch.setitem(OWN_PASSES, "cell_features", OwnPass(**{**original.__dict__, "compute": counted}))
    net = nb201_net(ARCHS[0], 2)
    values = score_module(net, noise[:4], torch.zeros(4, dtype=torch.long), AZ, noise=noise)
    assert calls == [16] and all(v.value is not None for v in values.values())


def test_undefined_cases_give_a_reason(noise):
    x, y = noise[:4], torch.zeros(4, dtype=torch.long)
    user = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8192, 10))
    for value in score_module(user, x, y, AZ, noise=noise).values():
        assert value.value is None and "declares no cell outputs" in value.reason

    identity = score_module(nb201_net(IDENTITY_CELL, 0), x, y, AZ, noise=noise)
    assert identity["az_trainability"].value is None and "identity cell" in identity["az_trainability"].reason
    assert identity["az_expressivity"].value is not None  # its features are the stem's, passed on
    assert ref_az_nas(nb201_net(IDENTITY_CELL, 0), noise)["az_trainability"] == -math.inf

    zero = score_module(nb201_net(ZERO_CELL, 0), x, y, AZ, noise=noise)
    for name in ("az_expressivity", "az_progressivity"):
        assert zero[name].value is None and "no variance" in zero[name].reason
    assert ref_az_nas(nb201_net(ZERO_CELL, 0), noise)["az_expressivity"] == -math.inf


def test_spaces_tag_their_cell_outputs_on_copies_too():
    import copy

    net = nb201_net(ARCHS[0], 0, N=2)
    declared = NB201.cell_outputs(net)
    assert tagged_cell_outputs(net) == declared and len(declared) == 1 + 3 * 2 + 2
    twin = copy.deepcopy(net)
    assert [type(m) for m in tagged_cell_outputs(twin)] == [type(m) for m in declared]
