"""Population estimators: scores that are ranks within a set of architectures (torch-free).

TE-NAS ranks its two measures among the candidates and adds the ranks; AZ-NAS and VKDNW add the logs of
the normalised ranks. Such a score exists only relative to a population, so archscore defines it over an
explicit one and never stores it:

- the population is the architectures scored together: the call's (the library and the CLI), the
  request's distinct ones (a score request; isomorphic cells count once), every architecture scored
  under the protocol (the ranking statistics, the dashboard, the studies);
- the members are ordinary estimators whose scores are cached as any other, so adding an architecture to
  a population never rescores the others: the aggregate is recomputed from the cached members when the
  answer is given;
- an architecture a member cannot score ranks lowest in that member (as the -inf the authors' code gives
  such a network), ties among those sharing their average rank; it still gets an aggregate.

Ranks are 1..N from the lowest member value to the highest, ties sharing their average rank
(``scipy.stats.rankdata``'s default, which the authors' code uses), so higher is better for the aggregate
as for every member.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import rankdata

from archscore.estimators.catalog import EstimatorInfo

AGGREGATIONS = {
    "rank_sum": "the sum of the members' ranks (TE-NAS)",
    "log_rank": "the sum of log(rank / N) over the members (AZ-NAS, VKDNW)",
}


def aggregate(
    members: Sequence[str],
    aggregation: str,
    rows: Sequence[Mapping[str, float | None]],
    weights: Sequence[float] = (),
) -> list[float]:
    """The aggregate of each row (an architecture's member values) within the population ``rows``; a
    member value that is missing or None ranks lowest. ``weights``: each member's weight in the sum (the
    weighted form; none: every member weighs 1)."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; known: {', '.join(AGGREGATIONS)}")
    weights = weights or (1.0,) * len(members)
    if len(weights) != len(members):
        raise ValueError(f"{len(weights)} weights for {len(members)} members")
    n = len(rows)
    total = np.zeros(n)
    for member, weight in zip(members, weights):
        values = [row.get(member) for row in rows]
        ranks = rankdata([-math.inf if v is None else float(v) for v in values])
        total += weight * (ranks if aggregation == "rank_sum" else np.log(ranks / n))
    return total.tolist()


def population_scores(info: EstimatorInfo, rows: Sequence[Mapping[str, float | None]]) -> list[float]:
    """The population estimator ``info``'s value of each row within ``rows``."""
    if info.aggregation is None:
        raise ValueError(f"{info.name} is not a population estimator")
    return aggregate(info.members, info.aggregation, rows, info.weights)
