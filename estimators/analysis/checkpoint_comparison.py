"""Shared by the studies that compare supernet checkpoints trained differently (``sampler``,
``reduced_sharing``): the same architectures scored by each checkpoint named in options["supernets"]
(resolved by whoever runs the study into options["checkpoints"]), each checkpoint's criteria, and the
rank agreement between every pair of checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations

from archscore.estimators.analysis.registry import Study, StudyInputError
from archscore.estimators.analysis.variance import agreement
from archscore.estimators.catalog import is_one_shot
from archscore.estimators.ranking import kendall_tau, ndcg, p_at_top, spearman


def _variants(protocol, options: dict, label: Callable[[dict], str]) -> dict:
    if protocol.oneshot is None:
        raise StudyInputError("estimators", "a one-shot study: ask for oneshot_acc or oneshot_loss")
    checkpoints = options.get("checkpoints") or []
    if len(checkpoints) < 2:
        raise StudyInputError("options.supernets", "name at least two checkpoints to compare")
    labels = [label(c) for c in checkpoints]
    if len(set(labels)) < len(labels):  # the same setting twice: tell them apart by name
        labels = [f"{lab} ({c['name']})" for lab, c in zip(labels, checkpoints)]
    return {
        lab: (c, protocol.model_copy(update={"oneshot": protocol.oneshot.model_copy(update={"supernet": c["sha256"]})}))
        for lab, c in zip(labels, checkpoints)
    }


def make_study(name: str, description: str, label: Callable[[dict], str], axis: str) -> Study:
    def protocols(protocol, options: dict) -> list:
        return [p for _, p in _variants(protocol, options, label).values()]

    def run(ctx) -> dict:
        variants = _variants(ctx.protocol, ctx.options, label)
        scores = {lab: ctx.scores(p) for lab, (_, p) in variants.items()}
        result = {
            "checkpoints": {
                lab: {k: c.get(k) for k in ("name", "sha256", "sampler", "partitions", "epochs")}
                for lab, (c, _) in variants.items()
            },
            "estimators": {},
        }
        for e in (e for e in ctx.estimators if is_one_shot(e)):
            result["estimators"][e] = {
                "kendall_tau": {lab: kendall_tau(s[e], ctx.truth) for lab, s in scores.items()},
                "spearman": {lab: spearman(s[e], ctx.truth) for lab, s in scores.items()},
                "p_at_top_10pct": {lab: p_at_top(s[e], ctx.truth, 0.1) for lab, s in scores.items()},
                "ndcg": {lab: ndcg(s[e], ctx.truth) for lab, s in scores.items()},
                "agreement": {f"{a} vs {b}": agreement(scores[a][e], scores[b][e]) for a, b in combinations(scores, 2)},
            }
        return result

    def figures(result: dict) -> dict:
        from archscore.estimators.analysis.plots import new_figure, outside_legend

        fig, ax = new_figure()
        labels = list(result["checkpoints"])
        estimators = list(result["estimators"])
        width = 0.8 / max(1, len(estimators))
        for i, e in enumerate(estimators):
            taus = [result["estimators"][e]["kendall_tau"][lab] or 0.0 for lab in labels]
            ax.bar([x + i * width for x in range(len(labels))], taus, width, label=e)
        ax.set_xticks([x + width * (len(estimators) - 1) / 2 for x in range(len(labels))], labels, fontsize=7)
        ax.set_xlabel(axis)
        ax.set_ylabel("Kendall tau vs ground truth")
        outside_legend(ax)
        return {name: fig}

    return Study(name, description, run, figures, protocols, needs_checkpoints=True)
