"""Validation-set size: the one-shot estimators' criteria when each score averages the first
1, 2, 3, 5 ... fixed batches of the checkpoint's validation split (or of its held-out images, with
``oneshot.images`` held_out: up to 15 batches of 100), and the rank agreement (Kendall tau)
of each size's scores with the largest size's. Zero-shot estimators do not depend on it: leave them out."""

from __future__ import annotations

from archscore.estimators.analysis.registry import Study, StudyInputError, register_study
from archscore.estimators.analysis.variance import agreement
from archscore.estimators.catalog import is_one_shot
from archscore.estimators.protocol import EVALUATION_IMAGES
from archscore.estimators.ranking import kendall_tau

SIZES = (1, 2, 3, 5)


def _variants(protocol, options: dict) -> dict:
    if protocol.oneshot is None:
        raise StudyInputError("estimators", "a one-shot study: ask for oneshot_acc or oneshot_loss")
    sizes = sorted(set(options.get("validation_batches") or SIZES))
    if sizes[0] < 1:
        raise StudyInputError("options.validation_batches", "numbers of batches must be 1 or more")
    images = protocol.oneshot.images
    limit = EVALUATION_IMAGES[images]
    too_many = [b for b in sizes if b * protocol.oneshot.batch_size > limit]
    if too_many:
        where = "the validation split" if images == "validation" else "the held-out set"
        raise StudyInputError(
            "options.validation_batches",
            f"{too_many[0]} batches of {protocol.oneshot.batch_size} exceed the {limit} images of {where}",
        )
    return {
        b: protocol.model_copy(update={"oneshot": protocol.oneshot.model_copy(update={"num_batches": b})})
        for b in sizes
    }


def protocols(protocol, options: dict) -> list:
    return list(_variants(protocol, options).values())


def run(ctx) -> dict:
    variants = _variants(ctx.protocol, ctx.options)
    scores = {b: ctx.scores(p) for b, p in variants.items()}
    largest = max(variants)
    result = {
        "validation_batches": list(variants),
        "batch_size": ctx.protocol.oneshot.batch_size,
        "images": ctx.protocol.oneshot.images,
        "estimators": {},
    }
    for e in (e for e in ctx.estimators if is_one_shot(e)):
        result["estimators"][e] = {
            "kendall_tau": {str(b): kendall_tau(scores[b][e], ctx.truth) for b in variants},
            "agreement_with_largest": {str(b): agreement(scores[b][e], scores[largest][e]) for b in variants},
        }
    return result


def figures(result: dict) -> dict:
    from archscore.estimators.analysis.plots import new_figure, outside_legend

    fig, ax = new_figure()
    for e, numbers in result["estimators"].items():
        sizes = [int(b) * result["batch_size"] for b in numbers["kendall_tau"]]
        ax.plot(sizes, list(numbers["kendall_tau"].values()), marker="o", label=f"{e}: Kendall tau")
        ax.plot(
            sizes,
            list(numbers["agreement_with_largest"].values()),
            marker="x",
            linestyle="--",
            label=f"{e}: agreement with the largest",
        )
    ax.set_xlabel(f"{result.get('images', 'validation').replace('_', '-')} images per score")
    ax.set_title("One-shot estimators against the validation-set size")
    outside_legend(ax)
    return {"validation_size": fig}


register_study(Study("validation_size", __doc__.split("\n\n")[0].replace("\n", " "), run, figures, protocols))
