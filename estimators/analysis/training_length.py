"""Training length: the one-shot estimators' criteria at each epoch whose snapshot the
supernet's training kept (keep_snapshots), and the rank stability between consecutive kept epochs
(Kendall tau between their scores). At most MAX_POINTS snapshots, evenly spaced, the last always."""

from __future__ import annotations

from typing import Any

from archscore.estimators.analysis.registry import Study, StudyInputError, register_study
from archscore.estimators.analysis.variance import agreement
from archscore.estimators.catalog import is_one_shot
from archscore.estimators.ranking import kendall_tau

MAX_POINTS = 10


def _chosen(snapshots: list[dict]) -> list[dict]:
    if len(snapshots) <= MAX_POINTS:
        return snapshots
    step = (len(snapshots) - 1) / (MAX_POINTS - 1)
    return [snapshots[round(i * step)] for i in range(MAX_POINTS)]


def _variants(protocol, options: dict) -> dict:
    if protocol.oneshot is None:
        raise StudyInputError("estimators", "a one-shot study: ask for oneshot_acc or oneshot_loss")
    snapshots = _chosen(options.get("snapshots") or [])
    if not snapshots:
        raise StudyInputError(
            "protocol.oneshot.supernet",
            "the checkpoint kept no per-epoch snapshots: train it with keep_snapshots (e.g. equal to its epochs)",
        )
    return {
        s["epoch"]: protocol.model_copy(
            update={"oneshot": protocol.oneshot.model_copy(update={"supernet": s["sha256"]})}
        )
        for s in snapshots
    }


def protocols(protocol, options: dict) -> list:
    return list(_variants(protocol, options).values())


def run(ctx) -> dict:
    variants = _variants(ctx.protocol, ctx.options)
    scores = {epoch: ctx.scores(p) for epoch, p in variants.items()}
    epochs = list(variants)
    result: dict[str, Any] = {
        "epochs": epochs,
        "snapshots": {str(e): p.oneshot.supernet for e, p in variants.items()},
        "estimators": {},
    }
    for e in (e for e in ctx.estimators if is_one_shot(e)):
        result["estimators"][e] = {
            "kendall_tau": {str(epoch): kendall_tau(scores[epoch][e], ctx.truth) for epoch in epochs},
            "stability": {f"{a}-{b}": agreement(scores[a][e], scores[b][e]) for a, b in zip(epochs, epochs[1:])},
        }
    return result


def figures(result: dict) -> dict:
    from archscore.estimators.analysis.plots import new_figure, outside_legend

    fig, ax = new_figure()
    for e, numbers in result["estimators"].items():
        ax.plot(
            [int(x) for x in numbers["kendall_tau"]],
            list(numbers["kendall_tau"].values()),
            marker="o",
            label=f"{e}: Kendall tau",
        )
        ax.plot(
            [int(k.split("-")[1]) for k in numbers["stability"]],
            list(numbers["stability"].values()),
            marker="x",
            linestyle="--",
            label=f"{e}: agreement with the previous point",
        )
    ax.set_xlabel("supernet training epoch")
    ax.set_title("One-shot estimators along the supernet's training")
    outside_legend(ax)
    return {"training_length": fig}


register_study(
    Study("training_length", __doc__.split("\n\n")[0].replace("\n", " "), run, figures, protocols, needs_snapshots=True)
)
