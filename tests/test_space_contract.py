"""The space contract, tested for every registered space (timm style): a new space is tested by
registering it. Per-space oracles (published params/flops, hand-derived facts) live in
test_spaces_<name>.py."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces import EncodingError, get_space, list_spaces
from archscore.estimators.spaces.base import CAPABILITIES, CELL_OUTPUT_TAG, CELLS, decode_text_encoding
from archscore.estimators.zero_shot.engine import score_architecture
from archscore.estimators.zero_shot.manifest import ZERO_SHOT

SPACES = [name for name in list_spaces() if get_space(name).samples]  # onnx: tests/test_onnx_space.py


def _nb201_equivalent(sp, arch, rng):
    """Another member of the isomorphism class."""
    return rng.choice(sp.isomorphism_classes()[sp.canonical_key(arch)])


def _nb101_equivalent(sp, cell, rng):
    """The same graph with its interior vertices relabelled (a topological order kept)."""
    n = len(cell.matrix)
    for _ in range(100):
        order = [0] + rng.sample(range(1, n - 1), n - 2) + [n - 1]  # new position -> old vertex
        position = {old: new for new, old in enumerate(order)}
        if all(position[i] < position[j] for i in range(n) for j in range(n) if cell.matrix[i][j]):
            matrix = [[cell.matrix[order[i]][order[j]] for j in range(n)] for i in range(n)]
            return sp.parse({"matrix": matrix, "ops": [cell.ops[v] for v in order]})
    return cell


def _nb301_equivalent(sp, genotype, rng):
    """The two inputs of every node swapped, the concat listed backwards."""
    swapped = {}
    for cell in ("normal", "reduce"):
        pairs = list(getattr(genotype, cell))
        swapped[cell] = [list(p) for k in range(0, len(pairs), 2) for p in (pairs[k + 1], pairs[k])]
        swapped[f"{cell}_concat"] = list(reversed(getattr(genotype, f"{cell}_concat")))
    return sp.parse(swapped)


def _nds_equivalent(sp, stages, rng):
    """NDS networks have no isomorphisms: the same architecture given as its NDS net record."""
    return sp.parse(sp.to_record(stages))


# How to make an architecture equivalent to a given one, per space; a new space adds its rule here.
EQUIVALENT = {
    "nb201": _nb201_equivalent,
    "nb101": _nb101_equivalent,
    "nb301": _nb301_equivalent,
    "nds_resnet": _nds_equivalent,
    "nds_resnexta": _nds_equivalent,
}


@pytest.fixture(scope="module", params=SPACES)
def space(request):
    return get_space(request.param)


def test_every_space_says_how_its_equivalences_look():
    assert set(SPACES) <= set(EQUIVALENT), f"add an equivalence rule for {sorted(set(SPACES) - set(EQUIVALENT))}"


def test_describe_is_json_and_names_capabilities(space):
    info = json.loads(json.dumps(space.describe()))
    assert info["name"] == space.name and get_space(space.name) is space
    assert set(info["capabilities"]) <= set(CAPABILITIES) and info["encodings"]


def test_string_and_json_round_trip(space):
    for arch in space.sample(20, seed=1):
        assert hash(arch) == hash(space.parse(space.to_string(arch)))
        assert space.parse(space.to_string(arch)) == arch
        as_json = json.loads(json.dumps(space.to_json(arch)))
        assert space.parse(as_json) == arch
        # text inputs (CLI files, CSV cells) carry the JSON form too
        assert space.parse(decode_text_encoding(json.dumps(as_json))) == arch
        assert space.to_string(space.parse(space.to_string(arch))) == space.to_string(arch)


def test_sampling_is_reproducible(space):
    first = space.sample(12, seed=7)
    assert first == space.sample(12, seed=7)
    assert len(set(first)) == 12
    assert first != space.sample(12, seed=8)


def test_canonical_key_is_stable_under_equivalences(space):
    rng = random.Random(0)
    archs = space.sample(15, seed=3)
    for arch in archs:
        key = space.canonical_key(arch)
        assert isinstance(key, str) and key
        assert space.canonical_key(space.parse(space.to_json(arch))) == key
        assert space.canonical_key(EQUIVALENT[space.name](space, arch, rng)) == key
    # and it tells different architectures apart
    assert len({space.canonical_key(a) for a in archs}) > 1


@pytest.mark.parametrize("bad", [None, 3.5, True, "", "not an architecture", {}, [], {"x": 1}, [[[]]]])
def test_bad_encodings_raise_encoding_error_with_a_reason(space, bad):
    with pytest.raises(EncodingError) as info:
        space.parse(bad)
    assert str(info.value)


def test_encoding_features_are_named_numbers_of_fixed_length(space):
    """A predictor reads these as one row per architecture: every architecture gives as many finite
    numbers as there are names, the same for equal encodings, and different architectures differ."""
    if not space.has("encoding_features"):
        pytest.skip(f"{space.name} declares no encoding features")
    names = space.feature_names()
    assert len(set(names)) == len(names) > 0
    archs = space.sample(15, seed=4)
    rows = [space.encoding_features(a) for a in archs]
    for arch, row in zip(archs, rows):
        assert len(row) == len(names) and all(math.isfinite(v) for v in row)
        assert space.encoding_features(space.parse(space.to_json(arch))) == row
    assert len(set(rows)) > 1


def test_undeclared_capabilities_refuse_clearly(space):
    calls = {
        "enumerate": lambda: space.enumerate(),
        "isomorphism": lambda: space.isomorphism_classes(),
        "cost": lambda: space.cost(space.sample(1, 0)[0]),
        "ground_truth": lambda: space.ground_truth("x"),
        "published_proxies": lambda: space.published_proxies(),
        "network": lambda: space.build_network(space.sample(1, 0)[0]),
        "supernet": lambda: space.build_supernet(),
        "operations": lambda: space.operation_counts(space.sample(1, 0)[0]),
        "cell_outputs": lambda: space.cell_outputs(None),
        "encoding_features": lambda: space.encoding_features(space.sample(1, 0)[0]),
    }
    assert set(calls) | {"uploaded"} == set(CAPABILITIES)  # uploaded is a declaration, without a method
    for capability, call in calls.items():
        if not space.has(capability):
            with pytest.raises(NotImplementedError, match=capability):
                call()


def test_ground_truth_and_published_scores_key_by_truth_key(space):
    if not space.has("ground_truth"):
        pytest.skip("no built-in ground truth")
    for column in space.ground_truth_columns:
        values = space.ground_truth(column)
        assert values and all(math.isfinite(v) for v in values.values())
    if space.has("published_proxies"):
        archs = space.published_archs()
        keys = [space.truth_key(a) for a in archs]
        truth = space.ground_truth(space.ground_truth_columns[0])
        assert len(set(keys)) == len(keys) and sum(k in truth for k in keys) > len(keys) // 2
        published = space.published_proxies()
        assert set(published) <= set(ZERO_SHOT) and "params" in published
        assert set(published["params"]) == set(keys)


def test_params_of_the_cost_model_equal_the_built_network(space):
    if not (space.has("cost") and space.has("network")):
        pytest.skip("no cost model or no network")
    for arch in space.sample(3, seed=11):
        params, flops = space.cost(arch)
        net = space.build_network(arch)
        assert params == sum(p.numel() for p in net.parameters() if p.requires_grad)
        assert flops > 0
        with torch.no_grad():
            assert net.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
        assert space.cost(arch, num_classes=100)[0] == params + 90 * (net.classifier.in_features + 1)


def test_the_benchmark_spaces_declare_their_cells():
    benchmarks = {"nb201", "nb101", "nb301", "nds_resnet", "nds_resnexta"}
    assert benchmarks <= {name for name in SPACES if get_space(name).has(CELLS)}


def test_built_networks_declare_their_cell_outputs(space):
    """The stem's and each cell's module (CELLS), tagged with their positions on the built network; each runs
    once, in the declared order, and outputs a feature map; the first reads the image."""
    if not (space.has("network") and space.has(CELLS)):
        pytest.skip("no declared cells: AZ-NAS's proxies are undefined on its networks, with that reason")
    net = space.build_network(space.sample(1, seed=3)[0])
    declared = space.cell_outputs(net)
    assert len(declared) >= 3 and len({id(m) for m in declared}) == len(declared)
    inside = {id(m) for m in net.modules()}
    assert all(id(m) in inside and getattr(m, CELL_OUTPUT_TAG) == i for i, m in enumerate(declared))
    assert sum(hasattr(m, CELL_OUTPUT_TAG) for m in net.modules()) == len(declared)
    runs: list[tuple[int, tuple, tuple]] = []
    handles = [
        m.register_forward_hook(lambda m, i, o: runs.append((getattr(m, CELL_OUTPUT_TAG), i[0].shape, o.shape)))
        for m in declared
    ]
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(2, 3, 32, 32))
    finally:
        for h in handles:
            h.remove()
    assert [r[0] for r in runs] == list(range(len(declared)))
    assert runs[0][1] == (2, 3, 32, 32) and all(len(out) == 4 for _, _, out in runs)


def test_every_zero_shot_estimator_gives_a_value_or_a_reason(space):
    if not space.has("network"):
        pytest.skip("no network")
    protocol = Protocol(batch_size=8)
    for arch in space.sample(1, seed=5):
        result = score_architecture(space.to_json(arch), space.name, None, protocol)
        assert list(result.scores) == list(ZERO_SHOT)
        for name, value in result.scores.items():
            assert (value.value is not None and math.isfinite(value.value)) or value.reason, (space.name, name)
