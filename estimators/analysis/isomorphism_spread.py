"""Architecture-level bias inside isomorphism classes: how far apart the scores of isomorphic
architectures -- the same network, written differently -- lie, each scored on its own (per_member).

An estimator that looked only at the computed function would give every member of a class one score.
The study scores up to ``members`` members of the class of each architecture asked for (classes of one
member are left out) and reports, per estimator and for the ground truth beside them: the share of
the variance over all these architectures that lies within classes, and the span of each class's
member ranks (as a share of the architectures). One-shot scores are each member's own supernet path
(post de-isomorphism off), the spread that post de-isomorphism averages away.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from archscore.estimators.analysis.context import estimated_ranks, true_ranks
from archscore.estimators.analysis.registry import Study, register_study
from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces.base import ISOMORPHISM, Arch

DEFAULT_MEMBERS, MAX_MEMBERS = 4, 16  # members scored per class


def per_member(protocol: Protocol) -> Protocol:
    """``protocol`` scoring every architecture on its own (one-shot: its own path, no class mean)."""
    update: dict = {"per_member": True}
    if protocol.oneshot is not None:
        update["oneshot"] = protocol.oneshot.model_copy(update={"post_deiso": False})
    return protocol.model_copy(update=update)


def architectures(space, archs: list[Arch], options: dict) -> list[Arch]:
    """Up to ``options["members"]`` members of the class of each architecture, the architecture first,
    then the others in string order; classes of one member are left out, each class is taken once."""
    keep = int(options.get("members", DEFAULT_MEMBERS))
    classes = space.isomorphism_classes()
    seen, out = set(), []
    for arch in archs:
        key = space.canonical_key(arch)
        members = classes[key]
        if key in seen or len(members) < 2:
            continue
        seen.add(key)
        others = sorted((m for m in members if m != arch), key=space.to_string)
        out += [arch, *others[: keep - 1]]
    return out


def within_share(values: list[float], groups: list[str]) -> float | None:
    """Within-group sum of squares / total sum of squares (0: every group constant; None: no variance)."""
    mean = statistics.fmean(values)
    total = sum((v - mean) ** 2 for v in values)
    if total == 0:
        return None
    by_group = defaultdict(list)
    for v, g in zip(values, groups):
        by_group[g].append(v)
    within = sum((v - statistics.fmean(vs)) ** 2 for vs in by_group.values() for v in vs)
    return within / total


def spread(values: list[float | None], ranks: list[int], groups: list[str]) -> dict:
    scored = [i for i, v in enumerate(values) if v is not None]
    scored_values = [v for v in values if v is not None]  # the values at `scored`, in order
    n = len(values)
    spans = defaultdict(list)
    for i in scored:
        spans[groups[i]].append(ranks[i])
    span = {g: (max(r) - min(r)) / n for g, r in spans.items() if len(r) >= 2}
    return {
        "within_class_share": within_share(scored_values, [groups[i] for i in scored]) if len(scored) >= 2 else None,
        "rank_span_median": statistics.median(span.values()) if span else None,
        "rank_span_max": max(span.values()) if span else None,
        "constant_classes": sum(
            1 for g, r in spans.items() if len(r) >= 2 and len({values[i] for i in scored if groups[i] == g}) == 1
        ),
        "rank_span_by_class": span,
    }


def run(ctx) -> dict:
    protocol = per_member(ctx.protocol)
    scores = ctx.scores(protocol)
    groups = [ctx.space.canonical_key(a) for a in ctx.archs]
    ids = ctx.ids
    result = {
        "protocol_hash": protocol.hash(),
        "classes": len(set(groups)),
        "architectures": len(ctx.archs),
        "members_per_class": int(ctx.options.get("members", DEFAULT_MEMBERS)),
        "truth": spread(list(ctx.truth), true_ranks(ctx.truth, ids), groups),
        "estimators": {e: spread(scores[e], estimated_ranks(scores[e], ids), groups) for e in ctx.estimators},
        "members": [
            {
                "arch": ctx.space.to_string(a),
                "class": g,
                "truth": t,
                "scores": {e: scores[e][i] for e in ctx.estimators},
            }
            for i, (a, g, t) in enumerate(zip(ctx.archs, groups, ctx.truth))
        ],
    }
    return result


def figures(result: dict) -> dict:
    from archscore.estimators.analysis.plots import new_figure, outside_legend

    rows = {"ground truth": result["truth"], **result["estimators"]}
    names = list(rows)
    fig, ax = new_figure(6.4, 4.2)
    shares = [rows[n]["within_class_share"] or 0.0 for n in names]
    ax.bar(range(len(names)), shares, color=["grey"] + ["tab:blue"] * (len(names) - 1))
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel("share of the variance within classes")
    ax.set_title(f"Spread inside {result['classes']} isomorphism classes ({result['architectures']} architectures)")
    out = {"isomorphism_spread_share": fig}
    fig, ax = new_figure(6.4, 4.2)
    for k, n in enumerate(names):
        spans = sorted(rows[n]["rank_span_by_class"].values())
        ax.plot(
            spans,
            [(i + 1) / len(spans) for i in range(len(spans))],
            label=n,
            color="black" if k == 0 else None,
            linestyle="--" if k == 0 else "-",
        )
    ax.set_xlabel("span of a class's member ranks (share of the architectures)")
    ax.set_ylabel("share of the classes")
    ax.set_title("Rank span inside isomorphism classes (cumulative)")
    outside_legend(ax)
    out["isomorphism_spread_rank_span"] = fig
    return out


register_study(
    Study(
        "isomorphism_spread",
        "Architecture-level bias inside isomorphism classes: the spread of the scores of "
        "isomorphic architectures, each scored on its own, beside the ground truth's.",
        run,
        figures,
        protocols=lambda protocol, options: [per_member(protocol)],
        requires=(ISOMORPHISM,),
        architectures=architectures,
    )
)
