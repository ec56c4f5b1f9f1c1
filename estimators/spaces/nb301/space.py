"""NAS-Bench-301 (the DARTS space): a normal and a reduction cell, each with 4 intermediate nodes
(graph nodes 2..5) that sum two ops applied to distinct earlier nodes (0, 1 = the outputs of the two
previous cells); the cell outputs the concatenation of its concat nodes.

Accepted encodings (see ``NB301Space.encodings``):
- json: ``{"normal": [[op, input], x8], "normal_concat": [2, 3, 4, 5], "reduce": [...],
  "reduce_concat": [...]}``, as an object or as its JSON text; all four keys are required
- darts: DARTS's string ``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5],
  reduce=[...], reduce_concat=range(2, 6))``, read with ``ast`` (never evaluated)

Pairs 2k and 2k+1 are the two inputs of node k+2, which may read nodes 0..k+1. A node that is neither
in the concat nor read by a node that runs does not run: its ops are neither built nor counted.

This module is torch-free; networks are built by ``archscore.estimators.spaces.nb301.network``.
"""

from __future__ import annotations

import ast
import itertools
import numbers
import random
from collections.abc import Sequence
from typing import Any, NamedTuple

from archscore.estimators.spaces import base
from archscore.estimators.spaces.base import EncodingError, SearchSpace, decode_json_text, register_space
from archscore.estimators.spaces.counting import FLOPS_BN_PER_ELEMENT, FLOPS_RELU_PER_ELEMENT
from archscore.estimators.spaces.nb301 import data

OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
NUM_NODES = 4  # intermediate nodes per cell (graph nodes 2..5)
NUM_PAIRS = 2 * NUM_NODES
CONCAT_NODES = tuple(range(2, 2 + NUM_NODES))  # (2, 3, 4, 5): the nodes a concat may list
KEYS = ("normal", "normal_concat", "reduce", "reduce_concat")
_MAX_TEXT = 10_000  # longest genotype text accepted (a real one is under 500 characters)

Pair = tuple[str, int]


class Genotype(NamedTuple):
    """A DARTS genotype: 8 (op, input) pairs and the concat nodes of each cell."""

    normal: tuple[Pair, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Pair, ...]
    reduce_concat: tuple[int, ...]


Arch = Genotype


# --- validation ---
def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_cell(name: str, pairs: Any) -> tuple[Pair, ...]:
    if not isinstance(pairs, (list, tuple)):
        raise EncodingError(f"{name}: must be a list of {NUM_PAIRS} [op, input] pairs, got {type(pairs).__name__}")
    if len(pairs) != NUM_PAIRS:
        raise EncodingError(
            f"{name}: expected exactly {NUM_PAIRS} [op, input] pairs ({NUM_NODES} nodes x 2 inputs), got {len(pairs)}"
        )
    out: list[Pair] = []
    for i, pair in enumerate(pairs):
        where = f"{name} pair {i} (node {i // 2 + 2})"
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise EncodingError(f"{where}: must be an [op, input] pair, got {pair!r}")
        op, node = pair
        if not isinstance(op, str) or op not in OPS:
            raise EncodingError(f"{where}: unknown op {op!r}; allowed: {', '.join(OPS)}")
        if not _is_int(node):
            raise EncodingError(f"{where}: input must be an integer node index, got {node!r}")
        out.append((op, int(node)))
    for k in range(NUM_NODES):
        (_, a), (_, b) = out[2 * k], out[2 * k + 1]
        where = f"{name} node {k + 2} (pairs {2 * k}-{2 * k + 1})"
        for node in (a, b):
            if not 0 <= node <= k + 1:
                raise EncodingError(f"{where}: input {node} is not an earlier node (allowed 0..{k + 1})")
        if a == b:
            raise EncodingError(f"{where}: inputs {a} and {b} must be distinct earlier nodes")
    return tuple(out)


def _check_concat(name: str, concat: Any) -> tuple[int, ...]:
    if isinstance(concat, range):
        concat = list(concat)
    if not isinstance(concat, (list, tuple)):
        raise EncodingError(f"{name}: must be a non-empty list of distinct nodes 2..5, got {type(concat).__name__}")
    if not concat:
        raise EncodingError(f"{name}: must not be empty (a non-empty list of distinct nodes 2..5)")
    seen: set[int] = set()
    for node in concat:
        if not _is_int(node) or node not in CONCAT_NODES:
            raise EncodingError(f"{name}: {node!r} is not a node 2..5")
        if node in seen:
            raise EncodingError(f"{name}: node {node} is listed twice; concat nodes must be distinct")
        seen.add(int(node))
    return tuple(int(n) for n in concat)


def genotype_from_json(obj: Any) -> Genotype:
    """Validate the object form ``{"normal", "normal_concat", "reduce", "reduce_concat"}``."""
    if not isinstance(obj, dict):
        raise EncodingError(f"a genotype object must be a JSON object, got {type(obj).__name__}")
    missing = [k for k in KEYS if k not in obj]
    if missing:
        raise EncodingError(f"genotype: missing key(s) {', '.join(missing)}; required: {', '.join(KEYS)}")
    unknown = sorted(str(k) for k in obj if k not in KEYS)
    if unknown:
        raise EncodingError(f"genotype: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(KEYS)}")
    return Genotype(
        _check_cell("normal", obj["normal"]),
        _check_concat("normal_concat", obj["normal_concat"]),
        _check_cell("reduce", obj["reduce"]),
        _check_concat("reduce_concat", obj["reduce_concat"]),
    )


def genotype_to_json(g: Genotype) -> dict[str, list]:
    return {
        "normal": [[op, i] for op, i in g.normal],
        "normal_concat": list(g.normal_concat),
        "reduce": [[op, i] for op, i in g.reduce],
        "reduce_concat": list(g.reduce_concat),
    }


# --- the DARTS string ---
def _literal(key: str, node: ast.expr) -> Any:
    """A literal value, or ``range(a[, b[, c]])`` with literal integer arguments (as DARTS writes concat)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        if node.keywords or not 1 <= len(node.args) <= 3:
            raise EncodingError(f"{key}: range() takes 1 to 3 integer arguments")
        args = [_literal(key, a) for a in node.args]
        if not all(_is_int(a) for a in args) or (len(args) == 3 and args[2] == 0):
            raise EncodingError(f"{key}: range() takes integer arguments (and a non-zero step)")
        r = range(*args)
        try:
            count = len(r)
        except OverflowError:  # more items than an index can hold
            count = None
        if count is None or count > NUM_NODES:
            raise EncodingError(f"{key}: {r!r} lists {'too many' if count is None else count} nodes; a concat "
                                "lists distinct nodes 2..5")
        return list(r)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise EncodingError(f"{key}: must be a literal list (or range(...) for a concat)") from None


def genotype_from_darts(text: str) -> Genotype:
    """Parse ``Genotype(normal=[...], normal_concat=..., reduce=[...], reduce_concat=...)`` without
    evaluating it: the syntax tree is read and only literals and ``range(...)`` are accepted."""
    text = text.strip()
    if len(text) > _MAX_TEXT:
        raise EncodingError(f"genotype text of {len(text)} characters is too long (at most {_MAX_TEXT})")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise EncodingError("DARTS genotype string: not valid Genotype(normal=..., ...) syntax") from None
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Genotype"):
        raise EncodingError("DARTS genotype string: must be a single Genotype(...) call")
    if len(call.args) > len(KEYS):
        raise EncodingError(f"DARTS genotype string: at most {len(KEYS)} arguments ({', '.join(KEYS)})")
    fields: dict[str, ast.expr] = dict(zip(KEYS, call.args))
    for kw in call.keywords:
        if kw.arg is None:
            raise EncodingError("DARTS genotype string: **arguments are not accepted")
        if kw.arg in fields:
            raise EncodingError(f"DARTS genotype string: {kw.arg} given twice")
        fields[kw.arg] = kw.value
    return genotype_from_json({k: _literal(k, v) for k, v in fields.items()})


def genotype_to_darts(g: Genotype) -> str:
    def pairs(ps: tuple[Pair, ...]) -> str:
        return "[" + ", ".join(f"({op!r}, {i})" for op, i in ps) + "]"

    return (
        f"Genotype(normal={pairs(g.normal)}, normal_concat={list(g.normal_concat)}, "
        f"reduce={pairs(g.reduce)}, reduce_concat={list(g.reduce_concat)})"
    )


# --- canonical form ---
def canonical_genotype(g: Genotype) -> Genotype:
    """The two pairs of each node sorted by (input, op); concat sorted. Swapping a node's inputs or
    reordering a concat does not change the function, so these share the canonical form."""

    def cell(pairs: tuple[Pair, ...]) -> tuple[Pair, ...]:
        out: list[Pair] = []
        for k in range(NUM_NODES):
            out.extend(sorted(pairs[2 * k : 2 * k + 2], key=lambda p: (p[1], p[0])))
        return tuple(out)

    return Genotype(cell(g.normal), tuple(sorted(g.normal_concat)), cell(g.reduce), tuple(sorted(g.reduce_concat)))


def canonical_key(g: Genotype) -> str:
    """``normal=<node 2>|<node 3>|<node 4>|<node 5>@<concat>;reduce=...@<concat>``, a node written
    ``op~input+op~input`` with its pairs sorted by (input, op) and the concat as sorted digits, e.g.
    ``normal=sep_conv_3x3~0+sep_conv_3x3~1|...@2345;reduce=...@2345``. Only input swaps and concat
    order are merged; ops of nodes that do not run and relabellings of nodes are kept apart."""
    c = canonical_genotype(g)

    def cell(pairs: tuple[Pair, ...], concat: tuple[int, ...]) -> str:
        nodes = ("+".join(f"{op}~{i}" for op, i in pairs[2 * k : 2 * k + 2]) for k in range(NUM_NODES))
        return "|".join(nodes) + "@" + "".join(map(str, concat))

    return f"normal={cell(c.normal, c.normal_concat)};reduce={cell(c.reduce, c.reduce_concat)}"


def live_nodes(pairs: Sequence[Pair], concat: Sequence[int]) -> tuple[int, ...]:
    """The intermediate nodes (2..5) that run: the concat nodes and the nodes they read, recursively."""
    live = set(concat)
    for node in range(1 + NUM_NODES, 1, -1):
        if node in live:
            live.update(i for _, i in pairs[2 * (node - 2) : 2 * (node - 2) + 2] if i >= 2)
    return tuple(sorted(live))


def random_genotype(rng: random.Random) -> Genotype:
    """Each node draws 2 distinct inputs uniformly from its predecessors and an op per input
    uniformly; concat [2, 3, 4, 5] (NASLib's random NB301 architecture)."""
    cells = []
    for _ in range(2):
        pairs: list[Pair] = []
        for k in range(NUM_NODES):
            a, b = rng.sample(range(k + 2), 2)
            pairs += [(rng.choice(OPS), a), (rng.choice(OPS), b)]
        cells.append(tuple(pairs))
    return Genotype(cells[0], CONCAT_NODES, cells[1], CONCAT_NODES)


# --- analytic cost of the standard network (torch-free; equal to counting the built network) ---
# Convention of the published NAS-Bench-Suite-Zero columns (NASLib counts with tensorwatch, whose
# per-module rules these are), reproducing all 725 rows exactly: parameters of the modules that run;
# FLOPs = conv multiply-adds (k*k*C_in/groups*C_out per output position, no bias) + Linear in*out
# (the bias adds are not counted) + BatchNorm 2 per element when affine, 1 when not + ReLU 1 per
# element + max/avg pooling k*k per output element + global average pooling C*(H+1)*(W+1)
# (tensorwatch's adaptive-pool rule; 41,472 for 512x8x8); node sums and concatenations are free.
FLOPS_BN_NONAFFINE_PER_ELEMENT = 1


def _gap_flops(c: int, hw: int) -> int:
    return c * (hw + 1) * (hw + 1)


def _out_hw(hw: int, stride: int) -> int:
    return (hw - 1) // stride + 1  # every op here: "same" padding, kernel 1, 3 or 5, dilation 1 or 2


def _factorized_reduce_cost(c_in: int, c_out: int, hw: int, affine: bool) -> tuple[int, int]:
    """ReLU, two 1x1 stride-2 convs to c_out//2 channels each (one offset by a pixel), concat, BN."""
    ho = _out_hw(hw, 2)
    half = c_out // 2
    bn = FLOPS_BN_PER_ELEMENT if affine else FLOPS_BN_NONAFFINE_PER_ELEMENT
    params = 2 * c_in * half + (2 * c_out if affine else 0)
    flops = FLOPS_RELU_PER_ELEMENT * c_in * hw * hw + 2 * c_in * half * ho * ho + bn * c_out * ho * ho
    return params, flops


def _relu_conv_bn_cost(c_in: int, c_out: int, hw: int) -> tuple[int, int]:
    """ReLU, 1x1 conv, affine BN (the preprocessing of a cell input)."""
    e = hw * hw
    flops = FLOPS_RELU_PER_ELEMENT * c_in * e + c_in * c_out * e + FLOPS_BN_PER_ELEMENT * c_out * e
    return c_in * c_out + 2 * c_out, flops


def op_cost(op: str, c: int, hw: int, stride: int) -> tuple[int, int]:
    """(params, FLOPs) of one cell op with c channels on an hw x hw input; cell ops use non-affine BN."""
    ho = _out_hw(hw, stride)
    e_in, e_out = c * hw * hw, c * ho * ho
    bn = FLOPS_BN_NONAFFINE_PER_ELEMENT * e_out
    if op.startswith("sep_conv_"):  # (ReLU, depthwise kxk, pointwise 1x1, BN) x 2, stride on the first
        k = int(op[-1])
        params = 2 * (c * k * k + c * c)
        flops = FLOPS_RELU_PER_ELEMENT * (e_in + e_out) + 2 * (k * k + c) * e_out + 2 * bn
        return params, flops
    if op.startswith("dil_conv_"):  # ReLU, depthwise kxk dilation 2, pointwise 1x1, BN
        k = int(op[-1])
        return c * k * k + c * c, FLOPS_RELU_PER_ELEMENT * e_in + (k * k + c) * e_out + bn
    if op in ("max_pool_3x3", "avg_pool_3x3"):  # pool 3x3 + non-affine BN
        return 0, 9 * e_out + bn
    if op == "skip_connect":
        return (0, 0) if stride == 1 else _factorized_reduce_cost(c, c, hw, affine=False)
    raise ValueError(f"unknown NB301 op {op!r}")


def reduction_cells(layers: int) -> tuple[int, ...]:
    """Indices of the reduction cells (DARTS: layers//3 and 2*layers//3)."""
    return tuple(sorted({layers // 3, 2 * layers // 3}))


def check_network_config(C: int, layers: int, num_classes: int, input_size: int) -> None:
    """Raise ValueError for a network that cannot be built (shared with the torch network)."""
    for name, value in (("C", C), ("layers", layers), ("num_classes", num_classes), ("input_size", input_size)):
        if not _is_int(value) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    hw = input_size
    for _ in reduction_cells(layers):
        if hw % 2:
            raise ValueError(
                f"input_size {input_size}: every reduction needs an even feature map "
                f"(a multiple of {2 ** len(reduction_cells(layers))})"
            )
        hw //= 2


def network_cost(
    arch: Genotype, C: int = 32, layers: int = 8, num_classes: int = 10, input_size: int = 32
) -> tuple[int, int]:
    """(parameters, FLOPs of one sample) of the standard network: stem conv3x3 (3 -> 3C) + BN; ``layers``
    cells, reduction cells at layers//3 and 2*layers//3 doubling the channels; each cell preprocesses
    its two inputs (ReLU-conv1x1-BN, or FactorizedReduce for the input from before a reduction);
    global average pooling and a linear classifier. Only nodes that run are counted."""
    check_network_config(C, layers, num_classes, input_size)
    reductions = reduction_cells(layers)
    hw = input_size
    params = 3 * 9 * 3 * C + 2 * 3 * C
    flops = (27 + FLOPS_BN_PER_ELEMENT) * 3 * C * hw * hw
    c_pp = c_p = 3 * C
    hw_pp = hw
    c = C
    reduction_prev = False
    for i in range(layers):
        reduction = i in reductions
        if reduction:
            c *= 2
        pairs, concat = (arch.reduce, arch.reduce_concat) if reduction else (arch.normal, arch.normal_concat)
        p0 = _factorized_reduce_cost(c_pp, c, hw_pp, affine=True) if reduction_prev else _relu_conv_bn_cost(c_pp, c, hw)
        p1 = _relu_conv_bn_cost(c_p, c, hw)
        params += p0[0] + p1[0]
        flops += p0[1] + p1[1]
        for node in live_nodes(pairs, concat):
            for op, src in pairs[2 * (node - 2) : 2 * (node - 2) + 2]:
                stride = 2 if reduction and src < 2 else 1
                p, f = op_cost(op, c, hw if stride == 2 or not reduction else _out_hw(hw, 2), stride)
                params += p
                flops += f
        c_pp, c_p = c_p, len(concat) * c
        hw_pp, hw = hw, (_out_hw(hw, 2) if reduction else hw)
        reduction_prev = reduction
    params += c_p * num_classes + num_classes
    flops += _gap_flops(c_p, hw) + c_p * num_classes
    return params, flops


@register_space("nasbench301", "nas-bench-301", "darts")
class NB301Space(SearchSpace):
    name = "nb301"
    description = (
        "NAS-Bench-301 / DARTS cell space (normal and reduction cells, 4 nodes with 2 inputs each, 7 ops), "
        "standard network C=32, 8 cells (NAS-Bench-Suite-Zero's)"
    )
    encodings = {
        "json": '{"normal": [[op, input], x8], "normal_concat": [2, 3, 4, 5], "reduce": [...], '
        '"reduce_concat": [...]} (object or JSON text; all four keys required; pairs 2k, 2k+1 feed node k+2 '
        "from distinct nodes 0..k+1; concat: distinct nodes 2..5) with ops " + ", ".join(OPS),
        "darts": "Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], reduce=[...], "
        "reduce_concat=range(2, 6)) as DARTS prints it (read, never evaluated)",
    }
    capabilities = frozenset(
        {base.COST, base.GROUND_TRUTH, base.PUBLISHED, base.NETWORK, base.OPERATIONS, base.SUPERNET}
    )
    supernet_network = {
        "C": base.NetworkField(16, 2, 64, "channels of the first cells (even)"),
        "layers": base.NetworkField(8, 3, 20, "cells, reductions at layers//3 and 2*layers//3"),
    }
    supernet_rule = ("DARTS weight sharing: every (cell, edge, op) has its weights; genotypes whose concats are "
                     "[2, 3, 4, 5] are scored, those whose nodes read two different inputs trained")
    supernet_transfers_weights = True
    partition_rule = "the op on node 2's first input in the normal cell (pairs in canonical order)"
    ground_truth_columns = data.GROUND_TRUTH_COLUMNS
    default_network = {"C": 32, "layers": 8, "num_classes": 10, "input_size": 32}

    def parse(self, encoding: Any) -> Genotype:
        if isinstance(encoding, tuple) and hasattr(encoding, "_fields"):  # this or DARTS's Genotype
            return genotype_from_json(dict(zip(encoding._fields, encoding)))
        if isinstance(encoding, str):
            text = encoding.strip()
            if text.startswith("{"):
                if len(text) > _MAX_TEXT:
                    raise EncodingError(f"genotype text of {len(text)} characters is too long (at most {_MAX_TEXT})")
                encoding = decode_json_text(text, "a genotype starting with '{'")
            elif text.startswith("Genotype"):
                return genotype_from_darts(text)
            else:
                raise EncodingError(
                    f"unrecognised text {text[:40]!r}; give the JSON object or DARTS's Genotype(normal=..., ...)"
                )
        if isinstance(encoding, dict):
            return genotype_from_json(encoding)
        raise EncodingError(
            f"unsupported encoding of type {type(encoding).__name__}; accepted: {', '.join(self.encodings)}"
        )

    def to_string(self, arch: Genotype) -> str:
        return genotype_to_darts(arch)

    def to_json(self, arch: Genotype) -> dict[str, list]:
        return genotype_to_json(arch)

    def canonical_key(self, arch: Genotype) -> str:
        return canonical_key(arch)

    def operation_counts(self, arch: Genotype) -> dict[str, int]:
        """The ops of the nodes that run, normal and reduction cell together."""
        counts: dict[str, int] = {}
        for pairs, concat in ((arch.normal, arch.normal_concat), (arch.reduce, arch.reduce_concat)):
            for node in live_nodes(pairs, concat):
                for op, _ in pairs[2 * (node - 2) : 2 * (node - 2) + 2]:
                    counts[op] = counts.get(op, 0) + 1
        return counts

    def op_slots(self, arch: Genotype) -> tuple[tuple, tuple[str, ...]]:
        """The frame is every node's inputs and the concat lists; the slots the 16 (op, input) pairs' ops."""
        frame = (tuple(i for _, i in arch.normal), arch.normal_concat, tuple(i for _, i in arch.reduce), arch.reduce_concat)
        return frame, tuple(op for op, _ in (*arch.normal, *arch.reduce))

    def sample(self, n: int, seed: int, deisomorphic: bool = False) -> list[Genotype]:
        """n genotypes with distinct canonical keys, reproducible for a seed."""
        if deisomorphic:
            raise ValueError("nb301 has no isomorphism classes; de-isomorphic sampling does not apply")
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        rng = random.Random(seed)
        seen: dict[str, Genotype] = {}
        while len(seen) < n:  # about 1e18 canonical genotypes: repeats are practically impossible
            g = random_genotype(rng)
            seen.setdefault(canonical_key(g), g)
        return list(seen.values())

    def cost(self, arch: Genotype, **config: Any) -> tuple[int, int]:
        return network_cost(arch, **{**self.default_network, **config})

    def ground_truth(self, column: str) -> dict[str, float]:
        return data.ground_truth(column)

    def published_proxies(self) -> dict[str, dict[str, float]]:
        return data.published_proxies()

    def published_archs(self) -> list[Genotype]:
        return data.published_archs()

    def build_supernet(self, **config: Any):
        from archscore.estimators.spaces.nb301.supernet import NB301Supernet

        return NB301Supernet(**config)

    def trainable(self, arch: Genotype) -> bool:
        """Concats [2, 3, 4, 5] and two different inputs for every node (as DARTS samples)."""
        cells = ((arch.normal, arch.normal_concat), (arch.reduce, arch.reduce_concat))
        return all(tuple(sorted(concat)) == CONCAT_NODES and all(pairs[2 * k][1] != pairs[2 * k + 1][1]
                                                                  for k in range(NUM_NODES))
                   for pairs, concat in cells)

    def random_arch(self, rng: random.Random) -> Genotype:
        return random_genotype(rng)

    def partition_values(self) -> tuple[str, ...]:
        return OPS

    def partition_value(self, arch: Genotype) -> str:
        return canonical_genotype(arch).normal[0][0]

    def choice_slots(self) -> tuple[tuple[Any, ...], ...]:
        """Per cell and node: the op on its first input, the op on its second, the pair of inputs."""
        return tuple(slot for _ in range(2) for k in range(NUM_NODES)
                     for slot in (OPS, OPS, tuple(itertools.combinations(range(k + 2), 2))))

    def from_choices(self, values) -> Genotype:
        values = list(values)
        cells = []
        for c in range(2):
            pairs = []
            for k in range(NUM_NODES):
                op_a, op_b, (a, b) = values[(c * NUM_NODES + k) * 3 : (c * NUM_NODES + k) * 3 + 3]
                pairs += [(op_a, a), (op_b, b)]
            cells.append(tuple(pairs))
        return Genotype(cells[0], CONCAT_NODES, cells[1], CONCAT_NODES)

    def build_network(self, arch: Genotype, **config: Any):
        from archscore.estimators.spaces.nb301.network import NB301Network

        return NB301Network(arch, **{**self.default_network, **config})
