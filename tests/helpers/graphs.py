"""Path features of a labelled DAG computed by enumerating its paths with networkx: the reference the
spaces' encoding features (estimators/spaces/graph_features.py) are checked against."""

from __future__ import annotations

import itertools

import networkx as nx

ALWAYS = "*"


def path_features_reference(num_nodes, edges, source, sink, ops, no_path) -> tuple[float, ...]:
    """For each non-empty subset of ``ops`` (by size, then in ``ops`` order): the number of source-to-sink
    paths over the edges labelled with an op of the subset (or ALWAYS), the shortest and longest such path
    (``no_path`` and 0 where none), the edges kept into the sink and out of the source."""
    values = []
    for size in range(1, len(ops) + 1):
        for subset in itertools.combinations(ops, size):
            graph = nx.MultiDiGraph()
            graph.add_nodes_from(range(num_nodes))
            graph.add_edges_from((s, t) for s, t, op in edges if op == ALWAYS or op in subset)
            lengths = [len(p) for p in nx.all_simple_edge_paths(graph, source, sink)]
            values += [
                len(lengths),
                min(lengths, default=no_path),
                max(lengths, default=0),
                graph.in_degree(sink),
                graph.out_degree(source),
            ]
    return tuple(float(v) for v in values)
