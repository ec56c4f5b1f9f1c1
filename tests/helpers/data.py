"""Published scores of the built-in spaces, and study contexts over them (nothing is computed)."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=4)
def published_by_arch(space_name: str) -> dict:
    """A space's published proxy scores keyed by architecture: estimator -> {arch: value}."""
    from archscore.estimators.spaces import get_space

    sp = get_space(space_name)
    by_key = {sp.truth_key(a): a for a in sp.published_archs()}
    return {est: {by_key[k]: v for k, v in col.items()} for est, col in sp.published_proxies().items()}


def published_context(space_name: str, n: int = 200, estimators=("params", "synflow", "jacob_cov")):
    """Architectures with published scores: the source returns those scores, nothing is computed."""
    from archscore.estimators.analysis import StudyContext
    from archscore.estimators.protocol import Protocol
    from archscore.estimators.spaces import get_space
    from archscore.estimators.truth import load_builtin

    space = get_space(space_name)
    truth = load_builtin(space.name, space.ground_truth_columns[0])
    archs = [a for a in space.published_archs() if truth.get(a) is not None][:n]
    published = space.published_proxies()
    scores = {e: [published[e].get(space.truth_key(a)) for a in archs] for e in estimators}
    scores["oracle"] = [truth.get(a) for a in archs]  # ranks exactly as the truth does
    return StudyContext(
        space,
        archs,
        [truth.get(a) for a in archs],
        [*estimators, "oracle"],
        Protocol(),
        lambda protocol: scores,
        {"bins": 4, "top": 5},
    )
