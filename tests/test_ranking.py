import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats

from archscore.estimators import ranking as R

N = 10
G = np.arange(N, dtype=float)  # item 9 is truly best (true rank 1), item 0 worst


def test_perfect_estimator():
    s = 2 * G + 1
    assert R.kendall_tau(s, G) == pytest.approx(1.0)
    assert R.spearman(s, G) == pytest.approx(1.0)
    assert R.pearson(s, G) == pytest.approx(1.0)
    for frac in (0.1, 0.2, 0.5, 1.0):
        k = int(frac * N)
        assert R.p_at_top(s, G, frac) == 1.0
        assert R.p_at_bottom(s, G, frac) == 1.0
        assert R.best_rank_at(s, G, frac) == pytest.approx(1 / N)
        assert R.worst_rank_at(s, G, frac) == pytest.approx(k / N)
    assert R.kt_in_top(s, G, 0.5) == pytest.approx(1.0)


def test_reversed_estimator():
    s = -G
    assert R.kendall_tau(s, G) == pytest.approx(-1.0)
    assert R.spearman(s, G) == pytest.approx(-1.0)
    assert R.p_at_top(s, G, 0.1) == 0.0
    assert R.p_at_top(s, G, 0.5) == 0.0
    assert R.p_at_top(s, G, 1.0) == 1.0  # k = N: every item is in both sets
    assert R.p_at_bottom(s, G, 0.3) == 0.0
    assert R.best_rank_at(s, G, 0.1) == 1.0  # estimator's top-1 is item 0, true rank 10
    assert R.best_rank_at(s, G, 0.2) == pytest.approx(0.9)
    assert R.worst_rank_at(s, G, 0.2) == 1.0
    assert R.kt_in_top(s, G, 0.5) == pytest.approx(-1.0)


def test_kt_in_top_only_sees_the_top_k():
    s = G.copy()
    s[[7, 8, 9]] = [30.0, 20.0, 10.0]  # right top-3 set, reversed inside it
    assert R.p_at_top(s, G, 0.3) == 1.0
    assert R.kt_in_top(s, G, 0.3) == pytest.approx(-1.0)
    assert R.kendall_tau(s, G) > 0.8
    assert R.kt_in_top(s, G, 0.1) is None  # k = 1 < 2


def test_score_ties_resolved_by_id():
    s = G.copy()
    s[[8, 9]] = 100.0  # items 8 and 9 tie for the estimator's first place
    # No ids: position asc -> item 8 first (true rank 2).
    assert R.p_at_top(s, G, 0.1) == 0.0
    assert R.best_rank_at(s, G, 0.1) == pytest.approx(0.2)
    # ids where item 9 has the smaller id -> item 9 first (true rank 1).
    ids = [f"arch{N - 1 - i}" for i in range(N)]
    assert R.p_at_top(s, G, 0.1, ids=ids) == 1.0
    assert R.best_rank_at(s, G, 0.1, ids=ids) == pytest.approx(0.1)
    # String ids compare as strings: "10" < "9".
    ids = [str(i) for i in range(N)]
    ids[8], ids[9] = "9", "10"
    assert R.p_at_top(s, G, 0.1, ids=ids) == 1.0


def test_truth_ties_resolved_by_id():
    g = np.array([0, 1, 2, 3, 4, 5, 6, 7, 9, 9], dtype=float)  # items 8, 9 tie for best
    s = G.copy()  # estimator's top-1 is item 9
    assert R.p_at_top(s, g, 0.1) == 0.0  # true top-1 = item 8 (position)
    assert R.best_rank_at(s, g, 0.1) == pytest.approx(0.2)
    ids = [100 - i for i in range(N)]  # item 9 has the smallest id
    assert R.p_at_top(s, g, 0.1, ids=ids) == 1.0
    assert R.best_rank_at(s, g, 0.1, ids=ids) == pytest.approx(0.1)


def test_constant_estimator():
    s = np.zeros(N)
    rep = R.ranking_report(s, G)
    assert rep["pearson"] is None and rep["kendall_tau"] is None and rep["spearman"] is None
    # Order falls back to position: top-5 = items 0..4 = true bottom-5.
    assert rep["p_at_top"]["0.5"] == 0.0
    assert rep["p_at_bottom"]["0.5"] == 0.0
    assert rep["br_at"]["0.1"] == 1.0
    assert rep["kt_in_top"]["0.5"] is None
    rep = R.ranking_report(s, G, ids=[-i for i in range(N)])  # reversed ids
    assert rep["p_at_top"]["0.5"] == 1.0
    assert rep["br_at"]["0.1"] == pytest.approx(0.1)
    json.dumps(rep, allow_nan=False)


def test_k_below_one_is_skipped():
    rep = R.ranking_report(2 * G, G)
    assert set(rep["p_at_top"]) == {"0.1", "0.5", "1.0"}
    assert set(rep["p_at_bottom"]) == set(rep["kt_in_top"]) == {"0.1", "0.5", "1.0"}
    assert set(rep["br_at"]) == set(rep["wr_at"]) == {"0.1", "0.2"}
    assert "0.05" not in rep["p_at_top"]
    assert R.p_at_top(G, G, 0.05) is None
    assert R.best_rank_at(G, G, 0.05) is None


def test_results_keyed_by_k_not_position():
    rep = R.ranking_report(-G, G, p_ks=(1.0, 0.5), br_ks=(0.2, 0.1))
    assert rep["p_at_top"] == {"1.0": 1.0, "0.5": 0.0}
    assert rep["br_at"] == {"0.2": pytest.approx(0.9), "0.1": 1.0}
    assert R.format_k(0.001) == "0.001" and R.format_k(0.05) == "0.05" and R.format_k(1) == "1.0"


def test_k_is_floor_of_fraction():
    g = np.arange(100, dtype=float)
    rep = R.ranking_report(g, g)
    assert rep["wr_at"] == {"0.01": 0.01, "0.05": 0.05, "0.1": 0.1, "0.2": 0.2}
    assert "0.005" not in rep["wr_at"]
    assert R.worst_rank_at(g, g, 0.029) == pytest.approx(0.02)  # floor(2.9) = 2


def test_missing_scores_rank_last():
    s = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, None, float("nan"), -math.inf]
    rep = R.ranking_report(s, G)
    assert rep["n"] == N and rep["n_scored"] == 7
    # Estimator order: 6, 5, ..., 0, then missing 7, 8, 9 (by position).
    assert rep["br_at"]["0.1"] == pytest.approx(0.4)  # item 6 has true rank 4
    assert rep["p_at_top"]["0.1"] == 0.0
    assert rep["p_at_top"]["1.0"] == 1.0
    assert R.p_at_bottom(s, G, 0.3) == 0.0  # {7, 8, 9} vs true bottom {0, 1, 2}
    assert R.p_at_bottom(np.array(s, dtype=float), -G, 0.3) == 1.0
    # Correlations: missing placed together below the minimum finite score.
    below = np.r_[np.arange(7.0), [-1.0, -1.0, -1.0]]
    assert rep["kendall_tau"] == pytest.approx(stats.kendalltau(below, G).statistic)
    assert rep["spearman"] == pytest.approx(stats.spearmanr(below, G).statistic)
    assert rep["pearson"] is not None and -1 <= rep["pearson"] <= 1
    # Ties among missing items broken by id: last item is the largest id.
    assert R.p_at_bottom(s, G, 0.1) == 0.0  # last = item 9 (position)
    assert R.p_at_bottom(s, G, 0.1, ids=[-i for i in range(N)]) == 0.0  # last = item 7
    assert R.p_at_bottom(s, -G, 0.1) == 1.0  # true bottom of -G is item 9
    assert R.p_at_bottom(s, -G, 0.1, ids=[-i for i in range(N)]) == 0.0
    json.dumps(rep, allow_nan=False)


def test_fewer_than_two_finite_scores_gives_no_correlation():
    s = [1.0] + [None] * (N - 1)
    rep = R.ranking_report(s, G)
    assert rep["n_scored"] == 1
    assert rep["pearson"] is None and rep["kendall_tau"] is None and rep["spearman"] is None
    assert rep["p_at_top"]["0.1"] == 0.0  # item 0 first; true top-1 is item 9


def _tau_b(x, y):
    c = d = tx = ty = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        a, b = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        tx += a == 0
        ty += b == 0
        c += a * b > 0
        d += a * b < 0
    n0 = len(x) * (len(x) - 1) / 2
    den = (n0 - tx) * (n0 - ty)
    return None if den == 0 else (c - d) / math.sqrt(den)


def test_correlations_match_references_on_random_data_with_ties():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 6, 40).astype(float)
    g = rng.integers(0, 8, 40).astype(float)
    assert R.kendall_tau(s, g) == pytest.approx(_tau_b(s, g))
    assert R.kendall_tau(s, g) == pytest.approx(stats.kendalltau(s, g, variant="b").statistic)
    rs, rg = stats.rankdata(s), stats.rankdata(g)  # average ranks
    assert R.spearman(s, g) == pytest.approx(np.corrcoef(rs, rg)[0, 1])
    assert R.spearman(s, g) == pytest.approx(stats.spearmanr(s, g).statistic)
    assert R.pearson(s, g) == pytest.approx(np.corrcoef(s, g)[0, 1])


def test_top_k_criteria_match_reference_on_random_data_with_ties():
    rng = np.random.default_rng(1)
    n = 50
    s = rng.integers(0, 12, n).astype(float)
    g = rng.integers(0, 7, n).astype(float)
    checked_kt = 0
    ids = [f"a{rng.integers(1000):04d}{i}" for i in range(n)]
    s_ord = sorted(range(n), key=lambda i: (-s[i], ids[i]))
    g_ord = sorted(range(n), key=lambda i: (-g[i], ids[i]))
    rank = {item: r + 1 for r, item in enumerate(g_ord)}
    for frac in (0.02, 0.1, 0.2, 0.5):
        k = int(frac * n)
        top = s_ord[:k]
        assert R.p_at_top(s, g, frac, ids) == len(set(top) & set(g_ord[:k])) / k
        assert R.p_at_bottom(s, g, frac, ids) == len(set(s_ord[-k:]) & set(g_ord[-k:])) / k
        assert R.best_rank_at(s, g, frac, ids) == min(rank[i] for i in top) / n
        assert R.worst_rank_at(s, g, frac, ids) == max(rank[i] for i in top) / n
        ref = _tau_b(s[top], g[top])
        assert R.kt_in_top(s, g, frac, ids) == (None if ref is None else pytest.approx(ref))
        checked_kt += ref is not None
    assert checked_kt >= 2


def test_report_is_json_ready_plain_python():
    rng = np.random.default_rng(2)
    g = rng.normal(size=1000)
    s = g + rng.normal(size=1000)
    s[:5] = np.nan
    rep = R.ranking_report(s, g, ids=np.arange(1000))
    assert set(rep) == {"n", "n_scored", *R.CRITERIA}
    assert set(rep["p_at_top"]) == {R.format_k(k) for k in R.DEFAULT_P_KS}
    assert set(rep["br_at"]) == {R.format_k(k) for k in R.DEFAULT_BR_KS}
    assert type(rep["n"]) is int and type(rep["n_scored"]) is int and rep["n_scored"] == 995
    for name in ("pearson", "kendall_tau", "spearman"):
        assert type(rep[name]) is float
    assert rep["ndcg"] is None  # a normal truth has negative values: negative gains
    assert type(R.ranking_report(s, g - g.min(), ids=np.arange(1000))["ndcg"]) is float
    for name in ("p_at_top", "p_at_bottom", "kt_in_top", "br_at", "wr_at"):
        for v in rep[name].values():
            assert v is None or type(v) is float
    assert rep["kt_in_top"]["0.001"] is None  # k = 1
    json.dumps(rep, allow_nan=False)


def test_criteria_directions():
    assert R.CRITERIA == {
        "pearson": "higher",
        "kendall_tau": "higher",
        "spearman": "higher",
        "p_at_top": "higher",
        "p_at_bottom": "higher",
        "kt_in_top": "higher",
        "br_at": "lower",
        "wr_at": "lower",
        "ndcg": "higher",
    }


# --------------------------------------------------------------------------- #
# nDCG: gains 2**g - 1, discount 1 / log2(j + 1), P = min(1000, N)
# --------------------------------------------------------------------------- #
L3 = math.log2(3)


def _ndcg_loop(s, g, ids, p):
    """Plain-Python reference: order by (score desc, id asc), missing scores last; ideal by truth desc."""
    n = len(g)
    key = [-math.inf if x is None or not math.isfinite(x) else x for x in s]
    order = sorted(range(n), key=lambda i: (-key[i], ids[i]))
    ideal = sorted(g, reverse=True)
    dcg = idcg = 0.0
    for j in range(min(p, n)):
        dcg += (2.0 ** g[order[j]] - 1) / math.log2(j + 2)
        idcg += (2.0 ** ideal[j] - 1) / math.log2(j + 2)
    return dcg / idcg


def test_ndcg_of_the_true_order_is_one():
    assert R.ndcg(G, G) == 1.0
    assert R.ndcg(np.exp(G), G, p=3) == 1.0  # any increasing transform of the truth
    acc = np.array([93.5, 91.2, 91.2, 88.0, 70.1])  # accuracies in percent, a tie in the truth
    assert R.ndcg(acc, acc) == 1.0
    assert R.ndcg([5.0, 3.0, 4.0, 1.0, 0.0], acc) == 1.0  # the tied pair swapped: same gains, same sum


def test_ndcg_by_hand():
    g = [2.0, 1.0, 0.0]  # gains 3, 1, 0; ideal DCG = 3 + 1/log2(3) = 3.6309
    # estimator order 1, 0, 2: DCG = 1/log2(2) + 3/log2(3) + 0 = 2.8928; 2.8928 / 3.6309 = 0.79671
    assert R.ndcg([1.0, 2.0, 0.0], g) == pytest.approx((1 + 3 / L3) / (3 + 1 / L3))
    assert R.ndcg([1.0, 2.0, 0.0], g) == pytest.approx(0.79671, abs=1e-5)
    assert R.ndcg([1.0, 2.0, 0.0], g, p=1) == pytest.approx(1 / 3)  # first place only: 1 of 3
    # reversed: order 2, 1, 0: DCG = 0 + 1/log2(3) + 3/log2(4)
    assert R.ndcg([0.0, 1.0, 2.0], g) == pytest.approx((1 / L3 + 1.5) / (3 + 1 / L3))
    assert R.ndcg([0.0, 1.0, 2.0], g, p=1) == 0.0
    assert R.ndcg([0.0, 1.0, 2.0], g, p=10**6) == R.ndcg([0.0, 1.0, 2.0], g)  # P beyond N: all N


def test_ndcg_is_top_heavy():
    acc = np.array([94.0, 93.0, 92.0, 91.0, 90.0, 89.0])
    top_swapped = acc.copy()
    top_swapped[[0, 1]] = top_swapped[[1, 0]]
    bottom_swapped = acc.copy()
    bottom_swapped[[4, 5]] = bottom_swapped[[5, 4]]
    assert R.kendall_tau(top_swapped, acc) == pytest.approx(R.kendall_tau(bottom_swapped, acc))
    assert R.ndcg(top_swapped, acc) < R.ndcg(bottom_swapped, acc) < 1.0


def test_ndcg_ties_in_scores_follow_the_tie_rule():
    g = [0.0, 2.0, 1.0]  # gains 0, 3, 1
    s = [5.0, 5.0, 0.0]  # items 0 and 1 tie for the estimator's first place
    # no ids: by position, item 0 (gain 0) first, then item 1 (gain 3); never an averaged gain
    assert R.ndcg(s, g) == pytest.approx((3 / L3 + 0.5) / (3 + 1 / L3))
    # ids that put item 1 first
    assert R.ndcg(s, g, ids=["b", "a", "c"]) == pytest.approx(3.5 / (3 + 1 / L3))
    assert R.ranking_report(s, g, ids=["b", "a", "c"])["ndcg"] == R.ndcg(s, g, ids=["b", "a", "c"])


def test_ndcg_missing_scores_rank_last_and_undefined_is_none():
    g = [2.0, 1.0, 0.0]
    # item 0 unscored: order 2, 1, 0 (the reversed order)
    for missing in (None, float("nan"), -math.inf):
        assert R.ndcg([missing, 1.0, 2.0], g) == pytest.approx((1 / L3 + 1.5) / (3 + 1 / L3))
    assert R.ndcg([None, None, None], g) == 1.0  # all missing: by position, which is the true order here
    assert R.ndcg([None, None, None], g, ids=[3, 2, 1]) == pytest.approx((1 / L3 + 1.5) / (3 + 1 / L3))
    assert R.ndcg(G, np.zeros(N)) is None  # every gain 0: no ideal to divide by
    assert R.ndcg(G, G - 1) is None  # a negative truth: a negative gain
    rep = R.ranking_report(G, G - 1)
    assert rep["ndcg"] is None and rep["kendall_tau"] == pytest.approx(1.0)
    json.dumps(rep, allow_nan=False)


def test_ndcg_of_large_truths_does_not_overflow():
    g = [2000.0, 1999.0, 0.0]  # 2**2000 is past the float range; gains scaled by 2**-2000
    assert R.ndcg([1.0, 2.0, 0.0], g) == pytest.approx((0.5 + 1 / L3) / (1 + 0.5 / L3))
    assert R.ndcg(g, g) == 1.0


def test_ndcg_matches_a_plain_loop_on_random_accuracies_with_ties():
    rng = np.random.default_rng(3)
    n = 60
    g = np.round(rng.uniform(60, 95, n), 1)
    g[:6] = g[6]  # ties in the truth
    s = np.round(g + rng.normal(0, 5, n))  # ties in the scores
    ids = [f"a{rng.integers(1000):04d}{i}" for i in range(n)]
    checked = 0
    for p in (1, 5, 20, 60, 1000):
        expected = _ndcg_loop(s.tolist(), g.tolist(), ids, p)
        assert R.ndcg(s, g, ids, p=p) == pytest.approx(expected, rel=1e-12)
        checked += 0 < expected < 1
    assert checked >= 3
    s_missing = s.tolist()
    s_missing[10:15] = [None] * 5
    assert R.ndcg(s_missing, g, ids) == pytest.approx(_ndcg_loop(s_missing, g.tolist(), ids, 1000), rel=1e-12)
    assert R.ranking_report(s, g, ids)["ndcg"] == R.ndcg(s, g, ids)
    assert R.ranking_report(s, g, ids, ndcg_p=5)["ndcg"] == R.ndcg(s, g, ids, p=5)


@pytest.mark.parametrize("p", [0, -1, 2.5, True, None])
def test_invalid_ndcg_p_raises(p):
    with pytest.raises(ValueError):
        R.ndcg(G, G, p=p)
    with pytest.raises(ValueError):
        R.ranking_report(G, G, ndcg_p=p)


@pytest.mark.parametrize(
    "scores, truth, kw",
    [
        ([1.0, 2.0], [1.0, 2.0, 3.0], {}),  # length mismatch
        ([], [], {}),  # N = 0
        (np.ones((2, 2)), np.ones((2, 2)), {}),  # not 1-D
        ([1.0, 2.0], [1.0, np.nan], {}),  # non-finite truth
        ([1.0, np.inf], [1.0, 2.0], {}),  # +inf score
        ([1.0, 2.0], [1.0, 2.0], {"ids": [1]}),  # ids length mismatch
        ([1.0, 2.0], [1.0, 2.0], {"ids": [1, "a"]}),  # incomparable ids
    ],
)
def test_invalid_inputs_raise(scores, truth, kw):
    with pytest.raises(ValueError):
        R.ranking_report(scores, truth, **kw)


def test_invalid_k_raises():
    with pytest.raises(ValueError):
        R.p_at_top(G, G, 0.0)
    with pytest.raises(ValueError):
        R.best_rank_at(G, G, 1.5)
