"""Population estimators (archscore.estimators.population): the aggregations against a plain computation
of ranks, an architecture a member cannot score, and the catalog's population estimators."""

from __future__ import annotations

import math
import random

import pytest

from archscore.estimators.population import aggregate


def average_ranks(values: list[float]) -> list[float]:
    """1-based ranks from the lowest value, ties sharing the mean of the positions they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def rows_with_ties(n: int, seed: int) -> list[dict[str, float]]:
    rng = random.Random(seed)
    return [
        {"a": rng.choice([0.5, 1.0, 2.0, 3.5]), "b": rng.gauss(0, 1), "c": float(rng.randint(0, 3))} for _ in range(n)
    ]


@pytest.mark.parametrize("aggregation", ["rank_sum", "log_rank"])
def test_aggregations_equal_a_plain_computation(aggregation):
    rows = rows_with_ties(40, seed=3)
    members = ("a", "b", "c")
    ranks = {m: average_ranks([r[m] for r in rows]) for m in members}
    expected = [
        sum(ranks[m][i] if aggregation == "rank_sum" else math.log(ranks[m][i] / len(rows)) for m in members)
        for i in range(len(rows))
    ]
    assert aggregate(members, aggregation, rows) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("aggregation", ["rank_sum", "log_rank"])
def test_the_weighted_form_weighs_each_members_term(aggregation):
    rows = rows_with_ties(30, seed=4)
    members, weights = ("a", "b", "c"), (0.5, 2.0, 1.25)
    ranks = {m: average_ranks([r[m] for r in rows]) for m in members}
    expected = [
        sum(
            w * (ranks[m][i] if aggregation == "rank_sum" else math.log(ranks[m][i] / len(rows)))
            for m, w in zip(members, weights)
        )
        for i in range(len(rows))
    ]
    assert aggregate(members, aggregation, rows, weights) == pytest.approx(expected, rel=1e-12)
    assert aggregate(members, aggregation, rows, (1.0, 1.0, 1.0)) == aggregate(members, aggregation, rows)
    with pytest.raises(ValueError, match="2 weights for 3 members"):
        aggregate(members, aggregation, rows, (1.0, 2.0))


def test_a_member_value_an_architecture_lacks_ranks_lowest():
    rows = rows_with_ties(12, seed=5)
    rows[4]["b"] = None  # type: ignore[assignment]
    del rows[7]["b"]
    lowest = min(r["b"] for r in rows if r.get("b") is not None) - 1
    as_lowest = [{**r, "b": lowest if r.get("b") is None else r["b"]} for r in rows]
    assert aggregate(("a", "b"), "log_rank", rows) == aggregate(("a", "b"), "log_rank", as_lowest)


def test_adding_an_architecture_changes_only_the_ranks():
    rows = rows_with_ties(10, seed=7)
    before = aggregate(("a", "b"), "rank_sum", rows)
    after = aggregate(("a", "b"), "rank_sum", [*rows, {"a": 100.0, "b": 100.0}])
    assert after[-1] == 2 * 11  # the best in both members ranks last (N) in each
    assert after[:-1] == before  # above every other: their ranks are unchanged


def test_unknown_aggregation_is_refused():
    with pytest.raises(ValueError, match="unknown aggregation 'mean'"):
        aggregate(("a",), "mean", [{"a": 1.0}])


# each built-in ensemble and the space its members were chosen on (benchmarks/select_ensemble.py)
ENSEMBLE_SPACES = {"ensemble:default": "nb201", "ensemble:nb101": "nb101", "ensemble:nb301": "nb301"}


def test_every_built_in_ensemble_names_the_space_it_was_chosen_on():
    from archscore.estimators.catalog import POPULATION

    assert set(ENSEMBLE_SPACES) == {name for name in POPULATION if name.startswith("ensemble:")}


@pytest.mark.parametrize("name", sorted(ENSEMBLE_SPACES))
def test_an_ensemble_is_the_log_rank_of_its_members_over_the_call(name):
    """Through the library: Σ log(rank/N) of the members over the architectures of the call, from the
    members' own scores."""
    import archscore
    from archscore.estimators.catalog import POPULATION

    info = POPULATION[name]
    assert info.aggregation == "log_rank" and not info.weights
    space = ENSEMBLE_SPACES[name]
    cells = archscore.get_space(space).sample(4, seed=3)
    protocol = {"batch_size": 8}
    together = archscore.score(cells, space=space, estimators=[name, *info.members], protocol=protocol)
    members = [{m: r.scores[m] for m in info.members} for r in together]
    n = len(cells)
    ranks = {m: average_ranks([row[m] for row in members]) for m in info.members}
    for i, record in enumerate(together):
        want = sum(math.log(ranks[m][i] / n) for m in info.members)
        assert record.scores[name] == pytest.approx(want, abs=1e-12)


def test_the_ensemble_selection_never_sees_the_report_cells_and_ranks_subsets_by_tau():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import select_ensemble

    from archscore.estimators.spaces import get_space
    from archscore.estimators.truth import resolve_truth

    space = get_space("nb201")
    truth = resolve_truth("nb201", "cifar10_test")
    pool = space.sample(60, seed=11)
    report = {space.to_string(a) for a in space.sample(1000, seed=7)}
    rng = random.Random(0)
    records = []
    for arch in pool:
        accuracy = truth.get(arch)
        records.append(
            {
                "arch": space.to_string(arch),
                "canonical_key": space.canonical_key(arch),
                "scores": {"good": accuracy + rng.gauss(0, 0.5), "noise": rng.gauss(0, 1)},
            }
        )
    split = select_ensemble.selection_split(records, "nb201", ["1000:7"])
    assert split and all(r["arch"] not in report for r in split)
    assert len(split) == sum(space.to_string(a) not in report for a in pool)
    ranked = select_ensemble.ranked_subsets(split, "nb201", "cifar10_test", ["noise", "good"], 2)
    assert ranked[0][1] == ("good",) and ranked[-1][1] == ("noise",)
    assert [tau for tau, _ in ranked] == sorted((tau for tau, _ in ranked), reverse=True)
    pairs_only = select_ensemble.ranked_subsets(split, "nb201", "cifar10_test", ["noise", "good"], 2, min_size=2)
    assert [members for _, members in pairs_only] == [("noise", "good")]
    # a sample of the published cells is excluded as score_table.py and evaluate --from-published draw it
    from archscore.estimators.evaluation import published_sample

    nb301 = get_space("nb301")
    reported = {nb301.to_string(a) for a in published_sample("nb301", 200, 0)}
    genotypes = [{"arch": nb301.to_string(a), "scores": {}} for a in published_sample("nb301", 60, 5)]
    kept = select_ensemble.selection_split(genotypes, "nb301", ["published:200:0"])
    assert kept and [r["arch"] for r in kept] == [r["arch"] for r in genotypes if r["arch"] not in reported]
    assert len(kept) < len(genotypes)
    # tables scored apart are joined by architecture: those every table holds, with the scores of all
    other = [{"arch": r["arch"], "scores": {"more": 1.0}} for r in records[::2]]
    joined = select_ensemble.joined([records, other])
    assert [r["arch"] for r in joined] == [r["arch"] for r in records[::2]]
    assert all({"good", "noise", "more"} <= set(r["scores"]) for r in joined)


def test_a_space_s_ensemble_is_its_own_where_one_was_chosen_on_it():
    from archscore.estimators.catalog import POPULATION, space_ensemble

    for name, space in ENSEMBLE_SPACES.items():
        assert space_ensemble(space) is POPULATION[name]
    assert space_ensemble("nds_resnet") is POPULATION["ensemble:default"]
