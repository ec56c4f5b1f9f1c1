"""Input data (RQ4): each estimator on the real images, on the same images with their labels
shuffled within each batch, and on Gaussian noise; the criteria under each, and the rank agreement
(Kendall tau) of each altered input's scores with the real images' scores."""

from __future__ import annotations

from typing import Any

from archscore.estimators.analysis.registry import Study, register_study
from archscore.estimators.analysis.variance import agreement
from archscore.estimators.ranking import kendall_tau

INPUTS = ("images", "shuffled_labels", "noise")


def _variants(protocol) -> dict:
    return {kind: protocol.model_copy(update={"inputs": kind}) for kind in INPUTS}


def protocols(protocol, options: dict) -> list:
    return list(_variants(protocol).values())


def run(ctx) -> dict:
    scores = {kind: ctx.scores(p) for kind, p in _variants(ctx.protocol).items()}
    result: dict[str, Any] = {"inputs": list(INPUTS), "estimators": {}}
    for e in ctx.estimators:
        result["estimators"][e] = {
            "kendall_tau": {kind: kendall_tau(scores[kind][e], ctx.truth) for kind in INPUTS},
            "agreement_with_images": {kind: agreement(scores["images"][e], scores[kind][e]) for kind in INPUTS[1:]},
        }
    return result


def figures(result: dict) -> dict:
    from archscore.estimators.analysis.plots import new_figure, outside_legend

    names = list(result["estimators"])
    fig, ax = new_figure(7.0, 4.2)
    width = 0.8 / len(INPUTS)
    for k, kind in enumerate(INPUTS):
        values = [result["estimators"][e]["kendall_tau"][kind] or 0.0 for e in names]
        ax.bar([i + k * width for i in range(len(names))], values, width, label=kind)
    ax.set_xticks([i + width for i in range(len(names))], names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("Kendall tau")
    ax.set_title("Estimators on real images, shuffled labels and Gaussian noise")
    outside_legend(ax)
    return {"input_data": fig}


register_study(Study("input_data", __doc__.split("\n\n")[0].replace("\n", " "), run, figures, protocols))
