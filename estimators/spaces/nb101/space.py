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

The vocabulary is ``encoding``, the cost model ``cost``; this module is the space itself (registered
with the registry).
"""

from __future__ import annotations

import collections
import json
import random
from typing import Any

from archscore.estimators.spaces.base import (
    CELLS,
    COST,
    FEATURES,
    GROUND_TRUTH,
    NETWORK,
    OPERATIONS,
    PUBLISHED,
    SUPERNET,
    EncodingError,
    NetworkField,
    SearchSpace,
    decode_json_text,
    register_space,
)
from archscore.estimators.spaces.nb101 import cost as cost_model
from archscore.estimators.spaces.nb101 import data
from archscore.estimators.spaces.nb101.encoding import (
    FEATURE_NAMES,
    HASH_PATTERN,
    INPUT,
    MAX_VERTICES,
    OPS,
    OUTPUT,
    Cell,
    Matrix,
    arch_features,
    cell_to_spec,
    module_hash,
    random_cell,
    spec_to_cell,
)


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
    capabilities = frozenset({COST, GROUND_TRUTH, PUBLISHED, NETWORK, OPERATIONS, SUPERNET, CELLS, FEATURES})
    ground_truth_columns = data.GROUND_TRUTH_COLUMNS
    default_network = {"stem_channels": 128, "num_stacks": 3, "cells_per_stack": 3, "num_classes": 10, "input_size": 32}
    supernet_network = {
        "stem_channels": NetworkField(16, 1, 128, "channels of the first stack"),
        "num_stacks": NetworkField(3, 1, 5, "stacks, a max-pool and channel doubling between them"),
        "cells_per_stack": NetworkField(3, 1, 6, "cells per stack"),
    }
    supernet_rule = (
        "NAS-Bench-1shot1 style: weights per (cell, node, op) and a projection of the cell input per "
        "node; every valid cell is trained and scored"
    )
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
                        'give the spec {"matrix", "ops"} instead'
                    )
                return cell
            if text.startswith("{"):
                encoding = decode_json_text(text, "a spec")
            else:
                raise EncodingError(
                    f'unrecognised text {text[:40]!r}; give a spec {{"matrix", "ops"}} or a module hash'
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

    def feature_names(self) -> tuple[str, ...]:
        return FEATURE_NAMES

    def encoding_features(self, arch: Cell) -> tuple[float, ...]:
        """NASLib's adjacency encoding of the pruned cell padded to 7 vertices, then the op counts."""
        return arch_features(arch)

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

        return self.tag_cell_outputs(NB101Network(arch, **{**self.default_network, **config}))

    def cell_outputs(self, net: Any) -> list[Any]:
        """The stem (conv3x3-BN-ReLU), then every cell; the max pools between stacks are not cells."""
        from archscore.estimators.spaces.nb101.network import NB101Cell

        return [net.features[0], *(m for m in net.features if isinstance(m, NB101Cell))]
