"""Variance: the criteria across initialisation seeds (20, 2020, 202020) and across the
number of fixed batches a score averages (the first 1, 3 and 5), with the rank agreement (Kendall tau)
between the scores of each pair of seeds."""

from __future__ import annotations

import itertools
import math
import statistics
from typing import Any

from archscore.estimators.analysis.registry import Study, register_study
from archscore.estimators.ranking import kendall_tau

SEEDS = (20, 2020, 202020)
BATCHES = (1, 3, 5)


def _variants(protocol, options: dict) -> tuple[dict, dict]:
    seeds = tuple(options.get("seeds", SEEDS))
    batches = tuple(options.get("batches", BATCHES))
    return (
        {s: protocol.model_copy(update={"seed": s}) for s in seeds},
        {b: protocol.model_copy(update={"num_batches": b}) for b in batches},
    )


def agreement(a: list, b: list) -> float | None:
    """Kendall tau between two score vectors over the architectures both scored (finite values)."""
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]
    return kendall_tau([x for x, _ in pairs], [y for _, y in pairs]) if len(pairs) >= 2 else None


def protocols(protocol, options: dict) -> list:
    by_seed, by_batches = _variants(protocol, options)
    unique = {p.hash(): p for p in [*by_seed.values(), *by_batches.values()]}
    return list(unique.values())


def run(ctx) -> dict:
    seed_protocols, batch_protocols = _variants(ctx.protocol, ctx.options)
    seeds, batches = tuple(seed_protocols), tuple(batch_protocols)
    by_seed = {s: ctx.scores(p) for s, p in seed_protocols.items()}
    by_batches = {b: ctx.scores(p) for b, p in batch_protocols.items()}
    result: dict[str, Any] = {"seeds": list(seeds), "batches": list(batches), "estimators": {}}
    for e in ctx.estimators:
        taus = [kendall_tau(by_seed[s][e], ctx.truth) for s in seeds]
        defined = [t for t in taus if t is not None]
        agree = {f"{a}-{b}": agreement(by_seed[a][e], by_seed[b][e]) for a, b in itertools.combinations(seeds, 2)}
        result["estimators"][e] = {
            "kendall_tau_by_seed": dict(zip(map(str, seeds), taus)),
            "mean": statistics.fmean(defined) if defined else None,
            "std": statistics.stdev(defined) if len(defined) > 1 else None,
            "seed_agreement": agree,
            "kendall_tau_by_batches": {str(b): kendall_tau(by_batches[b][e], ctx.truth) for b in batches},
        }
    return result


def figures(result: dict) -> dict:
    from archscore.estimators.analysis.plots import new_figure, outside_legend

    names = list(result["estimators"])
    fig, ax = new_figure()
    means = [result["estimators"][e]["mean"] or 0.0 for e in names]
    stds = [result["estimators"][e]["std"] or 0.0 for e in names]
    ax.bar(range(len(names)), means, yerr=stds, capsize=3)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("Kendall tau (mean and std over seeds)")
    ax.set_title("Variance across initialisation seeds " + ", ".join(map(str, result["seeds"])))
    seeds_fig = fig
    fig, ax = new_figure()
    for e in names:
        by = result["estimators"][e]["kendall_tau_by_batches"]
        ax.plot([int(b) for b in by], list(by.values()), marker="o", label=e)
    ax.set_xlabel("fixed batches averaged")
    ax.set_ylabel("Kendall tau")
    ax.set_title("Criteria against the number of batches")
    outside_legend(ax)
    return {"variance_seeds": seeds_fig, "variance_batches": fig}


register_study(Study("variance", __doc__.split("\n\n")[0].replace("\n", " "), run, figures, protocols))
