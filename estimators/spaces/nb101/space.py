"""NAS-Bench-101: a cell is a DAG of at most 7 vertices and 9 edges given by an upper-triangular
adjacency matrix and an op per vertex (input, conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3, output).

Accepted encodings:
- spec: ``{"matrix": [[0, 1, ...], ...], "ops": ["input", ..., "output"]}`` (2 to 7 vertices), as an
  object or as its JSON text
- hash: the NAS-Bench-101 module hash (32 hex digits) of an architecture of the shipped table

Parsing validates the spec and prunes the vertices that lie on no input-to-output path, as
NAS-Bench-101 does; the architecture is the pruned spec. The canonical key is NAS-Bench-101's
module hash (``graph_util.hash_module``): an isomorphism-invariant MD5 of the pruned graph, so
isomorphic cells share a key and keys agree with every NAS-Bench-101 table. Torch-free.
"""

from __future__ import annotations

import collections

import hashlib
import json
import random
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from archscore.estimators.spaces import base
from archscore.estimators.spaces.base import EncodingError, SearchSpace, decode_json_text, register_space
from archscore.estimators.spaces.nb101 import cost as cost_model
from archscore.estimators.spaces.nb101 import data

INPUT, OUTPUT = "input", "output"
CONV3X3, CONV1X1, MAXPOOL3X3 = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
OPS = (CONV3X3, CONV1X1, MAXPOOL3X3)  # NAS-Bench-101's order: the hash labels ops by this index
MAX_VERTICES = 7
MAX_EDGES = 9
HASH_PATTERN = re.compile(r"^[0-9a-f]{32}$")

Matrix = tuple[tuple[int, ...], ...]


class Cell(NamedTuple):
    """A pruned NAS-Bench-101 cell: adjacency rows (0/1) and vertex ops, input first, output last."""

    matrix: Matrix
    ops: tuple[str, ...]


def _check_matrix(matrix: Any) -> Matrix:
    if not isinstance(matrix, (list, tuple)) or not matrix:
        raise EncodingError("matrix: must be a square list of rows of 0/1")
    n = len(matrix)
    rows = []
    for i, row in enumerate(matrix):
        if not isinstance(row, (list, tuple)) or len(row) != n:
            raise EncodingError(f"matrix: row {i} must be a list of {n} entries (the matrix is square)")
        for j, v in enumerate(row):
            if isinstance(v, bool) or v not in (0, 1):
                raise EncodingError(f"matrix[{i}][{j}]: entries must be 0 or 1, got {v!r}")
        rows.append(tuple(int(v) for v in row))
    if n > MAX_VERTICES:
        raise EncodingError(f"matrix: {n} vertices, at most {MAX_VERTICES}")
    if n < 2:
        raise EncodingError("matrix: at least 2 vertices (input and output)")
    for i in range(n):
        for j in range(i + 1):
            if rows[i][j]:
                raise EncodingError(
                    f"matrix[{i}][{j}]: the matrix must be strictly upper-triangular (edges go from a vertex to a later one)"
                )
    return tuple(rows)


def _check_ops(ops: Any, n: int) -> tuple[str, ...]:
    if not isinstance(ops, (list, tuple)) or len(ops) != n:
        got = len(ops) if isinstance(ops, (list, tuple)) else type(ops).__name__
        raise EncodingError(f"ops: must list one op per vertex ({n}), got {got}")
    if ops[0] != INPUT:
        raise EncodingError(f"ops[0]: the first vertex must be 'input', got {ops[0]!r}")
    if ops[-1] != OUTPUT:
        raise EncodingError(f"ops[{n - 1}]: the last vertex must be 'output', got {ops[-1]!r}")
    for i, op in enumerate(ops[1:-1], start=1):
        if op not in OPS:
            raise EncodingError(f"ops[{i}]: unknown op {op!r}; allowed: {', '.join(OPS)}")
    return tuple(ops)


def prune(matrix: Matrix, ops: Sequence[str]) -> Cell:
    """Drop the vertices that are not on an input-to-output path (NAS-Bench-101's ModelSpec._prune);
    raise when the input does not reach the output."""
    n = len(matrix)
    from_input = {0}
    for v in range(n):  # vertices are topologically ordered
        if v in from_input:
            from_input.update(w for w in range(v + 1, n) if matrix[v][w])
    to_output = {n - 1}
    for v in range(n - 1, -1, -1):
        if any(matrix[v][w] and w in to_output for w in range(v + 1, n)):
            to_output.add(v)
    keep = [v for v in range(n) if v in from_input and v in to_output]
    if 0 not in keep or n - 1 not in keep:
        raise EncodingError("matrix: the input is not connected to the output")
    pruned = tuple(tuple(matrix[i][j] for j in keep) for i in keep)
    return Cell(pruned, tuple(ops[v] for v in keep))


def spec_to_cell(spec: Any) -> Cell:
    """Validate ``{"matrix", "ops"}`` and prune it (the input is not modified)."""
    if not isinstance(spec, dict) or set(spec) != {"matrix", "ops"}:
        keys = sorted(spec) if isinstance(spec, dict) else type(spec).__name__
        raise EncodingError(f"a spec is an object with exactly the keys 'matrix' and 'ops', got {keys}")
    matrix = _check_matrix(spec["matrix"])
    ops = _check_ops(spec["ops"], len(matrix))
    cell = prune(matrix, ops)
    edges = sum(map(sum, cell.matrix))
    if edges > MAX_EDGES:
        raise EncodingError(f"matrix: {edges} edges on input-output paths, at most {MAX_EDGES}")
    return cell


def cell_to_spec(cell: Cell) -> dict:
    return {"matrix": [list(r) for r in cell.matrix], "ops": list(cell.ops)}


def module_hash(cell: Cell) -> str:
    """NAS-Bench-101's ``graph_util.hash_module`` with its labelling (input -1, output -2, interior
    ops by their index in OPS): Weisfeiler-Lehman style MD5 over in/out neighbours."""
    matrix, n = cell.matrix, len(cell.matrix)
    labels = [-1] + [OPS.index(op) for op in cell.ops[1:-1]] + [-2]
    in_edges = [sum(matrix[i][j] for i in range(n)) for j in range(n)]
    out_edges = [sum(row) for row in matrix]
    hashes = [hashlib.md5(str(h).encode()).hexdigest() for h in zip(out_edges, in_edges, labels)]
    for _ in range(n):
        hashes = [
            hashlib.md5(
                (
                    "".join(sorted(hashes[w] for w in range(n) if matrix[w][v]))
                    + "|"
                    + "".join(sorted(hashes[w] for w in range(n) if matrix[v][w]))
                    + "|"
                    + hashes[v]
                ).encode()
            ).hexdigest()
            for v in range(n)
        ]
    return hashlib.md5(str(sorted(hashes)).encode()).hexdigest()


def random_cell(rng: random.Random) -> Cell:
    """A valid cell drawn as NAS-Bench-101's random search does: 7 vertices, each upper-triangular
    entry 0/1 with probability 1/2, interior ops uniform; redrawn until valid after pruning."""
    while True:
        matrix = [[0] * MAX_VERTICES for _ in range(MAX_VERTICES)]
        for i in range(MAX_VERTICES):
            for j in range(i + 1, MAX_VERTICES):
                matrix[i][j] = rng.randint(0, 1)
        ops = [INPUT] + [rng.choice(OPS) for _ in range(MAX_VERTICES - 2)] + [OUTPUT]
        try:
            return spec_to_cell({"matrix": matrix, "ops": ops})
        except EncodingError:
            continue


@register_space("nasbench101", "nas-bench-101")
class NB101Space(SearchSpace):
    name = "nb101"
    description = (
        "NAS-Bench-101 cell space (DAGs of at most 7 vertices and 9 edges, ops conv3x3/conv1x1/maxpool3x3), "
        "standard network: stem 128, 3 stacks x 3 cells"
    )
    encodings = {
        "spec": '{"matrix": 7x7 (or smaller) upper-triangular 0/1, "ops": ["input", ..., "output"]} with ops '
        + ", ".join(OPS),
        "hash": "NAS-Bench-101 module hash (32 hex digits) of an architecture of the shipped table",
    }
    capabilities = frozenset(
        {base.COST, base.GROUND_TRUTH, base.PUBLISHED, base.NETWORK, base.OPERATIONS, base.SUPERNET}
    )
    ground_truth_columns = data.GROUND_TRUTH_COLUMNS
    default_network = {"stem_channels": 128, "num_stacks": 3, "cells_per_stack": 3, "num_classes": 10, "input_size": 32}
    supernet_network = {
        "stem_channels": base.NetworkField(16, 1, 128, "channels of the first stack"),
        "num_stacks": base.NetworkField(3, 1, 5, "stacks, a max-pool and channel doubling between them"),
        "cells_per_stack": base.NetworkField(3, 1, 6, "cells per stack"),
    }
    supernet_rule = ("NAS-Bench-1shot1 style: weights per (cell, node, op) and a projection of the cell input per "
                     "node; every valid cell is trained and scored")
    partition_rule = "the op most interior vertices hold (ties in the order conv3x3, conv1x1, maxpool)"

    def parse(self, encoding: Any) -> Cell:
        if isinstance(encoding, Cell):
            return spec_to_cell(cell_to_spec(encoding))
        if isinstance(encoding, str):
            text = encoding.strip()
            if HASH_PATTERN.match(text):
                cell = data.cells_by_hash().get(text)
                if cell is None:
                    raise EncodingError(
                        f"module hash {text} is not in the shipped table ({len(data.cells_by_hash())} cells); "
                        "give the spec {\"matrix\", \"ops\"} instead"
                    )
                return cell
            if text.startswith("{"):
                encoding = decode_json_text(text, "a spec")
            else:
                raise EncodingError(
                    f"unrecognised text {text[:40]!r}; give a spec {{\"matrix\", \"ops\"}} or a module hash"
                )
        if isinstance(encoding, dict):
            return spec_to_cell(encoding)
        raise EncodingError(
            f"unsupported encoding of type {type(encoding).__name__}; accepted: {', '.join(self.encodings)}"
        )

    def to_string(self, arch: Cell) -> str:
        return json.dumps(cell_to_spec(arch), separators=(",", ":"))

    def to_json(self, arch: Cell) -> dict:
        return cell_to_spec(arch)

    def operation_counts(self, arch: Cell) -> dict[str, int]:
        """The ops of the interior vertices of the pruned cell."""
        return dict(collections.Counter(arch.ops[1:-1]))

    def op_slots(self, arch: Cell) -> tuple[Matrix, tuple[str, ...]]:
        """The frame is the (pruned) adjacency matrix; the slots the interior vertices."""
        return arch.matrix, tuple(arch.ops[1:-1])

    def canonical_key(self, arch: Cell) -> str:
        return module_hash(arch)

    def sample(self, n: int, seed: int, deisomorphic: bool = False) -> list[Cell]:
        """n cells with distinct module hashes, reproducible for a seed."""
        if deisomorphic:
            raise ValueError("nb101 samples distinct module hashes already; --deiso does not apply")
        rng = random.Random(seed)
        seen: dict[str, Cell] = {}
        attempts = 0
        while len(seen) < n:
            attempts += 1
            if attempts > 50 * n + 1000:
                raise ValueError(f"could not draw {n} distinct cells")
            cell = random_cell(rng)
            seen.setdefault(module_hash(cell), cell)
        return list(seen.values())

    def cost(self, arch: Cell, **config: Any) -> tuple[int, int]:
        return cost_model.network_cost(arch, **{**self.default_network, **config})

    def ground_truth(self, column: str) -> dict[str, float]:
        return data.ground_truth(column)

    def published_proxies(self) -> dict[str, dict[str, float]]:
        return data.published_proxies()

    def published_archs(self) -> list[Cell]:
        return list(data.cells_by_hash().values())

    def build_supernet(self, **config: Any):
        from archscore.estimators.spaces.nb101.supernet import NB101Supernet

        return NB101Supernet(**config)

    def trainable(self, arch: Cell) -> bool:
        return True  # every parsed cell is valid

    def random_arch(self, rng: random.Random) -> Cell:
        return random_cell(rng)

    def partition_values(self) -> tuple[str, ...]:
        return OPS

    def partition_value(self, arch: Cell) -> str:
        """Invariant under isomorphism (a count, not a position)."""
        counts = collections.Counter(arch.ops[1:-1])
        return max(OPS, key=lambda op: (counts[op], -OPS.index(op)))

    def choice_slots(self) -> tuple[tuple[Any, ...], ...]:
        """The op of each interior vertex, then each upper-triangular entry of the 7x7 matrix."""
        entries = MAX_VERTICES * (MAX_VERTICES - 1) // 2
        return (OPS,) * (MAX_VERTICES - 2) + ((0, 1),) * entries

    def from_choices(self, values) -> Cell:
        """Raises EncodingError when the matrix is not a valid cell (the fair sampler redraws)."""
        values = list(values)
        ops = [INPUT, *values[: MAX_VERTICES - 2], OUTPUT]
        bits = iter(values[MAX_VERTICES - 2 :])
        matrix = [[next(bits) if j > i else 0 for j in range(MAX_VERTICES)] for i in range(MAX_VERTICES)]
        return spec_to_cell({"matrix": matrix, "ops": ops})

    def build_network(self, arch: Cell, **config: Any):
        from archscore.estimators.spaces.nb101.network import NB101Network

        return NB101Network(arch, **{**self.default_network, **config})
