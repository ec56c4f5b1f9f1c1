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
    got = aggregate(members, aggregation, rows)
    assert all(reason is None for _, reason in got)
    assert [value for value, _ in got] == pytest.approx(expected, rel=1e-12)


def test_an_architecture_a_member_cannot_score_has_no_value_and_leaves_the_population():
    rows = rows_with_ties(12, seed=5)
    rows[4]["b"] = None  # type: ignore[assignment]
    got = aggregate(("a", "b"), "log_rank", rows)
    assert got[4] == (None, "member b has no value for this architecture")
    complete = rows[:4] + rows[5:]
    assert [v for v, _ in got[:4] + got[5:]] == [v for v, _ in aggregate(("a", "b"), "log_rank", complete)]
    # a member missing from the row altogether reads the same
    assert aggregate(("a", "z"), "rank_sum", rows[:2])[0] == (None, "member z has no value for this architecture")


def test_adding_an_architecture_changes_only_the_ranks():
    rows = rows_with_ties(10, seed=7)
    before = [v for v, _ in aggregate(("a", "b"), "rank_sum", rows)]
    after = [v for v, _ in aggregate(("a", "b"), "rank_sum", [*rows, {"a": 100.0, "b": 100.0}])]
    assert after[-1] == 2 * 11  # the best in both members ranks last (N) in each
    assert after[:-1] == before  # below every other: their ranks are unchanged


def test_unknown_aggregation_is_refused():
    with pytest.raises(ValueError, match="unknown aggregation 'mean'"):
        aggregate(("a",), "mean", [{"a": 1.0}])
