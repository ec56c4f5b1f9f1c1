"""The path features of a labelled DAG (estimators/spaces/graph_features.py) against networkx's path
enumeration (helpers.graphs) on random multigraphs."""

from __future__ import annotations

import random

import pytest
from helpers.graphs import path_features_reference

from archscore.estimators.spaces.graph_features import ALWAYS, FEATURES, feature_names, op_subsets, path_features

OPS = ("a", "b", "c")


@pytest.mark.parametrize("seed", range(20))
def test_path_features_equal_networkx_on_random_dags(seed):
    rng = random.Random(seed)
    n = rng.randint(2, 8)
    edges = [
        (s, t, rng.choice((*OPS, ALWAYS)))
        for s in range(n)
        for t in range(s + 1, n)
        for _ in range(rng.choice((0, 1, 1, 2)))  # absent, one edge or two parallel ones
    ]
    rng.shuffle(edges)
    source, sink = rng.randrange(n - 1), n - 1
    assert path_features(n, edges, source, sink, OPS, no_path=99) == path_features_reference(
        n, edges, source, sink, OPS, 99
    )


def test_names_follow_the_subsets_in_op_order():
    names = feature_names("cell:", OPS)
    assert len(op_subsets(OPS)) == 7 and len(names) == 7 * len(FEATURES)
    assert names[:2] == ("cell:paths[a]", "cell:min_path[a]")
    assert names[-1] == "cell:out_source[a+b+c]"
    assert "cell:max_path[a+c]" in names
