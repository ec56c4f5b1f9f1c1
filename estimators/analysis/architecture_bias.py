"""Architecture-level bias: the architectures each estimator over- and under-estimates
most, by the gap between estimated and true rank (as a share of the number of architectures)."""

from __future__ import annotations

from typing import Any

from archscore.estimators.analysis.context import estimated_ranks, true_ranks
from archscore.estimators.analysis.registry import Study, register_study


def run(ctx) -> dict:
    top = int(ctx.options.get("top", 10))
    scores, ids, n = ctx.scores(), ctx.ids, len(ctx.archs)
    truth_rank = true_ranks(ctx.truth, ids)
    result: dict[str, Any] = {"top": top, "estimators": {}}
    for e in ctx.estimators:
        est_rank = estimated_ranks(scores[e], ids)
        rows = [
            {
                "arch": ctx.space.to_string(a),
                "true_rank": t + 1,
                "estimated_rank": s + 1,
                "gap": (t - s) / n,
                "truth": g,
                "score": v,
            }
            for a, t, s, g, v in zip(ctx.archs, truth_rank, est_rank, ctx.truth, scores[e])
        ]
        rows.sort(key=lambda r: (-r["gap"], r["arch"]))
        result["estimators"][e] = {
            "over_estimated": rows[:top],  # ranked much better than they are
            "under_estimated": rows[::-1][:top],
            "ranks": [[r["true_rank"], r["estimated_rank"]] for r in sorted(rows, key=lambda r: r["true_rank"])],
        }
    return result


def figures(result: dict) -> dict:
    from archscore.estimators.analysis.plots import new_figure, outside_legend

    out = {}
    for e, table in result["estimators"].items():
        fig, ax = new_figure(5.2, 5.0)
        true_rank, est_rank = zip(*table["ranks"])
        ax.scatter(true_rank, est_rank, s=6, alpha=0.5)
        for key, colour in (("over_estimated", "tab:red"), ("under_estimated", "tab:green")):
            ax.scatter(
                [r["true_rank"] for r in table[key]],
                [r["estimated_rank"] for r in table[key]],
                s=14,
                color=colour,
                label=key.replace("_", " "),
            )
        ax.plot([1, len(true_rank)], [1, len(true_rank)], color="black", linewidth=0.8)
        ax.set_xlabel("true rank (1 = best)")
        ax.set_ylabel(f"rank by {e}")
        ax.set_title(f"Architecture bias of {e}")
        outside_legend(ax)
        out[f"architecture_bias_{e}"] = fig
    return out


register_study(Study("architecture_bias", __doc__.split("\n\n")[0].replace("\n", " "), run, figures))
