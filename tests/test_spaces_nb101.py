"""NAS-Bench-101 space: validation, pruning, module hash, shipped table, exact cost and network.

Oracles: docs/concepts/spaces.md (network, counting convention, the input->output cell's 882,570 parameters), the
embedded NAS-Bench-Suite-Zero table (500 rows with published params and flops), NAS-Bench-101's own
record of the Inception-like cell of its colab (2,694,282 trainable parameters).
"""

from __future__ import annotations

import csv
import gzip
import json
import random
from importlib import resources

import pytest

from archscore.estimators.spaces import EncodingError, get_space
from archscore.estimators.spaces.nb101 import Cell, module_hash, spec_to_cell
from archscore.estimators.spaces.nb101.cost import vertex_channels

SP = get_space("nb101")
I, O = "input", "output"
C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
# the colab's Inception-like cell
INCEPTION = {
    "matrix": [
        [0, 1, 1, 1, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    "ops": [I, C1, C3, C3, C3, MP, O],
}


@pytest.fixture(scope="module")
def rows():
    raw = (resources.files("archscore.estimators.data") / "nb101_suitezero_cifar10.csv.gz").read_bytes()
    rows = list(csv.DictReader(gzip.decompress(raw).decode().splitlines()))
    assert len(rows) == 500
    return rows


def _spec(row):
    return {"matrix": json.loads(row["matrix"]), "ops": json.loads(row["ops"])}


def test_cost_equals_the_published_columns_on_all_500_rows(rows):
    for row in rows:
        params, flops = SP.cost(SP.parse(_spec(row)))
        assert params == round(float(row["params"]) * 1e6), row
        assert flops == round(float(row["flops"]) * 1e6), row


def test_cost_equals_nasbench_records():
    assert SP.cost(SP.parse({"matrix": [[0, 1], [0, 0]], "ops": [I, O]}))[0] == 882_570  # docs/concepts/spaces.md
    assert SP.cost(SP.parse(INCEPTION))[0] == 2_694_282  # NAS-Bench-101's trainable_parameters


def test_built_network_counts_equal_the_cost_model(rows):
    for row in random.Random(0).sample(rows, 6):
        cell = SP.parse(_spec(row))
        net = SP.build_network(cell)
        assert sum(p.numel() for p in net.parameters()) == SP.cost(cell)[0]


def test_vertex_channels_split_the_output_and_take_the_max_of_successors():
    # 0->1, 1->2, 1->3, 2->out, 3->out: 7 output channels split 4 + 3; vertex 1 takes max(4, 3)
    matrix = [[0, 1, 0, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    assert vertex_channels(5, 7, matrix) == [5, 4, 4, 3, 7]


def test_pruning_drops_vertices_off_the_input_output_paths():
    spec = {
        "matrix": [
            [0, 1, 1, 0],  # input -> 1, input -> 2
            [0, 0, 0, 1],  # 1 -> output
            [0, 0, 0, 0],  # 2 leads nowhere: pruned
            [0, 0, 0, 0],
        ],
        "ops": [I, C3, MP, O],
    }
    cell = SP.parse(spec)
    assert cell == Cell(((0, 1, 0), (0, 0, 1), (0, 0, 0)), (I, C3, O))
    assert SP.parse({"matrix": [list(r) for r in cell.matrix], "ops": list(cell.ops)}) == cell
    assert SP.canonical_key(cell) == module_hash(
        spec_to_cell({"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]], "ops": [I, C3, O]})
    )


def test_module_hash_is_isomorphism_invariant_and_tells_ops_apart():
    # the colab's cell and the isomorphic form NAS-Bench-101 stores it under
    stored = {
        "matrix": [
            [0, 1, 1, 1, 1, 0, 0],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 1, 0],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 0],
        ],
        "ops": [I, C3, C1, MP, C3, C3, O],
    }
    assert SP.canonical_key(SP.parse(stored)) == SP.canonical_key(SP.parse(INCEPTION))
    other = dict(INCEPTION, ops=[I, C1, C3, C3, C3, C1, O])
    assert SP.canonical_key(SP.parse(other)) != SP.canonical_key(SP.parse(INCEPTION))
    key = SP.canonical_key(SP.parse(INCEPTION))
    assert len(key) == 32 and int(key, 16) >= 0


def test_module_hash_looks_up_table_cells(rows):
    cell = SP.parse(_spec(rows[0]))
    key = SP.canonical_key(cell)
    assert SP.parse(key) == cell and SP.parse(key.upper().lower()) == cell
    with pytest.raises(EncodingError, match="not in the shipped table"):
        SP.parse("0" * 32)


def test_ground_truth_is_the_mean_over_rows_of_a_module(rows):
    by_key: dict[str, list[float]] = {}
    for row in rows:
        by_key.setdefault(SP.canonical_key(SP.parse(_spec(row))), []).append(float(row["val_accuracy"]))
    truth = SP.ground_truth("val_accuracy")
    assert len(truth) == len(by_key) == 292
    for key, values in by_key.items():
        assert truth[key] == pytest.approx(sum(values) / len(values))


def _bad(**changes):
    spec = json.loads(json.dumps(INCEPTION))
    spec.update(changes)
    return spec


@pytest.mark.parametrize(
    "spec, needle",
    [
        (_bad(matrix=[[0] * 8 for _ in range(8)], ops=[I] + [C3] * 6 + [O]), "at most 7"),
        (_bad(matrix=[[0, 1, 1, 1, 1, 1, 1]] + [[0] * j + [0] + [1] * (6 - j) for j in range(1, 7)]), "at most 9"),
        (_bad(matrix=[[0, 1, 0], [1, 0, 1], [0, 0, 0]], ops=[I, C3, O]), "upper-triangular"),
        (_bad(matrix=[[0, 1, 0], [0, 1, 1], [0, 0, 0]], ops=[I, C3, O]), "upper-triangular"),
        (_bad(ops=[C3, C1, C3, C3, C3, MP, O]), "first vertex must be 'input'"),
        (_bad(ops=[I, C1, C3, C3, C3, MP, C3]), "last vertex must be 'output'"),
        (_bad(ops=[I, C1, "conv5x5", C3, C3, MP, O]), "unknown op 'conv5x5'"),
        (_bad(ops=[I, C1, O]), "one op per vertex"),
        (_bad(matrix=[[0, 1, 0], [0, 0, 0], [0, 0, 0]], ops=[I, C3, O]), "not connected to the output"),
        (_bad(matrix=[[0, 2], [0, 0]], ops=[I, O]), "0 or 1"),
        (_bad(matrix=[[0, 1, 1], [0, 0]], ops=[I, C3, O]), "square"),
        ({"matrix": [[0, 1], [0, 0]]}, "exactly the keys"),
        ("[1, 2", "unrecognised text"),
        ("{not json", "valid JSON"),
    ],
)
def test_invalid_specs_name_the_rule(spec, needle):
    with pytest.raises(EncodingError, match=needle):
        SP.parse(spec)


def test_sampled_cells_are_valid_and_distinct():
    cells = SP.sample(40, seed=2)
    assert len({SP.canonical_key(c) for c in cells}) == 40
    assert all(len(c.matrix) <= 7 and sum(map(sum, c.matrix)) <= 9 for c in cells)
    with pytest.raises(ValueError):
        SP.sample(3, seed=0, deisomorphic=True)


def test_encoding_features_pad_the_pruned_cell_to_seven_vertices():
    f = dict(zip(SP.feature_names(), SP.encoding_features(SP.parse(INCEPTION))))
    assert len(f) == 21 + 5 * 3 + 3 + 7 * 5
    assert f["0->1"] == f["3->4"] == f["5->6"] == 1.0 and f["0->4"] == f["1->2"] == 0.0
    assert f["v1=conv1x1-bn-relu"] == f["v5=maxpool3x3"] == 1.0 and f["v1=conv3x3-bn-relu"] == 0.0
    assert (f["count=conv3x3-bn-relu"], f["count=conv1x1-bn-relu"], f["count=maxpool3x3"]) == (3.0, 1.0, 1.0)
    # input -> conv3x3 -> output: the output moves to vertex 6, vertices 2..5 stay empty
    f = dict(
        zip(
            SP.feature_names(),
            SP.encoding_features(SP.parse({"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]], "ops": [I, C3, O]})),
        )
    )
    assert f["0->1"] == f["1->6"] == 1.0 and f["1->2"] == 0.0 and sum(v for k, v in f.items() if "->" in k) == 2
    assert f["v1=conv3x3-bn-relu"] == 1.0 and not any(v for k, v in f.items() if k[:2] in ("v2", "v3", "v4", "v5"))
    assert f["count=conv3x3-bn-relu"] == 1.0 and f["count=maxpool3x3"] == 0.0


def test_path_features_keep_the_vertices_of_the_chosen_ops():
    f = dict(zip(SP.feature_names(), SP.encoding_features(SP.parse(INCEPTION))))

    def paths(ops):
        return tuple(f[f"{k}[{ops}]"] for k in ("paths", "min_path", "max_path", "in_sink", "out_source"))

    assert paths(C3) == (2, 2, 3, 2, 2)  # input -> 2 -> output, input -> 3 -> 4 -> output
    assert paths(MP) == (1, 2, 2, 1, 1)
    assert paths(f"{C1}+{MP}") == (2, 2, 2, 2, 2)
    assert paths(f"{C3}+{C1}+{MP}") == (4, 2, 3, 4, 4)
    # without a conv1x1 vertex the pruned cell input -> conv3x3 -> output has no conv1x1 path
    f = dict(
        zip(
            SP.feature_names(),
            SP.encoding_features(SP.parse({"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]], "ops": [I, C3, O]})),
        )
    )
    assert paths(C1) == (0, 7, 0, 0, 0) and paths(C3) == (1, 2, 2, 1, 1)
