"""NAS-Bench-201: a 4-node cell with 6 edges, 5 candidate ops per edge (15,625 cells, 6,466 classes).

Edge order (the string form's): 0->1 | 0->2, 1->2 | 0->3, 1->3, 2->3.
Accepted encodings:
- string: ``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``
- naslib: NASLib's op-index tuple, edges (1,2),(1,3),(1,4),(2,3),(2,4),(3,4) (1-based nodes) with
  0=skip_connect, 1=none, 2=nor_conv_3x3, 3=nor_conv_1x1, 4=avg_pool_3x3
- ops: the six op names in string edge order
- index: the NAS-Bench-201 architecture index (0..15624)

This module is torch-free; networks are built by ``archscore.estimators.spaces.nb201.network``.
"""

from __future__ import annotations

import functools
import itertools
import numbers
import random
from collections.abc import Iterator
from typing import Any

from archscore.estimators.spaces import base
from archscore.estimators.spaces.base import EncodingError, NetworkField, SearchSpace, decode_json_text, register_space
from archscore.estimators.spaces.counting import FLOPS_BN_PER_ELEMENT, FLOPS_RELU_PER_ELEMENT
from archscore.estimators.spaces.nb201 import data

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
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < len(NASLIB_OPS):
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
    return tuple(
        op != "none" and s in reach_from_input and t in reaches_output for op, (s, t) in zip(arch, EDGES)
    )


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


# --- analytic cost of the standard network (torch-free; equal to counting the built network) ---
# FLOP convention of the published NB201 cost column: conv and linear multiply-accumulates (plus
# bias adds), BatchNorm 2 per element, ReLU 1 per element, average pooling k*k per output element,
# global pooling 1 per input element; additions of the cell sum are free. This reproduces the
# published column up to a constant 1,078 FLOPs per network (< 0.02%) whose origin is unknown.


def _cell_op_cost(op: str, c: int, hw: int) -> tuple[int, int]:
    """(params, FLOPs) of one cell op with c channels on an hw x hw map."""
    elements = c * hw * hw
    elementwise = (FLOPS_RELU_PER_ELEMENT + FLOPS_BN_PER_ELEMENT) * elements
    if op == "nor_conv_3x3":
        return c * c * 9 + 2 * c, 9 * c * elements + elementwise
    if op == "nor_conv_1x1":
        return c * c + 2 * c, c * elements + elementwise
    if op == "avg_pool_3x3":
        return 0, 9 * elements
    return 0, 0


def _resblock_cost(c_in: int, c_out: int, hw_in: int) -> tuple[int, int]:
    hw = (hw_in + 1) // 2
    out = c_out * hw * hw
    params = (c_in * c_out * 9 + 2 * c_out) + (c_out * c_out * 9 + 2 * c_out) + c_in * c_out
    macs = (c_in * 9 + c_out * 9 + c_in) * out
    relu = FLOPS_RELU_PER_ELEMENT * (c_in * hw_in * hw_in + out)
    bn = FLOPS_BN_PER_ELEMENT * 2 * out
    pool = 4 * c_in * (hw_in // 2) * (hw_in // 2)
    return params, macs + relu + bn + pool


def network_cost(arch: Arch, C: int = 16, N: int = 5, num_classes: int = 10, input_size: int = 32) -> tuple[int, int]:
    """(trainable parameters, FLOPs per sample) of the standalone network, counted as NAS-Bench-201
    does: every op of the cell counts, also on edges that do not reach the output."""
    hw, c = input_size, C
    params = 3 * C * 9 + 2 * C  # stem conv + BN
    flops = (27 + FLOPS_BN_PER_ELEMENT) * C * hw * hw
    for stage in range(3):
        if stage > 0:
            p, f = _resblock_cost(c, 2 * c, hw)
            params, flops = params + p, flops + f
            hw, c = (hw + 1) // 2, 2 * c
        for _ in range(N):
            for op in arch:
                p, f = _cell_op_cost(op, c, hw)
                params, flops = params + p, flops + f
    params += 2 * c + c * num_classes + num_classes  # last BN + classifier
    flops += (FLOPS_BN_PER_ELEMENT + FLOPS_RELU_PER_ELEMENT + 1) * c * hw * hw  # last BN, ReLU, global pool
    flops += c * num_classes + num_classes
    return params, flops


@register_space("nasbench201", "nas-bench-201")
class NB201Space(SearchSpace):
    name = "nb201"
    description = "NAS-Bench-201 cell space (5 ops on 6 edges of a 4-node cell), standard network C=16, N=5"
    encodings = {
        "string": "|op~0|+|op~0|op~1|+|op~0|op~1|op~2| with ops " + ", ".join(OPS),
        "naslib": "list of 6 op indices, NASLib edge order (1,2),(1,3),(1,4),(2,3),(2,4),(3,4); "
        "0=skip_connect, 1=none, 2=nor_conv_3x3, 3=nor_conv_1x1, 4=avg_pool_3x3",
        "ops": "list of 6 op names in string edge order 0->1, 0->2, 1->2, 0->3, 1->3, 2->3",
        "index": "NAS-Bench-201 architecture index, integer 0..15624",
    }
    capabilities = frozenset(
        {base.ENUMERATE, base.ISOMORPHISM, base.COST, base.GROUND_TRUTH, base.PUBLISHED, base.NETWORK, base.SUPERNET,
         base.OPERATIONS}
    )
    ground_truth_columns = data.GROUND_TRUTH_COLUMNS
    default_network = {"C": 16, "N": 5, "num_classes": 10, "input_size": 32}
    supernet_network = {
        "C": NetworkField(16, 1, 128, "channels of the first stage"),
        "N": NetworkField(5, 1, 20, "cells per stage"),
    }
    supernet_rule = ("every cell with a conv on an input-to-output path is trained; any cell is scored, "
                     "edges that do not reach the output skipped")
    supernet_transfers_weights = True
    partition_rule = "the op on edge 0->1 (of the cell with dead edges set to none)"

    def parse(self, encoding: Any) -> Arch:
        if isinstance(encoding, str):
            if encoding.lstrip()[:1] == "[":  # a list form given as JSON text
                decoded = decode_json_text(encoding, "a list")
                if not isinstance(decoded, list):
                    raise EncodingError("a list given as text must decode to a list")
                return self.parse(decoded)
            return string_to_arch(encoding)
        if isinstance(encoding, bool):
            raise EncodingError("a boolean is not an architecture encoding")
        if isinstance(encoding, int):
            return self.from_index(encoding)
        if isinstance(encoding, (list, tuple)):
            if encoding and all(isinstance(v, str) for v in encoding):
                if len(encoding) != NUM_EDGES:
                    raise EncodingError(f"op-name list must have {NUM_EDGES} entries, got {len(encoding)}")
                return tuple(_check_op(op, pos) for pos, op in enumerate(encoding))
            return naslib_to_arch(encoding)
        raise EncodingError(
            f"unsupported encoding of type {type(encoding).__name__}; accepted: {', '.join(self.encodings)}"
        )

    def from_index(self, index: int) -> Arch:
        table = data.index_table()
        if not 0 <= index < len(table):
            raise EncodingError(f"NAS-Bench-201 index {index} out of range 0..{len(table) - 1}")
        return string_to_arch(table[index])

    def to_string(self, arch: Arch) -> str:
        return arch_to_string(arch)

    def to_json(self, arch: Arch) -> list[str]:
        return list(arch)

    def operation_counts(self, arch: Arch) -> dict[str, int]:
        """The op on each of the six edges (none included: it is a choice like the others)."""
        counts: dict[str, int] = {}
        for op in arch:
            counts[op] = counts.get(op, 0) + 1
        return counts

    def op_slots(self, arch: Arch) -> tuple[tuple, tuple[str, ...]]:
        """One fixed frame: the six edges, in string order."""
        return (), tuple(arch)

    def canonical_key(self, arch: Arch) -> str:
        return canonical_key(arch)

    def truth_key(self, arch: Arch) -> str:
        """Isomorphic cells were trained separately in NAS-Bench-201: ground truth is per cell."""
        return arch_to_string(arch)

    def enumerate(self) -> Iterator[Arch]:
        return iter(_all_archs())

    @property
    def size(self) -> int:
        return len(OPS) ** NUM_EDGES

    def isomorphism_classes(self) -> dict[str, tuple[Arch, ...]]:
        return isomorphism_classes()

    def representative(self, arch: Arch) -> Arch:
        """The first member of the class in enumeration order."""
        return isomorphism_classes()[canonical_key(arch)][0]

    def sample(self, n: int, seed: int, deisomorphic: bool = False) -> list[Arch]:
        """n distinct architectures (n distinct classes when de-isomorphic), reproducible for a seed."""
        rng = random.Random(seed)
        if deisomorphic:
            classes = list(isomorphism_classes().values())
            if n > len(classes):
                raise ValueError(f"n={n} exceeds the {len(classes)} isomorphism classes")
            return [rng.choice(members) for members in rng.sample(classes, n)]
        if n > self.size:
            raise ValueError(f"n={n} exceeds the space size {self.size}")
        return [_all_archs()[i] for i in rng.sample(range(self.size), n)]

    def cost(self, arch: Arch, **config: Any) -> tuple[int, int]:
        return network_cost(arch, **{**self.default_network, **config})

    def ground_truth(self, column: str) -> dict[str, float]:
        return data.ground_truth(column)

    def published_proxies(self) -> dict[str, dict[str, float]]:
        return data.published_proxies()

    def published_archs(self) -> list[Arch]:
        return sorted(string_to_arch(s) for s in data.published_proxies()["params"])

    def build_network(self, arch: Arch, **config: Any):
        from archscore.estimators.spaces.nb201.network import NB201Network

        return NB201Network(arch, **{**self.default_network, **config})

    def build_supernet(self, **config: Any):
        from archscore.estimators.spaces.nb201.supernet import NB201Supernet

        return NB201Supernet(**config)

    def trainable(self, arch: Arch) -> bool:
        """A conv on an input-to-output path (docs/concepts/estimators.md)."""
        return has_conv_path(arch)

    def random_arch(self, rng: random.Random) -> Arch:
        return tuple(rng.choice(OPS) for _ in range(NUM_EDGES))

    def partition_values(self) -> tuple[str, ...]:
        return OPS

    def partition_value(self, arch: Arch) -> str:
        return arch[0]

    def choice_slots(self) -> tuple[tuple[str, ...], ...]:
        return (OPS,) * NUM_EDGES

    def from_choices(self, values) -> Arch:
        return tuple(values)

    def supernet_path(self, arch: Arch) -> Arch:
        """Dead edges set to none: the supernet skips them."""
        return tuple(op if live else "none" for op, live in zip(arch, live_edges(arch)))
