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
- an architecture a member cannot score gets no value (the reason names the member) and is left out of
  the population: the others' ranks run over the architectures every member scored.

Ranks are 1..N from the lowest member value to the highest, ties sharing their average rank
(``scipy.stats.rankdata``'s default, which the authors' code uses), so higher is better for the aggregate
as for every member.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import rankdata

AGGREGATIONS = {
    "rank_sum": "the sum of the members' ranks (TE-NAS)",
    "log_rank": "the sum of log(rank / N) over the members (AZ-NAS, VKDNW)",
}


def members_missing(members: Sequence[str], values: Mapping[str, float | None]) -> str | None:
    """The reason an architecture has no aggregate: the first member without a value, else None."""
    for member in members:
        if values.get(member) is None:
            return f"member {member} has no value for this architecture"
    return None


def aggregate(
    members: Sequence[str], aggregation: str, rows: Sequence[Mapping[str, float | None]]
) -> list[tuple[float | None, str | None]]:
    """(value, reason) of each row (an architecture's member values) within the population ``rows``."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; known: {', '.join(AGGREGATIONS)}")
    reasons = [members_missing(members, row) for row in rows]
    complete = [i for i, reason in enumerate(reasons) if reason is None]
    out: list[tuple[float | None, str | None]] = [(None, reason) for reason in reasons]
    if not complete:
        return out
    n = len(complete)
    total = np.zeros(n)
    for member in members:
        ranks = rankdata([float(rows[i][member]) for i in complete])  # type: ignore[arg-type]
        total += ranks if aggregation == "rank_sum" else np.log(ranks / n)
    for i, value in zip(complete, total.tolist()):
        out[i] = (value if math.isfinite(value) else None, None)
    return out
