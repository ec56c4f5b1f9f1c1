"""Operation-level bias: for each operation, the mean of (estimated rank - true rank), as a
share of the number of architectures, among architectures holding that operation a given number of
times; and over every pair of the architectures one op swap apart (A with op a, B the same with op b
in one position), how often the estimator's change from A to B has the sign of the ground truth's.

A positive rank error means the estimator ranks those architectures worse than they are: it is biased
against the operation at that count. A swap agreement below 0.5 means the estimator moves the wrong
way, on average, when that op replaces the other."""

from __future__ import annotations

import itertools
import math
import statistics
from typing import Any

from archscore.estimators.analysis.context import estimated_ranks, true_ranks
from archscore.estimators.analysis.registry import Study, register_study
from archscore.estimators.spaces.base import OPERATIONS


def run(ctx) -> dict:
    if not ctx.space.has(OPERATIONS):
        raise ValueError(f"{ctx.space.name} does not describe its architectures by operations")
    scores, ids, n = ctx.scores(), ctx.ids, len(ctx.archs)
    counts = [ctx.space.operation_counts(a) for a in ctx.archs]
    ops = sorted({op for c in counts for op in c})
    truth_rank = true_ranks(ctx.truth, ids)
    result: dict[str, Any] = {"operations": ops, "rank_error": {}}
    for e in ctx.estimators:
        errors = [(est - tru) / n for est, tru in zip(estimated_ranks(scores[e], ids), truth_rank)]
        per_op = {}
        for op in ops:
            groups: dict[int, list[float]] = {}
            for c, err in zip(counts, errors):
                groups.setdefault(c.get(op, 0), []).append(err)
            per_op[op] = {str(k): {"mean": statistics.fmean(v), "n": len(v)} for k, v in sorted(groups.items())}
        result["rank_error"][e] = per_op
    result["swaps"] = swap_agreement(single_op_swaps(ctx.space, ctx.archs), ctx.truth, scores, ctx.estimators)
    return result


def single_op_swaps(space, archs) -> list[tuple[int, int, str, str]]:
    """(i, j, a, b) for every pair of architectures one op swap apart: archs[j] is archs[i] with op a
    replaced by b in one position; a < b (the swap is named in alphabetical order)."""
    buckets: dict[tuple, list[tuple[int, str]]] = {}
    for i, arch in enumerate(archs):
        frame, ops = space.op_slots(arch)
        for pos in range(len(ops)):
            buckets.setdefault((frame, pos, ops[:pos] + ops[pos + 1 :]), []).append((i, ops[pos]))
    pairs = []
    for members in buckets.values():
        for (i, a), (j, b) in itertools.combinations(members, 2):
            if a != b:
                pairs.append((i, j, a, b) if a < b else (j, i, b, a))
    return sorted(pairs)


def _defined(x) -> bool:
    return x is not None and math.isfinite(x)


def swap_agreement(pairs, truth: list[float], scores: dict, estimators: list[str]) -> dict:
    """Per swap a->b: the pairs, the mean change of the ground truth, and per estimator the share of
    pairs (truth and score both changing) where the score changes with the sign of the truth."""
    by_swap: dict[str, list[tuple[int, int]]] = {}
    for i, j, a, b in pairs:
        by_swap.setdefault(f"{a}->{b}", []).append((i, j))
    out: dict = {"pairs": len(pairs), "by_swap": {}, "agreement": {}}

    def agreement(members, e) -> tuple[float | None, int]:
        signs = [
            (truth[j] - truth[i]) * (scores[e][j] - scores[e][i])
            for i, j in members
            if _defined(scores[e][i]) and _defined(scores[e][j])
        ]
        signs = [s for s in signs if s != 0]
        return (sum(s > 0 for s in signs) / len(signs) if signs else None), len(signs)

    for swap, members in sorted(by_swap.items()):
        out["by_swap"][swap] = {
            "n": len(members),
            "mean_truth_change": statistics.fmean(truth[j] - truth[i] for i, j in members),
            "agreement": {e: agreement(members, e)[0] for e in estimators},
        }
    every = [(i, j) for i, j, _, _ in pairs]
    out["agreement"] = {e: dict(zip(("share", "n"), agreement(every, e))) for e in estimators}
    return out


def figures(result: dict) -> dict:
    from archscore.estimators.analysis.plots import new_figure, outside_legend

    out = {}
    for e, per_op in result["rank_error"].items():
        fig, ax = new_figure()
        for op, groups in per_op.items():
            ax.plot([int(k) for k in groups], [g["mean"] for g in groups.values()], marker="o", label=op)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xlabel("times the operation appears in the architecture")
        ax.set_ylabel("mean (estimated - true rank) / N")
        ax.set_title(f"Operation bias of {e} (above 0: ranked too low)")
        outside_legend(ax)
        out[f"operation_bias_{e}"] = fig
    swaps = result.get("swaps", {}).get("by_swap", {})
    if swaps:
        names = list(result["rank_error"])
        fig, ax = new_figure(max(6.0, 0.5 * len(swaps) * len(names) / 2), 4.2)
        width = 0.8 / len(names)
        for k, e in enumerate(names):
            values = [(s["agreement"][e] if s["agreement"][e] is not None else float("nan")) for s in swaps.values()]
            ax.bar([i + k * width for i in range(len(swaps))], values, width, label=e)
        ax.set_xticks(
            [i + 0.4 - width / 2 for i in range(len(swaps))],
            [f"{k} ({s['n']})" for k, s in swaps.items()],
            rotation=60,
            ha="right",
            fontsize=7,
        )
        ax.axhline(0.5, color="black", linewidth=0.8)
        ax.set_ylabel("share of swaps that moved\nthe ground truth's way")
        ax.set_title("Single-op swaps: does the estimator follow the ground truth?")
        outside_legend(ax)
        out["operation_swaps"] = fig
    return out


register_study(
    Study("operation_bias", __doc__.split("\n\n")[0].replace("\n", " "), run, figures, requires=(OPERATIONS,))
)
