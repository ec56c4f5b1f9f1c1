"""NAS-Bench-101's vocabulary: the cell type, its ops, validation and pruning of specs, and the module
hash (torch-free; the bottom of the package: it imports no other module of it).

A cell is a DAG of at most 7 vertices and 9 edges given by an upper-triangular adjacency matrix and an
op per vertex (input, conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3, output). Parsing validates the spec
and prunes the vertices that lie on no input-to-output path, as NAS-Bench-101 does. The canonical key
is NAS-Bench-101's module hash (``graph_util.hash_module``).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from archscore.estimators.spaces import graph_features
from archscore.estimators.spaces.base import EncodingError

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
                    f"matrix[{i}][{j}]: the matrix must be strictly upper-triangular "
                    "(edges go from a vertex to a later one)"
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


# The encoding features (SearchSpace.encoding_features): NASLib's adjacency encoding of the cell padded
# to 7 vertices, as the supernet numbers them (interior vertex t of the pruned cell is vertex t, the
# output is vertex 6, the missing interior vertices have no edges): the 21 upper-triangular entries,
# then the op of each interior vertex one-hot (all zeros for a missing vertex), then the count of each op,
# then the pruned cell's path features under each subset of the ops (graph_features; a vertex is kept
# when its op is in the subset, so an edge carries the op of the interior vertex it enters, or of the
# one it leaves where it enters the output).
_UPPER = tuple((i, j) for i in range(MAX_VERTICES) for j in range(i + 1, MAX_VERTICES))
FEATURE_NAMES = (
    tuple(f"{i}->{j}" for i, j in _UPPER)
    + tuple(f"v{v}={op}" for v in range(1, MAX_VERTICES - 1) for op in OPS)
    + tuple(f"count={op}" for op in OPS)
    + graph_features.feature_names("", OPS)
)


def padded(cell: Cell) -> tuple[Matrix, tuple[str | None, ...]]:
    """The cell on 7 vertices: interior vertices keep their numbers, the output moves to vertex 6 and
    the vertices in between are edgeless, their op ``None``."""
    n = len(cell.matrix)
    where = [*range(n - 1), MAX_VERTICES - 1]  # vertex of the pruned cell -> vertex of the padded one
    matrix = [[0] * MAX_VERTICES for _ in range(MAX_VERTICES)]
    for i in range(n):
        for j in range(n):
            matrix[where[i]][where[j]] = cell.matrix[i][j]
    ops: list[str | None] = [None] * MAX_VERTICES
    for v, op in enumerate(cell.ops):
        ops[where[v]] = op
    return tuple(map(tuple, matrix)), tuple(ops)


def arch_features(cell: Cell) -> tuple[float, ...]:
    matrix, ops = padded(cell)
    adjacency = tuple(float(matrix[i][j]) for i, j in _UPPER)
    one_hot = tuple(1.0 if ops[v] == op else 0.0 for v in range(1, MAX_VERTICES - 1) for op in OPS)
    counts = tuple(float(ops.count(op)) for op in OPS)
    return (
        adjacency
        + one_hot
        + counts
        + graph_features.path_features(
            len(cell.ops), _labelled_edges(cell), 0, len(cell.ops) - 1, OPS, no_path=MAX_VERTICES
        )
    )


def _labelled_edges(cell: Cell) -> list[graph_features.Edge]:
    out = len(cell.ops) - 1
    edges = []
    for i, row in enumerate(cell.matrix):
        for j in (j for j, v in enumerate(row) if v):
            if j != out:
                edges.append((i, j, cell.ops[j]))
            else:
                edges.append((i, j, cell.ops[i] if i != 0 else graph_features.ALWAYS))
    return edges
