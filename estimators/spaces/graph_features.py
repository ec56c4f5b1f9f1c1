"""Path features of a cell's graph, for the few-shot predictor's encoding features (torch-free).

After GRAF (Kadlecová et al., "Surprisingly Strong Performance Prediction with Neural Graph Features",
ICML 2024; the authors' code: gabikadlecova/graf_nas, ``graf_nas/features/base.py``): the cell is read
with only the edges whose op lies in a chosen subset of the ops, and the features are how the input
still reaches the output through them. For each subset, in a fixed order:

- ``paths``: the number of input-to-output paths;
- ``min_path``: the length in edges of the shortest path, ``no_path`` where there is none (GRAF's
  ``min_path_len``, whose default is the number of edges);
- ``max_path``: the length of the longest path, 0 where there is none (``max_num_on_path``);
- ``in_sink`` and ``out_source``: the edges that enter the output and leave the input (``node_degree``).

A space turns its cell into nodes numbered in topological order and edges ``(source, target, op)``;
edges labelled :data:`ALWAYS` are kept under every subset (a space's fixed wiring, such as the concat
into a DARTS cell's output).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

ALWAYS = "*"  # an edge label kept under every op subset
FEATURES = ("paths", "min_path", "max_path", "in_sink", "out_source")

Edge = tuple[int, int, str]


def op_subsets(ops: Sequence[str]) -> tuple[frozenset[str], ...]:
    """Every non-empty subset of ``ops``: singletons first, then pairs, ..., each in ``ops`` order."""
    return tuple(frozenset(c) for r in range(1, len(ops) + 1) for c in itertools.combinations(ops, r))


def feature_names(prefix: str, ops: Sequence[str]) -> tuple[str, ...]:
    """``{prefix}{feature}[{op}+{op}...]`` for each subset of :func:`op_subsets` and each feature."""
    return tuple(
        f"{prefix}{feature}[{'+'.join(op for op in ops if op in subset)}]"
        for subset in op_subsets(ops)
        for feature in FEATURES
    )


def path_features(
    num_nodes: int, edges: Iterable[Edge], source: int, sink: int, ops: Sequence[str], no_path: int
) -> tuple[float, ...]:
    """The :data:`FEATURES` of the graph under each subset of ``ops``, in :func:`feature_names` order.

    Nodes are ``0..num_nodes-1`` and every edge goes from a lower number to a higher one."""
    edges = tuple(edges)
    values: list[float] = []
    for subset in op_subsets(ops):
        kept = [(s, t) for s, t, op in edges if op == ALWAYS or op in subset]
        paths = [0] * num_nodes  # paths from the source to each node
        shortest = [0] * num_nodes  # path lengths from the source, read only where paths > 0
        longest = [0] * num_nodes
        paths[source] = 1
        for s, t in sorted(kept):  # by source: every edge into s comes before the edges out of s
            if not paths[s]:
                continue
            shortest[t] = shortest[s] + 1 if not paths[t] else min(shortest[t], shortest[s] + 1)
            longest[t] = max(longest[t], longest[s] + 1)
            paths[t] += paths[s]
        values += [
            float(paths[sink]),
            float(shortest[sink] if paths[sink] else no_path),
            float(longest[sink] if paths[sink] else 0),
            float(sum(t == sink for _, t in kept)),
            float(sum(s == source for s, _ in kept)),
        ]
    return tuple(values)
