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

The vocabulary is ``encoding``, the network's shape and cost ``cost``; this module is the space
itself (registered with the registry). Torch-free; networks are built by
``archscore.estimators.spaces.nb301.network``.
"""

from __future__ import annotations

import itertools
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
from archscore.estimators.spaces.nb301 import data
from archscore.estimators.spaces.nb301.cost import network_cost
from archscore.estimators.spaces.nb301.encoding import (
    _MAX_TEXT,
    CONCAT_NODES,
    FEATURE_NAMES,
    NUM_NODES,
    OPS,
    Genotype,
    arch_features,
    canonical_genotype,
    canonical_key,
    genotype_from_darts,
    genotype_from_json,
    genotype_to_darts,
    genotype_to_json,
    live_nodes,
    random_genotype,
)


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
    capabilities = frozenset({COST, GROUND_TRUTH, PUBLISHED, NETWORK, OPERATIONS, SUPERNET, CELLS, FEATURES})
    supernet_network = {
        "C": NetworkField(16, 2, 64, "channels of the first cells (even)"),
        "layers": NetworkField(8, 3, 20, "cells, reductions at layers//3 and 2*layers//3"),
    }
    supernet_rule = (
        "DARTS weight sharing: every (cell, edge, op) has its weights; genotypes whose concats are "
        "[2, 3, 4, 5] are scored, those whose nodes read two different inputs trained"
    )
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

    def feature_names(self) -> tuple[str, ...]:
        return FEATURE_NAMES

    def encoding_features(self, arch: Genotype) -> tuple[float, ...]:
        """Per cell, the op on each of the 14 edges one-hot, then the count of each op."""
        return arch_features(arch)

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
        frame = (
            tuple(i for _, i in arch.normal),
            arch.normal_concat,
            tuple(i for _, i in arch.reduce),
            arch.reduce_concat,
        )
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
        return all(
            tuple(sorted(concat)) == CONCAT_NODES
            and all(pairs[2 * k][1] != pairs[2 * k + 1][1] for k in range(NUM_NODES))
            for pairs, concat in cells
        )

    def random_arch(self, rng: random.Random) -> Genotype:
        return random_genotype(rng)

    def partition_values(self) -> tuple[str, ...]:
        return OPS

    def partition_value(self, arch: Genotype) -> str:
        return canonical_genotype(arch).normal[0][0]

    def choice_slots(self) -> tuple[tuple[Any, ...], ...]:
        """Per cell and node: the op on its first input, the op on its second, the pair of inputs."""
        return tuple(
            slot
            for _ in range(2)
            for k in range(NUM_NODES)
            for slot in (OPS, OPS, tuple(itertools.combinations(range(k + 2), 2)))
        )

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

        return self.tag_cell_outputs(NB301Network(arch, **{**self.default_network, **config}))

    def cell_outputs(self, net: Any) -> list[Any]:
        """The stem, then every cell, normal and reduction."""
        return [net.stem, *net.cells]
