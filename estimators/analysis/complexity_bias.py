"""Complexity-level bias: the criteria inside bins of equal size by FLOPs and by params,
beside the global figure. An estimator that only tracks size ranks well globally and poorly inside
the bins, where size hardly varies."""

from __future__ import annotations

import statistics

from archscore.estimators.analysis.registry import Study, register_study
from archscore.estimators.ranking import kendall_tau
from archscore.estimators.spaces.base import COST

MEASURES = {"flops": 1, "params": 0}  # index into space.cost()


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
    result = {"bins": bins, "global": {e: kendall_tau(scores[e], truth) for e in ctx.estimators}, "by": {}}
    for measure, index in MEASURES.items():
        order = sorted(range(n), key=lambda i: (costs[i][index], ids[i]))
        rows = []
        for b, members in enumerate(_split(order, bins)):
            rows.append({
                "bin": b,
                "n": len(members),
                "range": [costs[members[0]][index], costs[members[-1]][index]],
                "kendall_tau": {e: kendall_tau([scores[e][i] for i in members], [truth[i] for i in members])
                                for e in ctx.estimators},
            })
        mean_in_bins = {}
        for e in ctx.estimators:
            values = [r["kendall_tau"][e] for r in rows if r["kendall_tau"][e] is not None]
            mean_in_bins[e] = statistics.fmean(values) if values else None
        result["by"][measure] = {"bins": rows, "mean_in_bin_tau": mean_in_bins}
    return result


def figures(result: dict) -> dict:
    from archscore.estimators.analysis.plots import new_figure

    out = {}
    for measure, table in result["by"].items():
        fig, ax = new_figure()
        for e, tau in result["global"].items():
            line = ax.plot([r["bin"] for r in table["bins"]],
                           [r["kendall_tau"][e] for r in table["bins"]], marker="o", label=e)[0]
            if tau is not None:
                ax.axhline(tau, color=line.get_color(), linestyle=":", linewidth=1)
        ax.set_xlabel(f"bin by {measure} (smallest first; dotted: the global figure)")
        ax.set_ylabel("Kendall tau inside the bin")
        ax.set_title(f"Complexity bias: ranking inside bins of equal {measure}")
        ax.legend(fontsize=7, ncol=2)
        out[f"complexity_bias_{measure}"] = fig
    return out


register_study(
    Study("complexity_bias", __doc__.split("\n\n")[0].replace("\n", " "), run, figures, requires=(COST,))
)
