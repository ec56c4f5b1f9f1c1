"""Operation-level bias (SPEC §6): for each operation, the mean of (estimated rank - true rank), as a
share of the number of architectures, among architectures holding that operation a given number of
times. A positive value means the estimator ranks them worse than they are: it is biased against the
operation at that count."""

from __future__ import annotations

import statistics

from estimators.analysis.context import estimated_ranks, true_ranks
from estimators.analysis.registry import Study, register_study
from estimators.spaces.base import OPERATIONS


def run(ctx) -> dict:
    if not ctx.space.has(OPERATIONS):
        raise ValueError(f"{ctx.space.name} does not describe its architectures by operations")
    scores, ids, n = ctx.scores(), ctx.ids, len(ctx.archs)
    counts = [ctx.space.operation_counts(a) for a in ctx.archs]
    ops = sorted({op for c in counts for op in c})
    truth_rank = true_ranks(ctx.truth, ids)
    result = {"operations": ops, "rank_error": {}}
    for e in ctx.estimators:
        errors = [(est - tru) / n for est, tru in zip(estimated_ranks(scores[e], ids), truth_rank)]
        per_op = {}
        for op in ops:
            groups: dict[int, list[float]] = {}
            for c, err in zip(counts, errors):
                groups.setdefault(c.get(op, 0), []).append(err)
            per_op[op] = {str(k): {"mean": statistics.fmean(v), "n": len(v)} for k, v in sorted(groups.items())}
        result["rank_error"][e] = per_op
    return result


def figures(result: dict) -> dict:
    from estimators.analysis.plots import new_figure

    out = {}
    for e, per_op in result["rank_error"].items():
        fig, ax = new_figure()
        for op, groups in per_op.items():
            ax.plot([int(k) for k in groups], [g["mean"] for g in groups.values()], marker="o", label=op)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xlabel("times the operation appears in the architecture")
        ax.set_ylabel("mean (estimated - true rank) / N")
        ax.set_title(f"Operation bias of {e} (above 0: ranked too low)")
        ax.legend(fontsize=7)
        out[f"operation_bias_{e}"] = fig
    return out


register_study(
    Study("operation_bias", __doc__.split("\n\n")[0].replace("\n", " "), run, figures, requires=(OPERATIONS,))
)
