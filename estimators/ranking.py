"""Ranking-quality criteria: how well an estimator's scores rank architectures.

Inputs are N architectures with an estimate ``s`` and a ground truth ``g``
(higher is better for both), plus optional canonical ``ids`` (strings or ints)
used only to break ties deterministically.  True rank 0 (1-based: 1) is the
best ground truth.

Tie rule
    * Correlations (pearson, kendall tau-b, spearman) use average ranks /
      tie-corrected statistics as computed by ``scipy.stats``.
    * Every ordering (estimator's top-k / bottom-k, true top-k / bottom-k,
      true ranks) is a stable sort by (value desc, id asc); without ``ids``,
      by (value desc, position asc).  Numpy's unstable default sort is never
      used.  Top-k is the first k of that order, bottom-k the last k.
    * nDCG discounts each architecture by its position in the estimator's order
      above (ties among scores by id, so tied scores are never averaged); ties
      in the ground truth give equal gains, so the ideal DCG does not depend on
      how they are ordered.

Missing-score rule
    An estimate may be None, NaN or -inf when the estimator could not score
    an architecture.  Such items rank LAST for the estimator (as -inf, ties
    among them by id), so every top-k criterion stays defined.  For the
    correlations they are replaced by one value strictly below the minimum
    finite score, i.e. placed together at the bottom.  With fewer than 2
    finite scores the correlations are None.  +inf is rejected (ValueError).

Undefined values (constant estimator, k < 2 for kt_in_top, ...) are None,
never 0 or NaN.  For a fraction K, k = floor(K * N) (with a 1e-9 guard against
float round-off); a K with k < 1 is skipped (absent from report dicts).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats

__all__ = [
    "CRITERIA",
    "DEFAULT_BR_KS",
    "DEFAULT_P_KS",
    "NDCG_P",
    "best_rank_at",
    "format_k",
    "kendall_tau",
    "kt_in_top",
    "ndcg",
    "p_at_bottom",
    "p_at_top",
    "pearson",
    "ranking_report",
    "spearman",
    "worst_rank_at",
]

DEFAULT_P_KS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0)
DEFAULT_BR_KS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.2)
NDCG_P = 1000  # nDCG over the estimator's first P architectures (P = min(NDCG_P, N)), as VKDNW's Table 1

CRITERIA: dict[str, str] = {
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
# Input preparation
# --------------------------------------------------------------------------- #
class _Data:
    """Validated inputs with the two stable orders computed once."""

    def __init__(self, scores, truth, ids=None):
        try:
            s = np.asarray(scores, dtype=float)  # None -> NaN
        except (TypeError, ValueError) as exc:
            raise ValueError(f"scores must be numeric (None/NaN allowed): {exc}") from None
        try:
            g = np.asarray(truth, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"truth must be numeric: {exc}") from None
        if s.ndim != 1 or g.ndim != 1:
            raise ValueError(f"scores and truth must be 1-D, got shapes {s.shape} and {g.shape}")
        if s.shape != g.shape:
            raise ValueError(f"scores and truth must have the same length, got {s.size} and {g.size}")
        n = s.size
        if n == 0:
            raise ValueError("scores and truth are empty (N=0)")
        if not np.all(np.isfinite(g)):
            raise ValueError("truth must be finite (no NaN/inf)")
        if np.any(s == np.inf):
            raise ValueError("scores must not contain +inf (use None/NaN/-inf for missing)")

        self.n = n
        self.truth = g
        self.finite = np.isfinite(s)
        self.n_scored = int(self.finite.sum())
        self.ranked = np.where(self.finite, s, -np.inf)  # missing -> last
        self.filled = _fill_missing(s, self.finite)  # for correlations
        tie = _tie_keys(ids, n)
        # Stable orders by (value desc, tie asc); tie keys are unique ints.
        self.s_order = np.lexsort((tie, -self.ranked))
        self.g_order = np.lexsort((tie, -g))
        self.true_rank = np.empty(n, dtype=np.int64)  # 1-based
        self.true_rank[self.g_order] = np.arange(1, n + 1)


def _tie_keys(ids, n: int) -> np.ndarray:
    """Unique int key per item: position of the item in the stable (id, position) order."""
    if ids is None:
        return np.arange(n)
    ids = list(ids.tolist() if isinstance(ids, np.ndarray) else ids)
    if len(ids) != n:
        raise ValueError(f"ids must have the same length as scores, got {len(ids)} and {n}")
    try:
        order = sorted(range(n), key=ids.__getitem__)  # Python sort is stable
    except TypeError as exc:
        raise ValueError(f"ids must be mutually comparable (all str or all int): {exc}") from None
    key = np.empty(n, dtype=np.int64)
    key[order] = np.arange(n)
    return key


def _fill_missing(s: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """Replace non-finite scores by one value just below the minimum finite score: they rank last,
    and (for Pearson) they sit at the bottom of the range instead of far outside it."""
    if finite.all() or not finite.any():
        return s.copy()
    lo, hi = float(s[finite].min()), float(s[finite].max())
    fill = lo - 1e-6 * max(hi - lo, abs(lo), 1e-12)
    if not math.isfinite(fill):
        fill = float(np.nextafter(lo, -np.inf))
    return np.where(finite, s, fill)


def _k_of(frac: float, n: int) -> int:
    frac = float(frac)
    if not (0.0 < frac <= 1.0):
        raise ValueError(f"K must be a fraction in (0, 1], got {frac!r}")
    return math.floor(frac * n + 1e-9)


def format_k(k: float) -> str:
    """Stable string key for a fraction K: repr of the float, e.g. '0.001', '0.05', '1.0'."""
    return repr(float(k))


# --------------------------------------------------------------------------- #
# Correlations
# --------------------------------------------------------------------------- #
def _corr(fn, x: np.ndarray, y: np.ndarray) -> float | None:
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on constant/degenerate input
        r = float(fn(x, y))
    return r if math.isfinite(r) else None


def _pearson(x, y):
    return stats.pearsonr(x, y).statistic


def _kendall(x, y):
    return stats.kendalltau(x, y, variant="b").statistic


def _spearman(x, y):
    return stats.spearmanr(x, y).statistic


def _correlation(fn, d: _Data) -> float | None:
    if d.n_scored < 2:
        return None
    return _corr(fn, d.filled, d.truth)


def pearson(scores, truth) -> float | None:
    """Pearson linear correlation of scores and truth (missing scores at the bottom)."""
    return _correlation(_pearson, _Data(scores, truth))


def kendall_tau(scores, truth) -> float | None:
    """Kendall tau-b (tie-corrected) of scores and truth (missing scores at the bottom)."""
    return _correlation(_kendall, _Data(scores, truth))


BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_LEVEL = 0.95


def kendall_tau_ci(
    scores, truth, resamples: int = BOOTSTRAP_RESAMPLES, level: float = BOOTSTRAP_LEVEL, seed: int = 0
) -> list[float] | None:
    """Percentile bootstrap confidence interval [low, high] of Kendall tau-b: the architectures are
    resampled with replacement ``resamples`` times (seeded, so the interval is reproducible) and tau-b is
    computed on each resample (missing scores at the bottom, as in ``kendall_tau``). None where tau is
    undefined on most resamples (fewer than 3 architectures, constant scores)."""
    d = _Data(scores, truth)
    if d.n < 3:
        return None
    x, y = d.filled, d.truth
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, d.n, size=(resamples, d.n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant resample: tau is NaN, dropped below
        taus = np.array([stats.kendalltau(x[idx], y[idx]).statistic for idx in samples], dtype=float)
    taus = taus[np.isfinite(taus)]
    if taus.size < resamples / 2:
        return None
    low, high = np.percentile(taus, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return [float(low), float(high)]


def spearman(scores, truth) -> float | None:
    """Spearman rho with average ranks for ties (missing scores at the bottom)."""
    return _correlation(_spearman, _Data(scores, truth))


# --------------------------------------------------------------------------- #
# Top-K criteria (K is a fraction; k = floor(K*N); None when k < 1)
# --------------------------------------------------------------------------- #
def _p_top(d: _Data, k: int) -> float:
    return len(set(d.s_order[:k].tolist()) & set(d.g_order[:k].tolist())) / k


def _p_bottom(d: _Data, k: int) -> float:
    return len(set(d.s_order[-k:].tolist()) & set(d.g_order[-k:].tolist())) / k


def _kt_top(d: _Data, k: int) -> float | None:
    if k < 2:
        return None
    idx = d.s_order[:k]
    return _corr(_kendall, d.filled[idx], d.truth[idx])


def _br(d: _Data, k: int) -> float:
    return int(d.true_rank[d.s_order[:k]].min()) / d.n


def _wr(d: _Data, k: int) -> float:
    return int(d.true_rank[d.s_order[:k]].max()) / d.n


def _at(fn, scores, truth, frac, ids):
    d = _Data(scores, truth, ids)
    k = _k_of(frac, d.n)
    return None if k < 1 else fn(d, k)


def p_at_top(scores, truth, frac, ids=None) -> float | None:
    """Share of the estimator's top-k that are in the true top-k."""
    return _at(_p_top, scores, truth, frac, ids)


def p_at_bottom(scores, truth, frac, ids=None) -> float | None:
    """Share of the estimator's bottom-k that are in the true bottom-k."""
    return _at(_p_bottom, scores, truth, frac, ids)


def kt_in_top(scores, truth, frac, ids=None) -> float | None:
    """Kendall tau-b between scores and truth over the estimator's top-k (None if k<2 or constant)."""
    return _at(_kt_top, scores, truth, frac, ids)


def best_rank_at(scores, truth, frac, ids=None) -> float | None:
    """(Best 1-based true rank among the estimator's top-k) / N, in (0, 1]; lower is better."""
    return _at(_br, scores, truth, frac, ids)


def worst_rank_at(scores, truth, frac, ids=None) -> float | None:
    """(Worst 1-based true rank among the estimator's top-k) / N; lower is better."""
    return _at(_wr, scores, truth, frac, ids)


# --------------------------------------------------------------------------- #
# nDCG (VKDNW's top-heavy criterion)
# --------------------------------------------------------------------------- #
_EXPM1_MAX = 512.0  # 2**512 - 1 and sums of such gains stay far inside the float range


def _gains(g: np.ndarray) -> np.ndarray | None:
    """Gains 2**g - 1, or the same times one positive constant (nDCG is a ratio: the constant cancels).
    None when a gain would be negative (g < 0) or every gain is 0 (every g is 0)."""
    top = float(g.max())
    if float(g.min()) < 0 or top <= 0:
        return None
    if top <= _EXPM1_MAX:
        return np.expm1(g * math.log(2.0))  # exact for small g, where 2**g - 1 would cancel
    return np.exp2(g - top) - np.exp2(-top)  # (2**g - 1) / 2**top, without overflow


def _ndcg(d: _Data, p: int) -> float | None:
    gains = _gains(d.truth)
    if gains is None:
        return None
    k = min(p, d.n)
    discount = 1.0 / np.log2(np.arange(2, k + 2))  # position j (1-based) -> 1 / log2(j + 1)
    ideal = float(np.sort(gains)[::-1][:k] @ discount)
    if not ideal > 0:  # the gains underflowed to 0
        return None
    return float(gains[d.s_order[:k]] @ discount) / ideal


def _p_of(p) -> int:
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1:
        raise ValueError(f"P must be an int >= 1, got {p!r}")
    return int(p)


def ndcg(scores, truth, ids=None, p: int = NDCG_P) -> float | None:
    """Normalised discounted cumulative gain of the estimator's ranking, VKDNW's top-heavy criterion
    (Týbl & Neumann, CVPR 2025; repository ondratybl/VKDNW, ``NB201/tss_utils.py``, ``get_metrics``:
    sklearn's ``ndcg_score`` with relevance ``2**accuracy - 1``, ``k=1000``, ``ignore_ties=True``).

    With P = min(p, N) and the estimator's order a_1, a_2, ... (stable, missing scores last):
    DCG = sum over j = 1..P of (2**g(a_j) - 1) / log2(j + 1); nDCG = DCG / IDCG, IDCG the same sum
    over the ground truth's own order. In [0, 1]; 1 for a ranking that puts the best ground truth
    first, then the next best, and so on. None when a ground truth is negative (negative gain) or every
    ground truth is 0 (IDCG = 0)."""
    return _ndcg(_Data(scores, truth, ids), _p_of(p))


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #
def _by_k(fn, d: _Data, ks) -> dict:
    out = {}
    for frac in ks:
        k = _k_of(frac, d.n)
        if k >= 1:
            out[format_k(frac)] = fn(d, k)
    return out


def ranking_report(scores, truth, ids=None, p_ks=DEFAULT_P_KS, br_ks=DEFAULT_BR_KS, ndcg_p: int = NDCG_P) -> dict:
    """All criteria as a JSON-ready dict (plain floats, None for undefined, K-keyed dicts).

    Keys: n, n_scored, pearson, kendall_tau, spearman, p_at_top, p_at_bottom,
    kt_in_top (over ``p_ks``), br_at, wr_at (over ``br_ks``), ndcg (over the
    first ``ndcg_p``).  Ks with k < 1 are absent.
    """
    ndcg_p = _p_of(ndcg_p)
    d = _Data(scores, truth, ids)
    return {
        "n": d.n,
        "n_scored": d.n_scored,
        "pearson": _correlation(_pearson, d),
        "kendall_tau": _correlation(_kendall, d),
        "spearman": _correlation(_spearman, d),
        "p_at_top": _by_k(_p_top, d, p_ks),
        "p_at_bottom": _by_k(_p_bottom, d, p_ks),
        "kt_in_top": _by_k(_kt_top, d, p_ks),
        "br_at": _by_k(_br, d, br_ks),
        "wr_at": _by_k(_wr, d, br_ks),
        "ndcg": _ndcg(d, ndcg_p),
    }
