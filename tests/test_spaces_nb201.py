"""NAS-Bench-201 space: encodings, errors, canonical keys, sampling, network and cost.

Oracles: docs/concepts/spaces.md (edge/op orders, canonical rule, 6,466 classes), the embedded published tables
(ground-truth index order, NAS-Bench-Suite-Zero params/flops) and facts derived by hand below.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import random
from importlib import resources

import pytest
import torch
from helpers.data import published_by_arch
from torch import nn

from archscore.estimators.spaces import EncodingError, get_space, parse_many
from archscore.estimators.spaces.nb201 import (
    arch_to_naslib,
    has_conv_path,
    live_edges,
    naslib_to_arch,
    network_cost,
)
from archscore.estimators.spaces.nb201.network import AvgPool3x3, InferCell
from archscore.estimators.zero_shot.flops import count_flops

SP = get_space("nb201")
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NONE6 = ("none",) * 6
SKIP, NONE, C1, C3, AVG = "skip_connect", "none", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"
# string edge order: 0->1 | 0->2, 1->2 | 0->3, 1->3, 2->3
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


def _s(o):
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


@pytest.fixture(scope="module")
def all_archs():
    archs = list(SP.enumerate())
    assert len(archs) == SP.size == 15_625
    return archs


@pytest.fixture(scope="module")
def gt_strings():
    raw = (resources.files("archscore.estimators.data") / "nb201_ground_truth.csv.gz").read_bytes()
    rows = list(csv.DictReader(gzip.decompress(raw).decode().splitlines()))
    assert [int(r["index"]) for r in rows] == list(range(15_625))
    return [r["arch"] for r in rows]


@pytest.fixture(scope="module")
def published():
    return published_by_arch("nb201")


# --------------------------------------------------------------------------- encodings


def test_enumerate_is_the_whole_space(all_archs):
    assert set(all_archs) == set(itertools.product(OPS, repeat=6))


def test_string_edge_order_by_hand():
    text = "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    assert SP.parse(text) == (NONE, SKIP, C1, C3, AVG, NONE)
    assert SP.to_string((NONE, SKIP, C1, C3, AVG, NONE)) == text


def test_string_round_trip_all(all_archs):
    for a in all_archs:
        s = SP.to_string(a)
        assert s == _s(a)
        assert SP.parse(s) == a


@pytest.mark.parametrize(
    "naslib, expected",
    [
        # NASLib edges (1,2),(1,3),(1,4),(2,3),(2,4),(3,4) = 0->1, 0->2, 0->3, 1->2, 1->3, 2->3
        # ops 0=skip 1=none 2=conv3x3 3=conv1x1 4=avgpool
        ((0, 1, 2, 3, 4, 0), "|skip_connect~0|+|none~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|skip_connect~2|"),
        (
            [4, 3, 3, 0, 0, 0],
            "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
        ),
        (
            (2, 2, 0, 4, 2, 0),
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
        ),
        ((1, 1, 1, 1, 1, 1), _s(NONE6)),
        ((0, 0, 0, 0, 0, 0), _s((SKIP,) * 6)),
        ((3, 1, 1, 1, 1, 1), _s((C1, NONE, NONE, NONE, NONE, NONE))),
        ((1, 1, 1, 1, 1, 2), _s((NONE, NONE, NONE, NONE, NONE, C3))),
        ((1, 1, 4, 1, 1, 1), _s((NONE, NONE, NONE, AVG, NONE, NONE))),
    ],
)
def test_naslib_by_hand(naslib, expected):
    arch = SP.parse(expected)
    assert SP.parse(naslib) == arch
    assert naslib_to_arch(naslib) == arch
    assert arch_to_naslib(arch) == tuple(naslib)


def test_naslib_round_trip_all_and_bijective(all_archs):
    seen = set()
    for a in all_archs:
        t = arch_to_naslib(a)
        assert naslib_to_arch(list(t)) == a
        seen.add(t)
    assert seen == set(itertools.product(range(5), repeat=6))


def test_conversions_do_not_mutate_input():
    lst = [0, 1, 2, 3, 4, 0]
    SP.parse(lst)
    naslib_to_arch(lst)
    assert lst == [0, 1, 2, 3, 4, 0]
    names = [SKIP, NONE, C1, C3, AVG, NONE]
    assert SP.parse(names) == tuple(names)
    assert names == [SKIP, NONE, C1, C3, AVG, NONE]


def test_op_name_list():
    assert SP.parse((C3, NONE, SKIP, AVG, C1, C3)) == (C3, NONE, SKIP, AVG, C1, C3)
    assert SP.parse([C3, NONE, SKIP, AVG, C1, C3]) == SP.parse(_s((C3, NONE, SKIP, AVG, C1, C3)))


def test_index_encoding(gt_strings, all_archs):
    # first rows of the ground-truth CSV (NAS-Bench-201's own index order)
    assert SP.parse(0) == (AVG, C1, SKIP, C1, SKIP, SKIP)
    assert SP.parse(1) == (C3, C3, AVG, SKIP, C3, SKIP)
    archs = [SP.parse(i) for i in range(15_625)]
    assert archs[:50] == [SP.parse(s) for s in gt_strings[:50]]
    assert set(archs) == set(all_archs)  # a bijection


# --------------------------------------------------------------------------- errors


def _err(enc) -> str:
    with pytest.raises(EncodingError) as exc:
        SP.parse(enc)
    return str(exc.value)


def test_unknown_op_names_edge_and_lists_allowed():
    msg = _err("|nor_conv_3x3~0|+|none~0|conv5x5~1|+|none~0|none~1|none~2|")
    assert "edge 1->2" in msg and "conv5x5" in msg
    assert all(op in msg for op in OPS)
    msg = _err([C3, NONE, NONE, NONE, "sep_conv", NONE])
    assert "edge 1->3" in msg and all(op in msg for op in OPS)


@pytest.mark.parametrize(
    "text",
    ["|none~0|+|none~0|none~1|", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|", "", "none"],
)
def test_wrong_group_count(text):
    assert "group" in _err(text)


def test_wrong_source():
    msg = _err("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|")
    assert "edge 1->2" in msg and "~1" in msg
    assert "edge 0->1" in _err("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert "edge 2->3" in _err("|none~0|+|none~0|none~1|+|none~0|none~1|none|")
    assert "node 2" in _err("|none~0|+|none~0|+|none~0|none~1|none~2|")  # missing edge


@pytest.mark.parametrize(
    "enc, needle",
    [
        ([0, 1, 2, 3, 5, 0], "edge 1->3"),  # NASLib entry 4 = edge (2,4) = 1->3
        ([-1, 1, 2, 3, 4, 0], "edge 0->1"),
        ([0, 1, "2", 3, 4, 0], "edge 0->3"),  # NASLib entry 2 = edge (1,4) = 0->3
        ([0, True, 2, 3, 4, 0], "edge 0->2"),
        ([0, 1, 2.0, 3, 4, 0], "edge 0->3"),
        ([0, 1, 2, 3, 4], "6 entries"),
        ((0, 1, 2, 3, 4, 0, 1), "6 entries"),
        ([], "6 entries"),
        ([C3] * 5, "6 entries"),
    ],
)
def test_naslib_and_list_errors(enc, needle):
    assert needle in _err(enc)


@pytest.mark.parametrize("index", [15_625, -1, 10**9])
def test_index_out_of_range(index):
    assert "out of range" in _err(index)


@pytest.mark.parametrize("enc", [{"arch": 1}, 1.0, None, True, b"|none~0|"])
def test_unsupported_type(enc):
    _err(enc)


def test_parse_many_keeps_valid_and_reports_by_index():
    encs = [_s(NONE6), "junk", [0, 1, 2, 3, 4, 0], [9] * 6, 1, 3.5]
    archs, errors = parse_many(SP, encs)
    assert set(errors) == {1, 3, 5}
    assert archs[0] == NONE6 and archs[2] == naslib_to_arch((0, 1, 2, 3, 4, 0)) and archs[4] == SP.parse(1)
    assert archs[1] is archs[3] is archs[5] is None
    assert "edge 0->1" in errors[3]


# --------------------------------------------------------------------------- canonical key


def _reaches_output(a) -> bool:
    reach = {0}
    for (s, t), op in zip(EDGES, a):
        if op != NONE and s in reach:
            reach.add(t)
    return 3 in reach


def test_class_count_and_disconnected_cells(all_archs):
    keys = {}
    for a in all_archs:
        keys.setdefault(SP.canonical_key(a), []).append(a)
    assert len(keys) == 6_466
    # The reference rule (docs/concepts/spaces.md; NB201's to_unique_str) tests S_j == "#" literally, so a dead
    # node 2 reads "#+#" and the cells whose output is unreachable fall into exactly 5 keys, by hand:
    # 0->3 and 1->3 give "#"; 2->3 gives "#" (none), "#+#" (skip) or "(#+#)@op" (conv/pool).
    dead = [a for a in all_archs if not _reaches_output(a)]
    assert {SP.canonical_key(a) for a in dead} == {
        "#+#+#",
        "#+#+#+#",
        "#+#+(#+#)@nor_conv_1x1",
        "#+#+(#+#)@nor_conv_3x3",
        "#+#+(#+#)@avg_pool_3x3",
    }
    # the all-none class: 0->3 none, 2->3 none, (0->1 or 1->3 none: 25 - 16 = 9), 0->2 and 1->2 free
    assert sorted(keys[SP.canonical_key(NONE6)]) == sorted(a for a in dead if a[5] == NONE)
    assert len(keys[SP.canonical_key(NONE6)]) == 9 * 25
    assert SP.canonical_key((NONE, NONE, C3, NONE, NONE, SKIP)) != SP.canonical_key(NONE6)


@pytest.mark.parametrize(
    "a, b",
    [
        # node 1 dead (0->1 none): whatever leaves node 1 is irrelevant
        ((NONE, C3, C3, C1, SKIP, SKIP), (NONE, C3, AVG, C1, C1, SKIP)),
        # node 1 computed but unused (1->2, 1->3 none) == node 1 dead
        ((C3, C1, NONE, AVG, NONE, SKIP), (NONE, C1, C3, AVG, NONE, SKIP)),
        # node 2 feeds nothing (2->3 none): ops into node 2 are irrelevant
        ((SKIP, C3, C1, C3, SKIP, NONE), (SKIP, AVG, NONE, C3, SKIP, NONE)),
        # node 1 = x (skip): swapping the ops of 0->2 and 1->2 is a true isomorphism
        ((SKIP, C3, SKIP, NONE, NONE, SKIP), (SKIP, SKIP, C3, NONE, NONE, SKIP)),
        # node 1 = x: swapping the ops of 0->3 and 1->3
        ((SKIP, NONE, NONE, C1, C3, NONE), (SKIP, NONE, NONE, C3, C1, NONE)),
        # output unreachable in both
        (NONE6, (C3, C3, C3, NONE, NONE, NONE)),
    ],
)
def test_isomorphic_pairs_share_key(a, b):
    assert a != b
    assert SP.canonical_key(a) == SP.canonical_key(b)


@pytest.mark.parametrize(
    "a, b",
    [
        ((C3,) * 6, (C1,) * 6),
        # node 1 = avgpool(x): conv(x)+avg(x) differs from x+conv(avg(x))
        ((AVG, C3, SKIP, NONE, NONE, SKIP), (AVG, SKIP, C3, NONE, NONE, SKIP)),
        # depth: conv(conv(x)) vs conv(x)
        ((C3, NONE, C3, NONE, NONE, SKIP), (C3, NONE, NONE, NONE, SKIP, NONE)),
        # x + conv(x) vs conv(x)
        ((SKIP, NONE, NONE, C3, SKIP, NONE), (NONE, NONE, NONE, C3, NONE, NONE)),
        # a live skip vs none
        ((SKIP, NONE, NONE, NONE, SKIP, NONE), NONE6),
    ],
)
def test_non_isomorphic_pairs_differ(a, b):
    assert SP.canonical_key(a) != SP.canonical_key(b)


# --------------------------------------------------------------------------- sampling


def test_sample_reproducible_distinct_and_bounded():
    a = SP.sample(200, seed=7)
    assert a == SP.sample(200, seed=7)
    assert a != SP.sample(200, seed=8)
    assert len(set(a)) == 200 and all(len(x) == 6 and set(x) <= set(OPS) for x in a)
    d = SP.sample(500, seed=7, deisomorphic=True)
    assert d == SP.sample(500, seed=7, deisomorphic=True)
    assert d != SP.sample(500, seed=8, deisomorphic=True)
    assert len({SP.canonical_key(x) for x in d}) == 500
    assert len(set(SP.sample(15_625, seed=0))) == 15_625
    with pytest.raises(ValueError):
        SP.sample(15_626, seed=0)
    with pytest.raises(ValueError):
        SP.sample(6_467, seed=0, deisomorphic=True)


def test_uniform_and_deisomorphic_distributions_differ():
    # Uniform: P(edge 0->1 is none) = 1/5. Over classes: every cell with 0->1 none has a key that
    # depends only on the ops of 0->2, 0->3, 2->3, so at most 5^3 = 125 of the 6,466 classes
    # contain such a cell: share <= 125/6466 < 2%.
    u = SP.sample(3000, seed=0)
    d = SP.sample(3000, seed=0, deisomorphic=True)
    share_u = sum(a[0] == NONE for a in u) / 3000
    share_d = sum(a[0] == NONE for a in d) / 3000
    assert 0.16 < share_u < 0.24
    assert share_d < 0.04


# --------------------------------------------------------------------------- live edges


@pytest.mark.parametrize(
    "arch, live, conv",
    [
        (NONE6, (False,) * 6, False),
        ((C3, NONE, NONE, NONE, SKIP, NONE), (True, False, False, False, True, False), True),
        # conv on 0->1 but node 1 leads nowhere
        ((C3, NONE, NONE, SKIP, NONE, NONE), (False, False, False, True, False, False), False),
        # node 1 unreachable: its out-edges are dead
        ((NONE, SKIP, C3, SKIP, C1, SKIP), (False, True, False, True, False, True), False),
        # node 2 does not reach the output
        ((SKIP, C3, C1, AVG, C3, NONE), (True, False, False, True, True, False), True),
        ((AVG,) * 6, (True,) * 6, False),
        ((SKIP, NONE, C1, NONE, NONE, SKIP), (True, False, True, False, False, True), True),
    ],
)
def test_live_edges_and_conv_path(arch, live, conv):
    assert live_edges(arch) == live
    assert has_conv_path(arch) is conv


# --------------------------------------------------------------------------- network and cost


def _n_params(net) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def test_hand_derived_param_counts():
    # stem 3*16*9+32 = 464; reduction 16->32: 4608+64+9216+64+512 = 14464;
    # 32->64: 18432+128+36864+128+2048 = 57600; last BN 128; classifier 650  => 73,306 w/o cell ops.
    assert network_cost(NONE6)[0] == network_cost((SKIP,) * 6)[0] == network_cost((AVG,) * 6)[0] == 73_306
    # + 6 conv3x3 (c*c*9 + 2c) per cell, 5 cells at c = 16, 32, 64
    conv3 = 5 * 6 * sum(c * c * 9 + 2 * c for c in (16, 32, 64))
    assert network_cost((C3,) * 6)[0] == 73_306 + conv3 == 1_531_546
    assert _n_params(SP.build_network(NONE6)) == 73_306


def test_cost_matches_published_for_all_cells(published):
    params, flops = published["params"], published["flops"]
    assert len(params) == 9_445
    for arch, p in params.items():
        n, f = network_cost(arch)
        assert abs(n / 1e6 - p) <= 1e-6, arch
        assert abs(f / 1e6 - flops[arch]) <= 1e-3 * flops[arch], arch
        assert SP.cost(arch) == (n, f)


@pytest.fixture(scope="module")
def sampled_networks(published):
    archs = random.Random(0).sample(sorted(published["params"]), 28) + [(C3,) * 6, (C1, AVG, SKIP, NONE, C3, C1)]
    return [(a, SP.build_network(a)) for a in archs]


def test_built_network_params_equal_published(sampled_networks, published):
    for arch, net in sampled_networks:
        n = _n_params(net)
        assert n == network_cost(arch)[0]
        if arch in published["params"]:
            assert abs(n / 1e6 - published["params"][arch]) <= 1e-6


def test_hook_flops_equal_analytic(sampled_networks):
    for arch, net in sampled_networks[-6:]:
        assert count_flops(net, (1, 3, 32, 32)) == network_cost(arch)[1], arch


@pytest.mark.parametrize("size", [16, 64])
def test_flops_other_input_sizes(size):
    for arch in [(C3, AVG, SKIP, C1, NONE, C3), (AVG, NONE, C1, SKIP, SKIP, AVG)]:
        net = SP.build_network(arch, input_size=size)
        assert count_flops(net, (1, 3, size, size)) == SP.cost(arch, input_size=size)[1]


def test_small_config_output_shape_and_params():
    arch = (C3, AVG, SKIP, C1, NONE, C3)
    net = SP.build_network(arch, C=8, N=1, num_classes=100)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    assert _n_params(net) == network_cost(arch, C=8, N=1, num_classes=100)[0]
    assert sum(isinstance(m, InferCell) for m in net.modules()) == 3
    assert count_flops(net, (1, 3, 32, 32)) == network_cost(arch, C=8, N=1, num_classes=100)[1]


def test_avgpool3x3_equals_torch_avgpool_with_grads():
    torch.manual_seed(0)
    ref = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    x = torch.randn(2, 3, 7, 5, dtype=torch.float64, requires_grad=True)
    up = torch.randn(2, 3, 7, 5, dtype=torch.float64)
    y, y_ref = AvgPool3x3()(x), ref(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    (g,) = torch.autograd.grad(y, x, up)
    (g_ref,) = torch.autograd.grad(y_ref, x, up)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-12)
    small = torch.randn(1, 2, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(AvgPool3x3(), (small,))
    assert torch.autograd.gradgradcheck(AvgPool3x3(), (small,))


def test_cell_wiring_by_hand():
    torch.manual_seed(0)
    x1, x2 = torch.randn(2, 4, 6, 6), 5 * torch.randn(2, 4, 6, 6)
    none_cell = InferCell(NONE6, 4)
    assert torch.equal(none_cell(x1), none_cell(x2))
    assert torch.count_nonzero(none_cell(x1)) == 0
    # node1 = x, node2 = x + x, node3 = x + x + 2x = 4x
    torch.testing.assert_close(InferCell((SKIP,) * 6, 4)(x1), 4 * x1)
    # only path 0 -> 1 -> 2 -> 3 by skips: identity
    torch.testing.assert_close(InferCell((SKIP, NONE, SKIP, NONE, NONE, SKIP), 4)(x1), x1)
    # single avg-pool edge 0->3
    ref = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    torch.testing.assert_close(InferCell((NONE, NONE, NONE, AVG, NONE, NONE), 4)(x1), ref(x1))
    # a whole all-none network ignores its input
    net = SP.build_network(NONE6, C=8, N=1).eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x1[:, :3]), net(x2[:, :3]))


def test_path_features_follow_the_edges_of_the_chosen_ops():
    sp = get_space("nb201")
    arch = sp.parse("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|")
    f = dict(zip(sp.feature_names(), sp.encoding_features(arch)))

    def paths(ops):
        return tuple(f[f"{k}[{ops}]"] for k in ("paths", "min_path", "max_path", "in_sink", "out_source"))

    assert paths("nor_conv_1x1+nor_conv_3x3") == (1, 3, 3, 1, 1)
    assert paths("skip_connect") == (1, 1, 1, 1, 1)
    assert paths("skip_connect+nor_conv_1x1+nor_conv_3x3") == (2, 1, 3, 2, 2)
    assert paths("avg_pool_3x3") == (0, 6, 0, 0, 0)  # no path: the number of edges, as GRAF writes it
    assert f["count=none"] == 2 and f["0->1=nor_conv_3x3"] == 1
