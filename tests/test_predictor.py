"""Few-shot predictors (archscore.Predictor, `archscore predictor`): fitted trees that rank held-out
architectures, the same trees as LightGBM fitted on independently built pairs of feature rows, a JSON file that
reloads to the same predictions, the score file that spares rescoring, and clear refusals."""

from __future__ import annotations

import json

import lightgbm
import numpy as np
import pytest
from helpers.cli import run
from helpers.graphs import path_features_reference
from scipy.stats import kendalltau

import archscore
from archscore.estimators.catalog import POPULATION
from archscore.estimators.one_shot.registry import builtin_supernet
from archscore.estimators.predictor import (
    DEFAULT_ESTIMATORS,
    DEFAULT_ONE_SHOT,
    PARAMS,
    PRIOR_LABELS,
    ROUNDS,
    PredictorError,
    PredictorModel,
    fit,
    prior_members,
)
from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces import get_space
from archscore.estimators.truth import load_builtin

NB201 = get_space("nb201")
TRUTH = load_builtin("nb201", "cifar10_test")
CHEAP = ["params", "flops"]  # the cost model's: no network is built, so these tests stay fast
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def _strings(archs):
    return [NB201.to_string(a) for a in archs]


@pytest.fixture(scope="module")
def split():
    archs = NB201.sample(260, seed=11)
    return _strings(archs[:60]), _strings(archs[60:])


@pytest.fixture(scope="module")
def fitted(split):
    train, _ = split
    return archscore.Predictor("nb201", estimators=CHEAP, seed=3).fit(train)


def test_the_predictor_ranks_held_out_cells(fitted, split):
    """Well above a predictor fitted to the same cells with their labels shuffled (which knows nothing)."""
    train, test = split
    truth = [TRUTH.lookup(a) for a in test]
    tau = kendalltau(fitted.query(test), truth)[0]
    shuffled = [TRUTH.lookup(a) for a in train]
    np.random.default_rng(0).shuffle(shuffled)
    blind = archscore.Predictor("nb201", estimators=CHEAP, seed=3).fit(train, shuffled)
    blind_tau = kendalltau(blind.query(test), truth)[0]
    assert tau > 0.55 and tau > blind_tau + 0.3, (tau, blind_tau)


def _independent_features(arch: str, scores: dict) -> list[float]:
    """The feature row written out from the cell string: the scores, the op of each edge one-hot, the op
    counts, the path features of the edges of each subset of the ops other than none (networkx's)."""
    ops = [term.split("~")[0] for group in arch.split("+") for term in group.strip("|").split("|")]
    edges = [(s, t, op) for (s, t), op in zip(((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)), ops)]
    paths = path_features_reference(4, edges, 0, 3, OPS[1:], no_path=6)
    return (
        [scores[n] for n in CHEAP]
        + [float(o == op) for o in ops for op in OPS]
        + [float(ops.count(op)) for op in OPS]
        + list(paths)
    )


def test_the_trees_are_lightgbms_on_ordered_pairs_and_a_prediction_is_the_mean_win_rate(fitted, split):
    """LightGBM's classifier fitted on every ordered pair of training cells with different labels (the
    first's features, the second's, their difference) to whether the first wins; a cell's prediction is
    its mean probability of beating each training cell."""
    train, test = split
    scores = {
        a: {n: s.scores[n] for n in CHEAP} for a, s in zip(train + test, archscore.score(train + test, "nb201", CHEAP))
    }
    x = {a: np.array(_independent_features(a, scores[a])) for a in train + test}
    label = {a: TRUTH.lookup(a) for a in train}
    pairs = [(a, b) for a in train for b in train if label[a] != label[b]]
    rows = np.array([np.concatenate([x[a], x[b], x[a] - x[b]]) for a, b in pairs])
    wins = [float(label[a] > label[b]) for a, b in pairs]
    booster = lightgbm.train({**PARAMS, "seed": 3}, lightgbm.Dataset(rows, wins), ROUNDS)
    expected = [
        booster.predict(np.array([np.concatenate([x[t], x[b], x[t] - x[b]]) for b in train])).mean() for t in test
    ]
    np.testing.assert_allclose(fitted.query(test), expected, rtol=1e-12)
    assert fitted.model.labels == tuple(label[a] for a in train) and fitted.model.train == tuple(train)
    assert fitted.model.scores == tuple(tuple(scores[a][n] for n in CHEAP) for a in train)


def test_a_saved_predictor_is_json_and_reloads_to_the_same_predictions(fitted, split, tmp_path):
    _, test = split
    path = fitted.save(tmp_path / "p")
    document = json.loads((tmp_path / "p" / "predictor.json").read_text())
    assert document["format"] == "archscore-predictor/3" and document["library"] == f"lightgbm {lightgbm.__version__}"
    assert document["estimators"] == CHEAP and document["truth"] == "cifar10_test" and document["seed"] == 3
    assert len(document["encoding"]) == 35 + 15 * 5 and document["model"].startswith("tree")
    again = archscore.Predictor.load(path)
    assert again.query(test[:20]) == fitted.query(test[:20])


def test_a_predictor_fitted_on_other_encoding_features_must_be_fitted_again(fitted, tmp_path):
    """A file from a version of archscore whose encoding features differed is refused, not misread."""
    stale = fitted.model.model_copy(update={"encoding": fitted.model.encoding[:35]})
    stale.save(tmp_path / "stale")
    with pytest.raises(PredictorError, match="no longer computes .*fit it again"):
        archscore.Predictor.load(tmp_path / "stale")
    result = run("predictor", "eval", str(tmp_path / "stale"), "--test", "20")
    assert result.exit_code == 2 and "fit it again" in result.stderr, result.output


def test_a_predictor_of_the_earlier_format_must_be_fitted_again(fitted, tmp_path):
    """Format 1 (trees fitted to the labels' ranks, no training scores) is refused, not misread."""
    earlier = fitted.model.model_dump(mode="json") | {"format": "archscore-predictor/1"}
    del earlier["scores"]
    (tmp_path / "earlier").mkdir()
    (tmp_path / "earlier" / "predictor.json").write_text(json.dumps(earlier))
    with pytest.raises(PredictorError, match="earlier version of archscore .*fit it again"):
        archscore.Predictor.load(tmp_path / "earlier")
    result = run("predictor", "eval", str(tmp_path / "earlier"), "--test", "20")
    assert result.exit_code == 2 and "fit it again" in result.stderr, result.output
    stored = PredictorModel.model_validate(earlier)  # as the service reads a record an earlier version stored
    with pytest.raises(PredictorError, match="fit it again"):
        stored.predict(NB201, [NB201.parse(a) for a in fitted.model.train[:2]], [{}, {}])


def test_the_prior_multiplies_by_the_members_rank_among_the_training_cells(fitted, split):
    """With a prior, a prediction is the trees' win rate times, over the members, the geometric mean of the
    fraction u of the training cells a cell outscores (u = (below + ties / 2 + 1/2) / (N + 1)), raised to
    PRIOR_LABELS / N. The trees are the same, and a cell's value does not depend on the others queried."""
    train, test = split
    plain = fitted.model
    rows = [dict(zip(CHEAP, values)) for values in plain.scores]
    prior = fit(
        NB201,
        [NB201.parse(a) for a in train],
        list(plain.labels),
        rows,
        estimators=CHEAP,
        truth=plain.truth,
        protocol=plain.protocol,
        seed=3,
        prior=CHEAP,
    )
    assert prior.model == plain.model and prior.prior == tuple(CHEAP)
    queried = [dict(s.scores) for s in archscore.score(test[:30], "nb201", CHEAP)]
    archs = [NB201.parse(a) for a in test[:30]]
    wins = plain.predict(NB201, archs, queried)
    n = len(train)
    expected = []
    for win, row in zip(wins, queried):
        logs = [
            np.log((sum(r[m] < row[m] for r in rows) + sum(r[m] == row[m] for r in rows) / 2 + 0.5) / (n + 1))
            for m in CHEAP
        ]
        expected.append(win * np.exp(PRIOR_LABELS / n * np.mean(logs)))
    got = prior.predict(NB201, archs, queried)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert [prior.predict(NB201, [a], [r])[0] for a, r in zip(archs[:3], queried[:3])] == got[:3]


def test_the_prior_defaults_to_the_spaces_ensemble_when_the_estimators_hold_its_members():
    assert prior_members("nb201", "auto", DEFAULT_ESTIMATORS) == POPULATION["ensemble:default"].members
    assert prior_members("nb101", "auto", DEFAULT_ESTIMATORS) == POPULATION["ensemble:nb101"].members
    assert prior_members("nb201", "auto", CHEAP) == ()  # auto never adds scoring
    assert prior_members("nb201", "none", DEFAULT_ESTIMATORS) == ()
    assert prior_members("nb201", "ensemble:nb301", CHEAP) == POPULATION["ensemble:nb301"].members
    with pytest.raises(PredictorError, match="prior: 'te_nas' is not an ensemble"):
        prior_members("nb201", "te_nas", CHEAP)
    predictor = archscore.Predictor("nb201", estimators=CHEAP, prior="ensemble:nb301")
    assert predictor.estimators == (*CHEAP, *POPULATION["ensemble:nb301"].members)  # the members are scored


def test_a_predictor_of_format_2_is_read_without_a_prior(fitted, split, tmp_path):
    _, test = split
    earlier = fitted.model.model_dump(mode="json") | {"format": "archscore-predictor/2"}
    del earlier["prior"], earlier["prior_weight"]
    (tmp_path / "earlier").mkdir()
    (tmp_path / "earlier" / "predictor.json").write_text(json.dumps(earlier))
    again = archscore.Predictor.load(tmp_path / "earlier")
    assert again.model.prior == () and again.query(test[:10]) == fitted.query(test[:10])


def test_fitting_is_a_function_of_the_data_and_the_seed(split):
    train, _ = split
    first = archscore.Predictor("nb201", estimators=CHEAP, seed=5).fit(train).model
    second = archscore.Predictor("nb201", estimators=CHEAP, seed=5).fit(train).model
    other = archscore.Predictor("nb201", estimators=CHEAP, seed=6).fit(train).model
    assert first.model == second.model and first.model != other.model


def test_naslib_interface_takes_given_labels_and_any_encoding(split):
    train, test = split
    labels = [-TRUTH.lookup(a) for a in train]  # the reverse order: the predictor must follow the labels given
    predictor = archscore.Predictor("nb201", estimators=CHEAP).fit(train, labels, train_info=None)
    assert predictor.model.truth == "given"
    naslib = [NB201.to_json(NB201.parse(a)) for a in test]
    predicted = predictor.query(naslib, info=None)
    assert len(predicted) == len(test) and kendalltau(predicted, [TRUTH.lookup(a) for a in test])[0] < -0.4


def test_the_score_file_spares_rescoring(tmp_path, split):
    train, _ = split
    file = tmp_path / "scores.jsonl"
    calls = []
    archscore.Predictor("nb201", estimators=["layers"], scores_file=file, protocol={"batch_size": 8}).fit(train[:8])
    lines = file.read_text().splitlines()
    assert len(lines) == len({NB201.canonical_key(NB201.parse(a)) for a in train[:8]})
    again = archscore.Predictor(
        "nb201",
        estimators=["layers"],
        scores_file=file,
        protocol={"batch_size": 8},
        progress=lambda done, total: calls.append(done),
    ).fit(train[:8])
    assert calls == [] and file.read_text().splitlines() == lines and again.model is not None
    # an estimator the file lacks is scored alone: the scores it holds are reused
    archscore.Predictor("nb201", estimators=["layers", "relu"], scores_file=file, protocol={"batch_size": 8}).fit(
        train[:8]
    )
    added = [json.loads(line) for line in file.read_text().splitlines()[len(lines) :]]
    assert len(added) == len(lines) and all(set(r["scores"]) == {"relu"} for r in added)
    # another protocol is another cache entry
    archscore.Predictor("nb201", estimators=["layers"], scores_file=file, protocol={"batch_size": 4}).fit(train[:8])
    assert len(file.read_text().splitlines()) == 3 * len(lines)


def test_features_are_the_scores_the_service_gives():
    """A class's zero-shot scores are its representative's, whichever member is asked first; params and flops
    are each architecture's own (a conv on an edge that reaches no output still has parameters)."""
    dead = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"  # edge 0->1 is dead
    live = "|none~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"  # the class's representative
    assert NB201.canonical_key(NB201.parse(dead)) == NB201.canonical_key(NB201.parse(live))
    own = {r.arch: r.scores for r in archscore.score([dead, live], "nb201", ["params", "layers"], {"batch_size": 8})}
    assert own[dead]["layers"] != own[live]["layers"]  # scored as written, the members differ
    predictor = archscore.Predictor("nb201", estimators=["params", "layers"], protocol={"batch_size": 8})
    rows = predictor.scores([NB201.parse(dead), NB201.parse(live)])
    assert rows[0]["layers"] == rows[1]["layers"] == own[live]["layers"]
    assert [row["params"] for row in rows] == [own[dead]["params"], own[live]["params"]]


def test_bad_input_is_refused_with_the_reason(split, tmp_path):
    train, _ = split
    with pytest.raises(PredictorError, match="bogus: not a zero-shot estimator"):
        archscore.Predictor("nb201", estimators=["bogus"])
    with pytest.raises(PredictorError, match="at least 5"):
        archscore.Predictor("nb201", estimators=CHEAP).fit(train[:3])
    with pytest.raises(PredictorError, match="same label"):
        archscore.Predictor("nb201", estimators=CHEAP).fit(train[:6], [1.0] * 6)
    with pytest.raises(PredictorError, match="not fitted"):
        archscore.Predictor("nb201").query(train[:2])
    with pytest.raises(archscore.EncodingError, match=r"archs\[1\]"):
        archscore.Predictor("nb201", estimators=CHEAP).fit([train[0], "|bad|", *train[1:6]])
    (tmp_path / "predictor.json").write_text('{"format": "something else"}')
    with pytest.raises(PredictorError, match="format must be"):
        PredictorModel.load(tmp_path)


def test_cli_fit_eval_list(tmp_path):
    folder = tmp_path / "predictors" / "cheap"
    fitted = run(
        "predictor",
        "fit",
        "--space",
        "nb201",
        "--train",
        "40",
        "--seed",
        "0",
        "-e",
        "params,flops",
        "--out",
        str(folder),
    )
    assert fitted.exit_code == 0, fitted.output
    assert "fitted on 40 nb201 architectures" in fitted.stdout and (folder / "predictor.json").is_file()
    report = tmp_path / "report.json"
    evaluated = run("predictor", "eval", str(folder), "--test", "150", "--seed", "1", "--out", str(report))
    assert evaluated.exit_code == 0, evaluated.output
    assert "predictor (N=40)" in evaluated.stdout and "Kendall" in evaluated.stdout
    criteria = json.loads(report.read_text())["criteria"]
    assert set(criteria) == {"predictor (N=40)", "params", "flops"}
    trained = {NB201.canonical_key(a) for a in NB201.sample(40, 0)}
    held_out = [a for a in NB201.sample(150, 1) if NB201.canonical_key(a) not in trained]
    assert criteria["params"]["n"] == len(held_out) < 150  # the training cells are left out
    assert criteria["predictor (N=40)"]["kendall_tau"] > 0.4
    listed = run("predictor", "list", "--dir", str(tmp_path / "predictors"), "--json")
    assert listed.exit_code == 0 and json.loads(listed.stdout)[0]["name"] == "cheap"


def test_cli_fit_reads_one_shot_scores_of_the_named_supernet(tmp_path, monkeypatch):
    """`predictor fit -e ...,oneshot_acc --supernet NAME`: the training set's one-shot scores are the
    library's on that checkpoint (the model's protocol names it by sha256), and `eval` scores the test cells
    on it too. Without a checkpoint the command says so and exits 2."""
    monkeypatch.setenv("ARCHSCORE_SUPERNET_DIR", str(tmp_path / "supernets"))
    missing = run("predictor", "fit", "--space", "nb301", "-e", "params,oneshot_acc", "--out", str(tmp_path / "x"))
    assert missing.exit_code == 2 and "--supernet: no complete supernet checkpoint of nb301" in missing.stderr
    trained = run(
        "supernet", "train", "--out", str(tmp_path / "supernets" / "tiny"), "--network", "C=4", "--network", "N=1",
        "--batch-size", "100", "--epochs", "1", "--steps-per-epoch", "2",
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    folder = tmp_path / "os"
    fitted = run(
        "predictor", "fit", "--train", "12", "-e", "params,oneshot_acc", "--prior", "none", "--supernet", "tiny",
        "--oneshot-num-batches", "1", "--out", str(folder),
    )  # fmt: skip
    assert fitted.exit_code == 0, fitted.output
    model = PredictorModel.load(folder)
    sha = json.loads((tmp_path / "supernets" / "tiny" / "manifest.json").read_text())["sha256"]
    assert model.estimators == ("params", "oneshot_acc") and model.protocol["oneshot"]["supernet"] == sha
    direct = archscore.score(
        [NB201.to_json(NB201.parse(a)) for a in model.train], "nb201", ["oneshot_acc"], protocol=model.protocol,
        supernet_dir=tmp_path / "supernets",
    )  # fmt: skip
    assert [row[1] for row in model.scores] == [r.scores["oneshot_acc"] for r in direct]
    evaluated = run("predictor", "eval", str(folder), "--test", "20", "--seed", "1")
    assert evaluated.exit_code == 0 and "oneshot_acc" in evaluated.stdout, evaluated.output
    with pytest.raises(PredictorError, match="oneshot_acc: a one-shot estimator needs a supernet"):
        archscore.Predictor("nb301", estimators=["params", "oneshot_acc"])
    named = archscore.Predictor("nb201", estimators=["params", "oneshot_acc"])  # the newest complete one
    assert named.protocol.oneshot is not None and named.protocol.oneshot.supernet == sha


def test_default_features_add_the_one_shot_scores_of_the_built_in_supernet(tmp_path, monkeypatch):
    """`predictor fit` naming no estimators, no checkpoint in the supernet folder: the ten zero-shot defaults
    and oneshot_acc, oneshot_loss of the built-in NB201 supernet, stated on the way out. The score file keeps
    the zero-shot scores under the protocol without the supernet, where `archscore score` finds them."""
    monkeypatch.setenv("ARCHSCORE_SUPERNET_DIR", str(tmp_path / "empty"))
    folder, file = tmp_path / "p", tmp_path / "scores.jsonl"
    fitted = run(
        "predictor", "fit", "--train", "6", "--seed", "2", "--prior", "none", "--batch-size", "8",
        "--oneshot-num-batches", "1", "--scores", str(file), "--out", str(folder),
    )  # fmt: skip
    assert fitted.exit_code == 0, fitted.output
    builtin = builtin_supernet("nb201")["sha256"]
    assert f"one-shot ones of supernet {builtin[:16]}" in fitted.stdout and "oneshot_loss" in fitted.stdout
    model = PredictorModel.load(folder)
    assert (
        model.estimators == DEFAULT_ESTIMATORS + DEFAULT_ONE_SHOT and model.protocol["oneshot"]["supernet"] == builtin
    )
    zero_shot = Protocol(batch_size=8).hash()
    lines = [json.loads(line) for line in file.read_text().splitlines()]
    assert {r["protocol_hash"] for r in lines if "zico" in r["scores"]} == {zero_shot}
    assert {r["protocol_hash"] for r in lines if "oneshot_acc" in r["scores"]} == {Protocol(**model.protocol).hash()}
    direct = archscore.score(model.train, "nb201", ["oneshot_acc", "oneshot_loss"], protocol=model.protocol)
    assert [list(row[-2:]) for row in model.scores] == [
        [r.scores["oneshot_acc"], r.scores["oneshot_loss"]] for r in direct
    ]
    assert archscore.Predictor("nb101").estimators == DEFAULT_ESTIMATORS  # no supernet of nb101 at hand


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "--out", "x", "-e", "bogus"], "bogus: not a zero-shot estimator"),
        (["fit", "--out", "x", "--truth", "nope"], "--truth"),
        (["fit", "--out", "x", "--train", "3"], "at least 5"),
        (["fit", "--out", "x", "--prior", "bogus"], "prior: 'bogus' is not an ensemble"),
        (["eval", "missing-folder"], "not a predictor file"),
    ],
)
def test_cli_refuses_bad_input_with_exit_2(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("predictor", *args)
    assert result.exit_code == 2 and message in result.stderr, result.output
