"""NAS-Bench-201: a 4-node cell with 6 edges, 5 candidate ops per edge (15,625 cells, 6,466 classes).

Edge order (the string form's): 0->1 | 0->2, 1->2 | 0->3, 1->3, 2->3.
Accepted encodings:
- string: ``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``
- naslib: NASLib's op-index tuple, edges (1,2),(1,3),(1,4),(2,3),(2,4),(3,4) (1-based nodes) with
  0=skip_connect, 1=none, 2=nor_conv_3x3, 3=nor_conv_1x1, 4=avg_pool_3x3
- ops: the six op names in string edge order
- index: the NAS-Bench-201 architecture index (0..15624)

The vocabulary is ``encoding``, the cost model ``cost``; this module is the space itself (registered
with the registry). Torch-free; networks are built by ``archscore.estimators.spaces.nb201.network``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from archscore.estimators.spaces.base import (
    CELLS,
    COST,
    ENUMERATE,
    FEATURES,
    GROUND_TRUTH,
    ISOMORPHISM,
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
from archscore.estimators.spaces.nb201 import data
from archscore.estimators.spaces.nb201.cost import network_cost
from archscore.estimators.spaces.nb201.encoding import (
    FEATURE_NAMES,
    NUM_EDGES,
    OPS,
    Arch,
    _all_archs,
    _check_op,
    arch_features,
    arch_to_string,
    canonical_key,
    has_conv_path,
    isomorphism_classes,
    live_edges,
    naslib_to_arch,
    string_to_arch,
)


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
        {ENUMERATE, ISOMORPHISM, COST, GROUND_TRUTH, PUBLISHED, NETWORK, SUPERNET, OPERATIONS, CELLS, FEATURES}
    )
    ground_truth_columns = data.GROUND_TRUTH_COLUMNS
    default_network = {"C": 16, "N": 5, "num_classes": 10, "input_size": 32}
    supernet_network = {
        "C": NetworkField(16, 1, 128, "channels of the first stage"),
        "N": NetworkField(5, 1, 20, "cells per stage"),
    }
    supernet_rule = (
        "every cell with a conv on an input-to-output path is trained; any cell is scored, "
        "edges that do not reach the output skipped"
    )
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

    def feature_names(self) -> tuple[str, ...]:
        return FEATURE_NAMES

    def encoding_features(self, arch: Arch) -> tuple[float, ...]:
        return arch_features(arch)

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

        return self.tag_cell_outputs(NB201Network(arch, **{**self.default_network, **config}))

    def cell_outputs(self, net: Any) -> list[Any]:
        """The stem, then every cell and both residual reduction blocks (the authors' ``extract_cell_features``)."""
        return [net.stem, *net.cells]

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
