"""Complexity-level bias: the criteria inside bins of equal size by FLOPs and by params,
beside the global figure. An estimator that only tracks size ranks well globally and poorly inside
the bins, where size hardly varies."""

from __future__ import annotations

import statistics
from typing import Any

from archscore.estimators.analysis.registry import Study, register_study
from archscore.estimators.ranking import BOOTSTRAP_LEVEL, BOOTSTRAP_RESAMPLES, kendall_tau, kendall_tau_ci
from archscore.estimators.spaces.base import COST

MEASURES = {"flops": 1, "params": 0}  # index into space.cost()
UNITS = {"flops": "MFLOPs", "params": "M params"}


def _split(order: list[int], bins: int) -> list[list[int]]:
    """``order`` cut into ``bins`` consecutive parts whose sizes differ by at most one."""
    size, extra = divmod(len(order), bins)
    parts, start = [], 0
    for b in range(bins):
        end = start + size + (1 if b < extra else 0)
        parts.append(order[start:end])
        start = end
    return parts


def run(ctx) -> dict:
    if not ctx.space.has(COST):
        raise ValueError(f"{ctx.space.name} has no cost model: complexity bias needs params and FLOPs")
    bins = int(ctx.options.get("bins", 5))
    n = len(ctx.archs)
    if not 1 <= bins <= n // 2:
        raise ValueError(f"bins must be between 1 and {n // 2} (half the {n} architectures), got {bins}")
    scores, truth, ids = ctx.scores(), ctx.truth, ctx.ids
    costs = [ctx.space.cost(a) for a in ctx.archs]
    result: dict[str, Any] = {
        "bins": bins,
        "global": {e: kendall_tau(scores[e], truth) for e in ctx.estimators},
        "by": {},
        "interval": INTERVAL,
    }
    for measure, index in MEASURES.items():
        order = sorted(range(n), key=lambda i: (costs[i][index], ids[i]))
        rows: list[dict[str, Any]] = []
        for b, members in enumerate(_split(order, bins)):
            pairs = {e: ([scores[e][i] for i in members], [truth[i] for i in members]) for e in ctx.estimators}
            taus = {e: kendall_tau(*pairs[e]) for e in ctx.estimators}
            row: dict[str, Any] = {
                "bin": b,
                "n": len(members),
                "range": [costs[members[0]][index], costs[members[-1]][index]],
                "kendall_tau": taus,
                # percentile bootstrap over the bin's architectures (INTERVAL says how)
                "kendall_tau_ci": {e: _interval(taus[e], kendall_tau_ci(*pairs[e])) for e in ctx.estimators},
            }
            row["label"] = bin_label(row, measure).replace("\n", " ")
            rows.append(row)
        mean_in_bins = {}
        for e in ctx.estimators:
            values = [r["kendall_tau"][e] for r in rows if r["kendall_tau"][e] is not None]
            mean_in_bins[e] = statistics.fmean(values) if values else None
        result["by"][measure] = {"bins": rows, "mean_in_bin_tau": mean_in_bins}
    return result


INTERVAL = {
    "method": "percentile bootstrap: the bin's architectures resampled with replacement",
    "resamples": BOOTSTRAP_RESAMPLES,
    "level": BOOTSTRAP_LEVEL,
    "seed": 0,
}


def _interval(tau: float | None, ci: list[float] | None) -> list[float] | None:
    """The interval, its ends moved onto tau where they differ from it by rounding only (a tau of
    0.9999999999999999 inside [1.0, 1.0])."""
    if tau is None or ci is None:
        return ci
    return [tau if abs(ci[0] - tau) < 1e-9 else ci[0], tau if abs(ci[1] - tau) < 1e-9 else ci[1]]


def bin_label(row: dict, measure: str) -> str:
    """A bin named by its range and its size on three short lines, e.g. "0.1–0.37\nM params\n(n=60)"."""
    low, high = (value / 1e6 for value in row["range"])  # space.cost() counts units, the axis millions
    return f"{low:.3g}–{high:.3g}\n{UNITS[measure]}\n(n={row['n']})"


def figures(result: dict) -> dict:
    from archscore.estimators.analysis.plots import new_figure, outside_legend

    out = {}
    for measure, table in result["by"].items():
        rows = table["bins"]
        fig, ax = new_figure(min(24.0, max(7.2, 2.6 + 0.95 * len(rows))), 4.6)  # about an inch per bin label
        count = max(1, len(result["global"]))
        for k, (e, tau) in enumerate(result["global"].items()):
            shift = (k - (count - 1) / 2) * 0.08  # side by side, so the error bars do not hide each other
            xs = [r["bin"] + shift for r in rows]
            ys = [r["kendall_tau"][e] for r in rows]
            cis = [r.get("kendall_tau_ci", {}).get(e) for r in rows]
            low = [max(0.0, y - ci[0]) if y is not None and ci else 0 for y, ci in zip(ys, cis)]
            high = [max(0.0, ci[1] - y) if y is not None and ci else 0 for y, ci in zip(ys, cis)]
            line = ax.errorbar(
                xs, [y if y is not None else float("nan") for y in ys], yerr=[low, high], marker="o", capsize=3, label=e
            )
            if tau is not None:
                ax.axhline(tau, color=line[0].get_color(), linestyle=":", linewidth=1)
        ax.set_xticks([r["bin"] for r in rows], [bin_label(r, measure) for r in rows], fontsize=8)
        ax.set_xlabel(f"bins of equal size by {measure}, smallest first (dotted: the global tau)")
        ax.set_ylabel("Kendall tau inside the bin")
        ax.set_title(
            f"Complexity bias by {measure}: tau inside each bin, "
            f"{BOOTSTRAP_LEVEL:.0%} bootstrap interval ({BOOTSTRAP_RESAMPLES} resamples)",
            fontsize=10,
        )
        outside_legend(ax)
        out[f"complexity_bias_{measure}"] = fig
    return out


register_study(Study("complexity_bias", __doc__.split("\n\n")[0].replace("\n", " "), run, figures, requires=(COST,)))
