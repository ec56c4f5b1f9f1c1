"""NAS-Bench-301's vocabulary: the genotype type, ops and nodes, the JSON and DARTS string forms, the
canonical form and key, and which nodes run (torch-free; the bottom of the package: it imports no
other module of it).

Pairs 2k and 2k+1 are the two inputs of node k+2, which may read nodes 0..k+1. A node that is neither
in the concat nor read by a node that runs does not run: its ops are neither built nor counted.
"""

from __future__ import annotations

import ast
import numbers
import random
from collections.abc import Sequence
from typing import Any, NamedTuple

from archscore.estimators.spaces import graph_features
from archscore.estimators.spaces.base import EncodingError

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
            raise EncodingError(
                f"{key}: {r!r} lists {'too many' if count is None else count} nodes; a concat lists distinct nodes 2..5"
            )
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


# The encoding features (SearchSpace.encoding_features): per cell (normal, then reduce), each of the 14
# possible edges i -> j (node j in 2..5, input i < j) one-hot over OPS (1 where the genotype has the pair
# (op, i) feeding node j; a node's inputs are distinct, so an edge holds at most one op), then the count of
# each op over the cell's 8 pairs, as written (nodes that do not run included), then the cell's path
# features (graph_features) under each subset of the op families of PATH_GROUPS, from a source that
# feeds both inputs to the output that concatenates the concat nodes.
PATH_GROUPS = {
    "max_pool_3x3": "pool",
    "avg_pool_3x3": "pool",
    "skip_connect": "skip",
    "sep_conv_3x3": "sep_conv",
    "sep_conv_5x5": "sep_conv",
    "dil_conv_3x3": "dil_conv",
    "dil_conv_5x5": "dil_conv",
}
_FAMILIES = tuple(dict.fromkeys(PATH_GROUPS.values()))
EDGES = tuple((i, j) for j in range(2, 2 + NUM_NODES) for i in range(j))
FEATURE_NAMES = tuple(
    name
    for cell in ("normal", "reduce")
    for name in (
        *(f"{cell}:{i}->{j}={op}" for i, j in EDGES for op in OPS),
        *(f"{cell}:count={op}" for op in OPS),
        *graph_features.feature_names(f"{cell}:", _FAMILIES),
    )
)


def arch_features(g: Genotype) -> tuple[float, ...]:
    values: list[float] = []
    for pairs, concat in ((g.normal, g.normal_concat), (g.reduce, g.reduce_concat)):
        held = {(i, k + 2, op) for k in range(NUM_NODES) for op, i in pairs[2 * k : 2 * k + 2]}
        values += [1.0 if (i, j, op) in held else 0.0 for i, j in EDGES for op in OPS]
        values += [float(sum(p == op for p, _ in pairs)) for op in OPS]
        values += graph_features.path_features(
            NUM_NODES + 4, _labelled_edges(pairs, concat), 0, NUM_NODES + 3, _FAMILIES, no_path=NUM_PAIRS + 2
        )
    return tuple(values)


def _labelled_edges(pairs: Sequence[Pair], concat: Sequence[int]) -> list[graph_features.Edge]:
    """The cell with its nodes shifted by one: 0 the source, 1 and 2 the inputs, 3..6 the intermediate
    nodes, 7 the output."""
    always = graph_features.ALWAYS
    edges = [(0, 1, always), (0, 2, always)]
    edges += [(i + 1, k + 3, PATH_GROUPS[op]) for k in range(NUM_NODES) for op, i in pairs[2 * k : 2 * k + 2]]
    edges += [(node + 1, NUM_NODES + 3, always) for node in concat]
    return edges
