"""Zero-shot estimators on supernet weights (RQ4): each estimator on every architecture's
network at the size of a trained supernet checkpoint (the protocol's ``weights``), randomly initialised
and holding the weights of its path through the supernet; the criteria under each and the rank
agreement (Kendall tau) between the two."""

from __future__ import annotations

from archscore.estimators.analysis.registry import Study, StudyInputError, register_study
from archscore.estimators.analysis.variance import agreement
from archscore.estimators.ranking import kendall_tau, ndcg, spearman
from archscore.estimators.spaces.base import SUPERNET

INITS = ("random", "supernet")


def _variants(protocol) -> dict:
    if protocol.weights is None:
        raise StudyInputError("protocol.weights", "name the supernet checkpoint whose weights the networks take")
    return {init: protocol.model_copy(update={"init": init}) for init in INITS}


def protocols(protocol, options: dict) -> list:
    return list(_variants(protocol).values())


def run(ctx) -> dict:
    scores = {init: ctx.scores(p) for init, p in _variants(ctx.protocol).items()}
    result = {"inits": list(INITS), "weights": ctx.protocol.weights, "estimators": {}}
    for e in ctx.estimators:
        result["estimators"][e] = {
            "kendall_tau": {init: kendall_tau(scores[init][e], ctx.truth) for init in INITS},
            "spearman": {init: spearman(scores[init][e], ctx.truth) for init in INITS},
            "ndcg": {init: ndcg(scores[init][e], ctx.truth) for init in INITS},
            "agreement": agreement(scores["random"][e], scores["supernet"][e]),
        }
    return result


def figures(result: dict) -> dict:
    from archscore.estimators.analysis.plots import new_figure, outside_legend

    names = list(result["estimators"])
    fig, ax = new_figure(7.0, 4.2)
    width = 0.4
    for k, init in enumerate(INITS):
        values = [result["estimators"][e]["kendall_tau"][init] or 0.0 for e in names]
        ax.bar([i + k * width for i in range(len(names))], values, width, label=f"{init} weights")
    ax.set_xticks([i + width / 2 for i in range(len(names))], names, rotation=45, ha="right", fontsize=8)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("Kendall tau")
    ax.set_title("Zero-shot estimators on random init and on supernet weights")
    outside_legend(ax)
    return {"zero_shot_on_supernet": fig}


register_study(
    Study(
        "zero_shot_on_supernet",
        __doc__.split("\n\n")[0].replace("\n", " "),
        run,
        figures,
        protocols,
        requires=(SUPERNET,),
    )
)
