"""NAS-Bench-301 (DARTS) space: encodings, errors, canonical keys, sampling, cost and network.

Oracles: docs/concepts/spaces.md (the NB301 bullet: ops, node inputs, network) and the embedded NAS-Bench-Suite-Zero
table (725 genotypes with published params and flops), plus facts derived by hand below.
"""

from __future__ import annotations

import copy
import csv
import gzip
import json
from importlib import resources

import pytest
import torch
from torch import nn

from archscore.estimators.spaces import EncodingError, get_space, parse_many
from archscore.estimators.spaces.base import decode_text_encoding
from archscore.estimators.spaces.nb301 import Genotype, live_nodes, network_cost
from archscore.estimators.spaces.nb301.network import AvgPool3x3

SP = get_space("nb301")
OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")

# row 0 of the table
ROW0 = {
    "normal": [
        ["max_pool_3x3", 0],
        ["dil_conv_3x3", 1],
        ["avg_pool_3x3", 1],
        ["avg_pool_3x3", 0],
        ["sep_conv_3x3", 1],
        ["sep_conv_3x3", 0],
        ["sep_conv_3x3", 1],
        ["skip_connect", 3],
    ],
    "normal_concat": [2, 3, 4, 5],
    "reduce": [
        ["max_pool_3x3", 1],
        ["skip_connect", 0],
        ["sep_conv_3x3", 1],
        ["sep_conv_3x3", 0],
        ["max_pool_3x3", 3],
        ["avg_pool_3x3", 0],
        ["max_pool_3x3", 2],
        ["dil_conv_5x5", 3],
    ],
    "reduce_concat": [2, 3, 4, 5],
}
# DARTS V2 as DARTS's genotypes.py prints it (concat as range(2, 6))
DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
    "normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
    "reduce_concat=range(2, 6))"
)


@pytest.fixture(scope="module")
def table_rows():
    raw = (resources.files("archscore.estimators.data") / "nb301_suitezero_cifar10.csv.gz").read_bytes()
    rows = list(csv.DictReader(gzip.decompress(raw).decode().splitlines()))
    assert len(rows) == 725
    return rows


def _with(**changes):
    g = copy.deepcopy(ROW0)
    g.update(changes)
    return g


def _pairs(cell, i, pair):
    pairs = copy.deepcopy(ROW0[cell])
    pairs[i] = pair
    return pairs


# --- registry and encodings ---
def test_registered_under_aliases():
    assert get_space("darts") is SP and get_space("nasbench301") is SP and get_space("NAS-Bench-301") is SP
    assert SP.size is None and set(SP.ground_truth_columns) == {"val_accuracy"}
    assert SP.has("cost") and SP.has("network") and SP.has("published_proxies") and not SP.has("isomorphism")


def test_json_object_and_text_round_trip():
    g = SP.parse(ROW0)
    assert isinstance(g, Genotype) and hash(g) == hash(SP.parse(copy.deepcopy(ROW0)))
    assert g.normal[7] == ("skip_connect", 3) and g.reduce_concat == (2, 3, 4, 5)
    assert SP.to_json(g) == ROW0
    assert SP.parse(json.dumps(ROW0)) == g
    assert SP.parse(decode_text_encoding(json.dumps(ROW0))) == g
    assert SP.parse(SP.to_string(g)) == g and SP.parse(SP.to_json(g)) == g
    assert SP.parse(g) == g  # a Genotype is re-validated
    tuples = _with(normal=[tuple(p) for p in ROW0["normal"]], reduce_concat=(2, 3, 4, 5))
    assert SP.parse(tuples) == g


def test_darts_string_with_range():
    g = SP.parse(DARTS_V2)
    assert g.normal_concat == g.reduce_concat == (2, 3, 4, 5)
    assert g.normal[:2] == (("sep_conv_3x3", 0), ("sep_conv_3x3", 1)) and g.reduce[-1] == ("max_pool_3x3", 1)
    s = SP.to_string(g)
    assert s.startswith("Genotype(normal=[('sep_conv_3x3', 0), ") and s.endswith("reduce_concat=[2, 3, 4, 5])")
    assert SP.parse(s) == g and SP.parse(SP.to_json(g)) == g
    assert SP.parse(decode_text_encoding("  " + DARTS_V2)) == g
    double_quoted = DARTS_V2.replace("'", '"').replace("range(2, 6)", "[2, 3, 4, 5]")
    assert SP.parse(double_quoted) == g


def test_round_trip_keeps_given_order():
    g = SP.parse(_with(normal_concat=[5, 2], reduce_concat=[4]))
    assert g.normal_concat == (5, 2) and SP.parse(SP.to_string(g)) == g and SP.parse(SP.to_json(g)) == g
    assert SP.to_json(g)["normal_concat"] == [5, 2]


@pytest.mark.parametrize(
    "encoding, expected",
    [
        (_with(normal=ROW0["normal"][:7]), "normal: expected exactly 8 [op, input] pairs (4 nodes x 2 inputs), got 7"),
        (_with(reduce=ROW0["reduce"] + [["skip_connect", 0]]), "reduce: expected exactly 8"),
        (
            _with(normal=_pairs("normal", 4, ["conv_3x3", 0])),
            "normal pair 4 (node 4): unknown op 'conv_3x3'; allowed: " + ", ".join(OPS),
        ),
        (_with(normal=_pairs("normal", 0, ["none", 0])), "unknown op 'none'"),
        (
            _with(normal=_pairs("normal", 1, ["sep_conv_3x3", 2])),
            "normal node 2 (pairs 0-1): input 2 is not an earlier node (allowed 0..1)",
        ),
        (
            _with(reduce=_pairs("reduce", 7, ["sep_conv_3x3", 5])),
            "reduce node 5 (pairs 6-7): input 5 is not an earlier node (allowed 0..4)",
        ),
        (_with(normal=_pairs("normal", 3, ["sep_conv_3x3", -1])), "input -1 is not an earlier node"),
        (
            _with(normal=_pairs("normal", 3, ["sep_conv_3x3", 1])),
            "normal node 3 (pairs 2-3): inputs 1 and 1 must be distinct earlier nodes",
        ),
        (
            _with(normal=_pairs("normal", 2, ["sep_conv_3x3", True])),
            "normal pair 2 (node 3): input must be an integer node index, got True",
        ),
        (_with(normal=_pairs("normal", 2, ["sep_conv_3x3", 1.0])), "input must be an integer node index"),
        (_with(normal=_pairs("normal", 2, ["sep_conv_3x3"])), "normal pair 2 (node 3): must be an [op, input] pair"),
        (_with(normal="sep_conv_3x3"), "normal: must be a list of 8 [op, input] pairs"),
        (_with(normal_concat=[2, 3, 4, 6]), "normal_concat: 6 is not a node 2..5"),
        (_with(reduce_concat=[0, 1]), "reduce_concat: 0 is not a node 2..5"),
        (_with(normal_concat=[2, True]), "normal_concat: True is not a node 2..5"),
        (_with(normal_concat=[]), "normal_concat: must not be empty"),
        (_with(normal_concat=[2, 3, 3]), "normal_concat: node 3 is listed twice; concat nodes must be distinct"),
        (_with(normal_concat=5), "normal_concat: must be a non-empty list"),
        ({k: v for k, v in ROW0.items() if k != "reduce_concat"}, "genotype: missing key(s) reduce_concat"),
        (_with(extra=1), "genotype: unknown key(s) extra"),
        ("{not json", "must be valid JSON"),
        ("sep_conv_3x3", "unrecognised text"),
        (17, "unsupported encoding of type int"),
        ("Genotype(normal=[('sep_conv_3x3', 0)]", "not valid Genotype(normal=..., ...) syntax"),
        (
            "Genotype(normal=__import__('os').getcwd(), normal_concat=[2], reduce=[], reduce_concat=[2])",
            "normal: must be a literal",
        ),
        (
            DARTS_V2.replace("normal_concat=range(2, 6)", "normal_concat=range(2, 7)"),
            "normal_concat: range(2, 7) lists 5 nodes",
        ),
        (
            DARTS_V2.replace("normal_concat=range(2, 6)", "normal_concat=range(1000000000000)"),
            "normal_concat: range(0, 1000000000000) lists",
        ),
        (DARTS_V2.replace("reduce_concat=range(2, 6)", "reduce_concat=[2, 7]"), "reduce_concat: 7 is not a node 2..5"),
        (DARTS_V2.replace(", reduce_concat=range(2, 6)", ""), "missing key(s) reduce_concat"),
        (DARTS_V2.replace("reduce_concat", "normal_concat"), "normal_concat given twice"),
        (DARTS_V2.replace("Genotype(", "Genotype(x=1, "), "unknown key(s) x"),
    ],
)
def test_validation_errors(encoding, expected):
    with pytest.raises(EncodingError) as err:
        SP.parse(encoding)
    assert expected in str(err.value)


def test_parse_many_reports_by_index():
    archs, errors = parse_many(SP, [ROW0, _with(normal_concat=[6]), DARTS_V2])
    assert archs[0] == SP.parse(ROW0) and archs[1] is None and archs[2] == SP.parse(DARTS_V2)
    assert list(errors) == [1] and "normal_concat: 6 is not a node 2..5" in errors[1]


# --- canonical key ---
def test_canonical_key_merges_input_swaps_and_concat_order():
    g = SP.parse(ROW0)
    swapped = copy.deepcopy(ROW0)
    for cell in ("normal", "reduce"):
        p = swapped[cell]
        for k in range(4):
            p[2 * k], p[2 * k + 1] = p[2 * k + 1], p[2 * k]
    swapped["normal_concat"] = [5, 3, 2, 4]
    h = SP.parse(swapped)
    assert h != g and SP.canonical_key(h) == SP.canonical_key(g) == SP.truth_key(g)
    key = SP.canonical_key(g)
    assert key.startswith("normal=max_pool_3x3~0+dil_conv_3x3~1|avg_pool_3x3~0+avg_pool_3x3~1|")
    assert "@2345;reduce=" in key


def test_canonical_key_separates_different_genotypes():
    key = SP.canonical_key(SP.parse(ROW0))
    others = [
        _with(normal=_pairs("normal", 0, ["avg_pool_3x3", 0])),  # another op
        _with(reduce=_pairs("reduce", 7, ["dil_conv_5x5", 4])),  # another input
        _with(normal=ROW0["reduce"], reduce=ROW0["normal"]),  # cells exchanged
        _with(reduce_concat=[2, 3, 4]),  # another concat
    ]
    keys = {SP.canonical_key(SP.parse(o)) for o in others}
    assert len(keys) == len(others) and key not in keys
    # same op pair on a node, inputs exchanged between the ops: a different function
    a = _with(normal=_pairs("normal", 0, ["sep_conv_5x5", 0]))
    b = copy.deepcopy(a)
    b["normal"][0], b["normal"][1] = ["sep_conv_5x5", 1], ["dil_conv_3x3", 0]
    assert SP.canonical_key(SP.parse(a)) != SP.canonical_key(SP.parse(b))


# --- sampling ---
def test_sampling_reproducible_distinct_and_valid():
    a, b = SP.sample(30, seed=7), SP.sample(30, seed=7)
    assert a == b and a != SP.sample(30, seed=8)
    assert len({SP.canonical_key(g) for g in a}) == 30
    for g in a:
        assert SP.parse(SP.to_json(g)) == g and g.normal_concat == g.reduce_concat == (2, 3, 4, 5)
    assert SP.sample(0, seed=1) == []
    ops_seen = {op for g in a for op, _ in g.normal + g.reduce}
    assert ops_seen == set(OPS)


def test_deisomorphic_sampling_is_refused():
    with pytest.raises(ValueError, match="nb301 has no isomorphism classes"):
        SP.sample(3, seed=0, deisomorphic=True)


# --- published table and cost ---
def test_row0_cost():
    assert SP.cost(SP.parse(ROW0)) == (856_298, 153_499_136)
    params100, flops100 = SP.cost(SP.parse(ROW0), num_classes=100)
    assert params100 == 856_298 + 90 * 512 + 90 and flops100 == 153_499_136 + 90 * 512


def test_cost_reproduces_every_published_row(table_rows):
    for r in table_rows:
        params, flops = SP.cost(SP.parse(r["genotype"]))
        assert params == round(float(r["params"]) * 1e6), r["genotype"]
        assert abs(flops / 1e6 - float(r["flops"])) < 1e-9, r["genotype"]


def test_published_tables(table_rows):
    archs = SP.published_archs()
    assert len(archs) == 725 and archs[0] == SP.parse(ROW0)
    keys = [SP.canonical_key(g) for g in archs]
    assert len(set(keys)) == 725  # no two rows share a canonical key
    truth = SP.ground_truth("val_accuracy")
    assert list(truth) == keys and truth[keys[0]] == pytest.approx(93.32119084207302)
    pub = SP.published_proxies()
    assert {"params", "flops", "synflow", "relu_logdet", "jacob_cov"} <= set(pub)
    assert pub["params"][keys[0]] == pytest.approx(0.856298) and pub["flops"][keys[0]] == pytest.approx(153.499136)
    with pytest.raises(KeyError):
        SP.ground_truth("test_accuracy")


def test_dead_nodes_are_not_counted():
    # normal concat [3]; node 3 reads nodes 1 and 0, so nodes 2, 4 and 5 do not run
    g = SP.parse(_with(normal_concat=[3]))
    assert live_nodes(g.normal, g.normal_concat) == (3,)
    assert live_nodes(g.reduce, g.reduce_concat) == (2, 3, 4, 5)
    heavier = SP.parse(_with(normal=_pairs("normal", 0, ["sep_conv_5x5", 0]), normal_concat=[3]))
    lighter = SP.parse(_with(normal=_pairs("normal", 0, ["skip_connect", 0]), normal_concat=[3]))
    assert SP.cost(heavier) == SP.cost(lighter)  # node 2 is dead in both


def test_network_config_checked():
    g = SP.parse(ROW0)
    with pytest.raises(ValueError, match="input_size"):
        network_cost(g, input_size=30)
    with pytest.raises(ValueError, match="layers"):
        SP.cost(g, layers=0)


# --- network ---
def _tensorwatch_flops(net: nn.Module, input_size: int = 32) -> int:
    """FLOPs by tensorwatch's per-module rules (NASLib's counter for the published column)."""
    total = 0

    def hook(m, inputs, out):
        nonlocal total
        x = inputs[0]
        if isinstance(m, nn.Conv2d):
            per_position = m.kernel_size[0] * m.kernel_size[1] * m.in_channels * m.out_channels // m.groups
            total += per_position * out[0, 0].numel()
        elif isinstance(m, nn.BatchNorm2d):
            total += x.numel() * (2 if m.affine else 1)
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            total += 9 * out.numel()
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            total += x.shape[1] * (x.shape[2] + 1) * (x.shape[3] + 1)
        elif isinstance(m, nn.ReLU):
            total += x.numel()
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features

    handles = [m.register_forward_hook(hook) for m in net.modules() if not list(m.children())]
    with torch.no_grad():
        net.eval()
        net(torch.zeros(1, 3, input_size, input_size))
    for h in handles:
        h.remove()
    return total


def test_network_params_equal_cost_on_table_rows():
    archs = SP.published_archs()
    for g in archs[::73]:  # 10 rows
        net = SP.build_network(g)
        assert sum(p.numel() for p in net.parameters()) == SP.cost(g)[0]
    assert _tensorwatch_flops(SP.build_network(archs[0])) == SP.cost(archs[0])[1] == 153_499_136


def test_network_forward_and_variants():
    torch.manual_seed(0)
    g = SP.parse(DARTS_V2)
    net = SP.build_network(g)
    out = net(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert any(isinstance(m, nn.ReLU) for m in net.modules())
    dead = SP.parse(_with(normal_concat=[3], reduce_concat=[5, 2]))
    net = SP.build_network(dead, num_classes=100)
    assert sum(p.numel() for p in net.parameters()) == SP.cost(dead, num_classes=100)[0]
    assert _tensorwatch_flops(net) == SP.cost(dead, num_classes=100)[1]
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 100)


def test_equivalent_genotypes_build_the_same_network():
    g = SP.parse(ROW0)
    swapped = copy.deepcopy(ROW0)
    swapped["normal"][0], swapped["normal"][1] = swapped["normal"][1], swapped["normal"][0]
    nets = []
    for arch in (g, SP.parse(swapped)):
        torch.manual_seed(3)
        nets.append(SP.build_network(arch))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(nets[0].eval()(x), nets[1].eval()(x))


@pytest.mark.parametrize("stride", [1, 2])
def test_avg_pool_matches_torch(stride):
    x = torch.randn(2, 4, 8, 8)
    ref = nn.AvgPool2d(3, stride, 1, count_include_pad=False)(x)
    assert torch.allclose(AvgPool3x3(stride)(x), ref, atol=1e-6)


def test_encoding_features_one_hot_each_edge_then_count_the_ops():
    f = dict(zip(SP.feature_names(), SP.encoding_features(SP.parse(ROW0))))
    assert len(f) == 2 * (14 * 7 + 7 + 15 * 5)
    assert f["normal:0->2=max_pool_3x3"] == f["normal:1->2=dil_conv_3x3"] == f["normal:3->5=skip_connect"] == 1.0
    assert f["normal:0->2=dil_conv_3x3"] == f["normal:2->5=skip_connect"] == 0.0
    assert sum(v for k, v in f.items() if k.startswith("normal:") and "->" in k) == 8
    assert f["reduce:2->5=max_pool_3x3"] == f["reduce:3->5=dil_conv_5x5"] == 1.0
    assert f["normal:count=sep_conv_3x3"] == 3.0 and f["normal:count=skip_connect"] == 1.0
    assert f["reduce:count=max_pool_3x3"] == 3.0 and f["reduce:count=dil_conv_3x3"] == 0.0


def test_path_features_run_from_both_inputs_to_the_concat():
    f = dict(zip(SP.feature_names(), SP.encoding_features(SP.parse(ROW0))))

    def paths(families):
        return tuple(f[f"normal:{k}[{families}]"] for k in ("paths", "min_path", "max_path", "in_sink", "out_source"))

    # source -> input -> node -> output: nodes 2 and 3 read the inputs through pools; node 4 through
    # sep convs; node 5 reads input 1 through a sep conv and node 3 through a skip
    assert paths("pool") == (3, 3, 3, 4, 2)
    assert paths("skip+sep_conv") == (3, 3, 3, 4, 2)
    assert paths("pool+skip") == (5, 3, 4, 4, 2)
    assert paths("dil_conv") == (1, 3, 3, 4, 2)
