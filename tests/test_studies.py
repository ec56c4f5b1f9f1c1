"""The paper's analyses as studies: the registry, each study's numbers on real published scores and
ground truth (no scoring needed), the variance study with real scoring, and `archscore study`."""

from __future__ import annotations

import json

import pytest
from helpers.data import published_context
from typer.testing import CliRunner

from archscore.estimators.analysis import StudyContext, get_study, list_studies
from archscore.estimators.analysis.run import local_source, run_study
from archscore.estimators.protocol import Protocol
from archscore.estimators.ranking import kendall_tau
from archscore.estimators.spaces import get_space
from archscore.estimators.truth import load_builtin
from archscore.service.cli import app

PUBLISHED_SPACES = ["nb201", "nb101", "nb301"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _data_folder(tmp_path, monkeypatch):
    """`archscore study` keeps a copy of each run in ARCHSCORE_DATA_DIR/studies: a test's own folder."""
    monkeypatch.setenv("ARCHSCORE_DATA_DIR", str(tmp_path / "data"))


def test_the_registry_lists_every_study_with_a_description():
    names = [s.name for s in list_studies()]
    assert {"complexity_bias", "operation_bias", "architecture_bias", "variance"} <= set(names)
    assert all(s.description for s in list_studies())
    with pytest.raises(KeyError, match="unknown study 'nope'"):
        get_study("nope")


@pytest.mark.parametrize("space_name", PUBLISHED_SPACES)
def test_complexity_bias_on_published_scores(space_name, tmp_path):
    ctx = published_context(space_name)
    result = run_study(get_study("complexity_bias"), ctx, tmp_path)["result"]
    assert result["global"]["params"] == pytest.approx(kendall_tau(ctx.scores()["params"], ctx.truth))
    for measure in ("flops", "params"):
        rows = result["by"][measure]["bins"]
        assert (
            sum(r["n"] for r in rows) == len(ctx.archs) and max(r["n"] for r in rows) - min(r["n"] for r in rows) <= 1
        )
        assert all(a["range"][1] <= b["range"][0] for a, b in zip(rows, rows[1:]))  # bins follow the measure
        assert all(r["kendall_tau"]["oracle"] == pytest.approx(1.0) for r in rows)
    # params only tracks size: inside bins of nearly equal params it ranks far worse than globally
    assert result["by"]["params"]["mean_in_bin_tau"]["params"] < result["global"]["params"] - 0.1
    assert {p.name for p in tmp_path.glob("*.png")} == {"complexity_bias_flops.png", "complexity_bias_params.png"}
    assert json.loads((tmp_path / "result.json").read_text())["result"] == json.loads(json.dumps(result))


@pytest.mark.parametrize("space_name", PUBLISHED_SPACES)
def test_operation_bias_on_published_scores(space_name, tmp_path):
    ctx = published_context(space_name)
    result = run_study(get_study("operation_bias"), ctx, tmp_path)["result"]
    space = ctx.space
    assert set(result["operations"]) == {op for a in ctx.archs for op in space.operation_counts(a)}
    for op, groups in result["rank_error"]["oracle"].items():
        assert all(g["mean"] == 0 for g in groups.values())  # the oracle has no bias
        assert sum(g["n"] for g in groups.values()) == len(ctx.archs)
    for e in ("params", "synflow"):
        assert any(abs(g["mean"]) > 0.01 for groups in result["rank_error"][e].values() for g in groups.values())
    assert (tmp_path / "operation_bias_synflow.png").read_bytes().startswith(PNG)


def test_operation_bias_of_nb201_params_punishes_parameter_free_ops():
    # a cell full of skip/pool/none has few parameters: params ranks it low, lower than it is
    result = get_study("operation_bias").run(published_context("nb201", 1000))
    none_counts = result["rank_error"]["params"]["none"]
    conv = result["rank_error"]["params"]["nor_conv_3x3"]
    assert conv["3"]["mean"] < conv["0"]["mean"] and none_counts["0"]["mean"] < none_counts["3"]["mean"]


@pytest.mark.parametrize("space_name", PUBLISHED_SPACES)
def test_single_op_swaps_are_pairs_one_op_apart(space_name):
    from archscore.estimators.analysis.operation_bias import single_op_swaps

    space = get_space(space_name)
    archs = space.published_archs()[:300]
    pairs = single_op_swaps(space, archs)
    brute = []
    for i, a in enumerate(archs):
        for j, b in enumerate(archs):
            (fa, oa), (fb, ob) = space.op_slots(a), space.op_slots(b)
            diff = [k for k in range(len(oa)) if fa == fb and len(oa) == len(ob) and oa[k] != ob[k]]
            if len(diff) == 1 and oa[diff[0]] < ob[diff[0]]:
                brute.append((i, j, oa[diff[0]], ob[diff[0]]))
    assert pairs == sorted(brute)
    if space_name == "nb201":  # every NB201 cell has 24 neighbours one op away: a large sample holds many pairs
        assert len(pairs) > 10
        i, j, a, b = pairs[0]
        assert sorted(space.operation_counts(archs[j]).items()) != sorted(space.operation_counts(archs[i]).items())


def test_swap_agreement_follows_the_sign_of_the_changes():
    from archscore.estimators.analysis.operation_bias import swap_agreement

    pairs = [(0, 1, "a", "b"), (0, 2, "a", "c"), (3, 2, "a", "c")]
    truth = [1.0, 2.0, 3.0, 4.0]
    scores = {"good": [0.0, 1.0, 5.0, 6.0], "bad": [1.0, 0.0, 0.5, 2.0], "gaps": [None, 1.0, 1.0, 1.0]}
    out = swap_agreement(pairs, truth, scores, ["good", "bad", "gaps"])
    assert out["pairs"] == 3
    assert out["by_swap"]["a->b"] == {
        "n": 1,
        "mean_truth_change": 1.0,
        "agreement": {"good": 1.0, "bad": 0.0, "gaps": None},
    }
    assert out["by_swap"]["a->c"]["mean_truth_change"] == pytest.approx(0.5)
    assert out["by_swap"]["a->c"]["agreement"] == {"good": 1.0, "bad": 0.5, "gaps": None}  # gaps: 3->2 is level
    assert out["agreement"]["good"] == {"share": 1.0, "n": 3} and out["agreement"]["bad"] == {"share": 1 / 3, "n": 3}


def test_operation_bias_swaps_on_nb201_published_scores(tmp_path):
    ctx = published_context("nb201", 1000)
    result = run_study(get_study("operation_bias"), ctx, tmp_path)["result"]["swaps"]
    assert result["pairs"] > 50 and result["agreement"]["oracle"]["share"] == 1.0
    # params grows with every conv that replaces a pool, skip or none: it follows such swaps mostly
    assert result["by_swap"]["none->nor_conv_3x3"]["agreement"]["params"] > 0.5
    assert (tmp_path / "operation_swaps.png").read_bytes().startswith(PNG)


@pytest.mark.parametrize("space_name", PUBLISHED_SPACES)
def test_architecture_bias_lists_the_largest_gaps(space_name):
    ctx = published_context(space_name)
    result = get_study("architecture_bias").run(ctx)["estimators"]
    assert all(r["gap"] == 0 for r in result["oracle"]["over_estimated"])
    over, under = result["synflow"]["over_estimated"], result["synflow"]["under_estimated"]
    assert len(over) == 5 and over[0]["gap"] > 0 > under[0]["gap"]
    assert [r["gap"] for r in over] == sorted((r["gap"] for r in over), reverse=True)
    assert over[0]["estimated_rank"] < over[0]["true_rank"]


def test_variance_scores_each_seed_and_batch_count():
    space = get_space("nb201")
    truth = load_builtin("nb201", "cifar10_test")
    archs = space.sample(12, seed=4)
    names = ["params", "snip", "relu"]
    passes = []
    source = local_source("nb201", archs, names, 1, lambda p: passes.append((p.seed, p.num_batches)))
    ctx = StudyContext(
        space,
        archs,
        [truth.get(a) for a in archs],
        names,
        Protocol(batch_size=4),
        source,
        {"seeds": [20, 2020], "batches": [1, 3]},
    )
    result = get_study("variance").run(ctx)
    assert sorted(passes) == [(20, 1), (20, 3), (2020, 1)]  # (20, 1) is shared by both halves
    params, snip = result["estimators"]["params"], result["estimators"]["snip"]
    assert params["std"] == 0 and params["seed_agreement"] == {"20-2020": 1.0}
    taus = list(snip["kendall_tau_by_seed"].values())
    assert taus[0] != taus[1] and snip["std"] > 0 and snip["seed_agreement"]["20-2020"] < 1
    assert set(result["estimators"]["relu"]["kendall_tau_by_batches"]) == {"1", "3"}


def test_seed_agreement_uses_the_architectures_both_seeds_scored():
    from archscore.estimators.analysis.variance import agreement

    assert agreement([1.0, None, 3.0, 2.0], [1.0, 5.0, 3.0, 2.0]) == pytest.approx(1.0)
    assert agreement([1.0, float("inf"), 2.0], [2.0, 1.0, 1.0]) == pytest.approx(-1.0)
    assert agreement([None, 1.0], [1.0, None]) is None


runner = CliRunner()


def test_study_command_writes_result_and_figures(tmp_path):
    listed = runner.invoke(app, ["study", "--list"])
    assert listed.exit_code == 0 and "complexity_bias" in listed.stdout and "variance" in listed.stdout
    result = runner.invoke(
        app,
        [
            "study",
            "complexity_bias,architecture_bias",
            "--space",
            "nb201",
            "--sample",
            "24",
            "--seed",
            "1",
            "-e",
            "params,synflow",
            "--batch-size",
            "4",
            "--bins",
            "3",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "complexity_bias"
    written = json.loads((out / "result.json").read_text())
    other = json.loads((tmp_path / "architecture_bias" / "result.json").read_text())
    assert other["inputs"]["archs"] == written["inputs"]["archs"]  # one scoring pass shared by both
    space, truth = get_space("nb201"), load_builtin("nb201", "cifar10_test")
    archs = [space.parse(a) for a in written["inputs"]["archs"]]
    assert len(archs) == 24 and written["inputs"]["truth"] == "cifar10_test"
    params = [space.cost(a)[0] / 1e6 for a in archs]
    assert written["result"]["global"]["params"] == pytest.approx(kendall_tau(params, [truth.get(a) for a in archs]))
    assert (out / "complexity_bias_flops.png").read_bytes().startswith(PNG)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["study", "nope", "--out", "x"], "unknown study 'nope'"),
        (["study", "variance", "--sample", "5"], "--out: give a folder"),
        (["study", "variance", "--space", "nds_resnet", "--sample", "5", "--out", "x"], "no built-in ground truth"),
        (["study", "complexity_bias", "--out", "x"], "choose the architectures"),
    ],
)
def test_study_command_bad_input_exits_2(args, needle):
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and needle in result.output


def test_operation_bias_on_a_space_without_operations_exits_2(tmp_path):
    from helpers.nds_records import nds_records

    space = get_space("nds_resnet")
    archs = space.sample(6, seed=0)
    path = tmp_path / "ResNet.json"
    path.write_text(json.dumps(nds_records(space, archs)))
    (tmp_path / "archs.txt").write_text("\n".join(space.to_string(a) for a in archs))
    result = runner.invoke(
        app,
        [
            "study",
            "operation_bias",
            "--space",
            "nds_resnet",
            "--truth-file",
            str(path),
            "-f",
            str(tmp_path / "archs.txt"),
            "-e",
            "params",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert (
        result.exit_code == 2 and "operation_bias needs a space with operations; nds_resnet has none" in result.output
    )


def test_altered_inputs_shuffle_labels_or_replace_images_reproducibly():
    import torch

    from archscore.estimators.zero_shot.engine import altered_inputs

    x, y = torch.rand(16, 3, 32, 32), torch.arange(16) % 10
    ((xs, ys),) = altered_inputs([(x, y)], "shuffled_labels", 5)
    assert torch.equal(xs, x) and sorted(ys.tolist()) == sorted(y.tolist()) and not torch.equal(ys, y)
    ((xn, yn),) = altered_inputs([(x, y)], "noise", 5)
    assert torch.equal(yn, y) and xn.shape == x.shape and abs(float(xn.std()) - 1) < 0.05
    assert torch.equal(altered_inputs([(x, y)], "noise", 5)[0][0], xn)  # seeded by data_seed
    assert Protocol(inputs="images").hash() == Protocol().hash() != Protocol(inputs="noise").hash()


def test_input_data_scores_real_shuffled_and_noise_inputs():
    space = get_space("nb201")
    truth = load_builtin("nb201", "cifar10_test")
    archs = space.sample(10, seed=6)
    names = ["params", "synflow", "jacob_cov", "snip"]
    passes = []
    source = local_source("nb201", archs, names, 1, lambda p: passes.append(p.inputs))
    ctx = StudyContext(space, archs, [truth.get(a) for a in archs], names, Protocol(batch_size=8), source)
    result = get_study("input_data").run(ctx)["estimators"]
    assert passes == ["images", "shuffled_labels", "noise"]
    # params and synflow use no data: the same ranking whatever the inputs
    assert result["params"]["agreement_with_images"] == {"shuffled_labels": 1.0, "noise": 1.0}
    assert result["synflow"]["agreement_with_images"]["noise"] == pytest.approx(1.0)
    # jacob_cov reads the images, not the labels; snip reads the labels through the loss
    assert result["jacob_cov"]["agreement_with_images"]["shuffled_labels"] == pytest.approx(1.0)
    assert result["jacob_cov"]["agreement_with_images"]["noise"] < 1.0
    real, shuffled = (ctx.scores(Protocol(batch_size=8, inputs=k))["snip"] for k in ("images", "shuffled_labels"))
    assert real != shuffled  # the values move with the labels (their order may not, on ten cells)
