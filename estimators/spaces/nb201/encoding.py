"""NAS-Bench-201's vocabulary: the architecture type, ops and edges, the accepted encodings and their
string forms, and the isomorphism key (torch-free; the bottom of the package: it imports no other
module of it).

Edge order (the string form's): 0->1 | 0->2, 1->2 | 0->3, 1->3, 2->3.
Encodings:
- string: ``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``
- naslib: NASLib's op-index tuple, edges (1,2),(1,3),(1,4),(2,3),(2,4),(3,4) (1-based nodes) with
  0=skip_connect, 1=none, 2=nor_conv_3x3, 3=nor_conv_1x1, 4=avg_pool_3x3
- ops: the six op names in string edge order
"""

from __future__ import annotations

import functools
import itertools
import numbers
from typing import Any

from archscore.estimators.spaces import graph_features
from archscore.estimators.spaces.base import EncodingError

Arch = tuple[str, ...]  # the six op names in string edge order

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
CONV_OPS = frozenset({"nor_conv_1x1", "nor_conv_3x3"})
# (source, target) of each edge, in string order
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NUM_EDGES = len(EDGES)

# NASLib's op order and edge order, kept here only to convert.
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
NASLIB_EDGES = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))  # 0-based (source, target)
_NASLIB_TO_STRING_POS = tuple(EDGES.index(e) for e in NASLIB_EDGES)


def _edge_name(pos: int) -> str:
    s, t = EDGES[pos]
    return f"edge {s}->{t} (position {pos})"


def _check_op(op: Any, pos: int) -> str:
    if op not in OPS:
        raise EncodingError(f"{_edge_name(pos)}: unknown op {op!r}; allowed: {', '.join(OPS)}")
    return op


def string_to_arch(text: str) -> Arch:
    """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
    nodes = text.strip().split("+")
    if len(nodes) != 3:
        raise EncodingError(
            f"expected 3 node groups separated by '+' (|op~0|+|op~0|op~1|+|op~0|op~1|op~2|), got {len(nodes)}"
        )
    ops: list[str] = []
    for target, group in enumerate(nodes, start=1):
        if not (group.startswith("|") and group.endswith("|")):
            raise EncodingError(f"node {target}: group {group!r} must start and end with '|'")
        terms = group[1:-1].split("|")
        if len(terms) != target:
            raise EncodingError(f"node {target}: expected {target} input edge(s), got {len(terms)} in {group!r}")
        for source, term in enumerate(terms):
            pos = EDGES.index((source, target))
            op, sep, src = term.partition("~")
            if not sep or src != str(source):
                raise EncodingError(f"{_edge_name(pos)}: term {term!r} must read 'op~{source}'")
            ops.append(_check_op(op, pos))
    return tuple(ops)


def arch_to_string(arch: Arch) -> str:
    o = arch
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


def naslib_to_arch(indices: Any) -> Arch:
    """NASLib op-index tuple -> architecture (the input is not modified)."""
    if len(indices) != NUM_EDGES:
        raise EncodingError(f"NASLib op-index tuple must have {NUM_EDGES} entries, got {len(indices)}")
    ops = [""] * NUM_EDGES
    for i, value in enumerate(indices):
        pos = _NASLIB_TO_STRING_POS[i]
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= int(value) < len(NASLIB_OPS):
            raise EncodingError(
                f"{_edge_name(pos)} (NASLib entry {i}): op index {value!r} must be an integer 0..4 "
                "(0=skip_connect, 1=none, 2=nor_conv_3x3, 3=nor_conv_1x1, 4=avg_pool_3x3)"
            )
        ops[pos] = NASLIB_OPS[int(value)]
    return tuple(ops)


def arch_to_naslib(arch: Arch) -> tuple[int, ...]:
    return tuple(NASLIB_OPS.index(arch[pos]) for pos in _NASLIB_TO_STRING_POS)


def canonical_key(arch: Arch) -> str:
    """Isomorphism key of NAS-Bench-201 (docs/concepts/spaces.md; NB201's ``to_unique_str(consider_zero=True)``):
    S0="0"; a term per input edge j->i is "#" when the op is none or S_j is "#", S_j for skip,
    "(S_j)@op" otherwise; S_i = sorted terms joined by "+"; key = S_3. This is the rule behind the
    published 6,466 classes (it merges fewer cells than full functional equivalence would)."""
    node = ["0"]
    for target in (1, 2, 3):
        terms = []
        for source in range(target):
            op = arch[EDGES.index((source, target))]
            s = node[source]
            if op == "none" or s == "#":
                terms.append("#")
            else:
                terms.append(s if op == "skip_connect" else f"({s})@{op}")
        node.append("+".join(sorted(terms)))
    return node[3]


def live_edges(arch: Arch) -> tuple[bool, ...]:
    """Edges that lie on an input-to-output path through non-none ops."""
    reach_from_input = {0}
    for s, t in EDGES:  # EDGES is topologically ordered by target
        if arch[EDGES.index((s, t))] != "none" and s in reach_from_input:
            reach_from_input.add(t)
    reaches_output = {3}
    for s, t in sorted(EDGES, key=lambda e: -e[0]):
        if arch[EDGES.index((s, t))] != "none" and t in reaches_output:
            reaches_output.add(s)
    return tuple(op != "none" and s in reach_from_input and t in reaches_output for op, (s, t) in zip(arch, EDGES))


def has_conv_path(arch: Arch) -> bool:
    """True when a convolution lies on an input-to-output path."""
    return any(live and op in CONV_OPS for live, op in zip(live_edges(arch), arch))


@functools.lru_cache(maxsize=1)
def _all_archs() -> tuple[Arch, ...]:
    return tuple(itertools.product(OPS, repeat=NUM_EDGES))


@functools.lru_cache(maxsize=1)
def isomorphism_classes() -> dict[str, tuple[Arch, ...]]:
    """Canonical key -> members, in enumeration order."""
    classes: dict[str, list[Arch]] = {}
    for arch in _all_archs():
        classes.setdefault(canonical_key(arch), []).append(arch)
    return {k: tuple(v) for k, v in classes.items()}


# The encoding features (SearchSpace.encoding_features): the op of each edge one-hot (NASLib's
# adjacency one-hot for NB201), how many edges hold each op, then the cell's path features under each
# subset of the ops other than none (graph_features: node 0 the input, node 3 the output).
PATH_OPS = tuple(op for op in OPS if op != "none")
FEATURE_NAMES = (
    tuple(f"{s}->{t}={op}" for s, t in EDGES for op in OPS)
    + tuple(f"count={op}" for op in OPS)
    + graph_features.feature_names("", PATH_OPS)
)


def arch_features(arch: Arch) -> tuple[float, ...]:
    one_hot = tuple(1.0 if arch[pos] == op else 0.0 for pos in range(NUM_EDGES) for op in OPS)
    counts = tuple(float(arch.count(op)) for op in OPS)
    edges = ((s, t, arch[pos]) for pos, (s, t) in enumerate(EDGES))
    return one_hot + counts + graph_features.path_features(4, edges, 0, 3, PATH_OPS, no_path=NUM_EDGES)
