"""NAS-Bench-301 (DARTS space), in layers: the vocabulary (``encoding``: the genotype type, ops, the JSON
and DARTS forms, canonical keys) and the network's shape and exact cost (``cost``) at the bottom; the
shipped table (``data``), the standard network (``network``) and the supernet (``supernet``) above
them; the space (``space``, registered with the registry) on top. Importing the package registers the
space."""

from archscore.estimators.spaces.nb301.cost import network_cost, op_cost, reduction_cells
from archscore.estimators.spaces.nb301.encoding import (
    CONCAT_NODES,
    OPS,
    Arch,
    Genotype,
    canonical_genotype,
    canonical_key,
    genotype_from_darts,
    genotype_from_json,
    genotype_to_darts,
    genotype_to_json,
    live_nodes,
    random_genotype,
)
from archscore.estimators.spaces.nb301.space import NB301Space

__all__ = [
    "CONCAT_NODES",
    "OPS",
    "Arch",
    "Genotype",
    "NB301Space",
    "canonical_genotype",
    "canonical_key",
    "genotype_from_darts",
    "genotype_from_json",
    "genotype_to_darts",
    "genotype_to_json",
    "live_nodes",
    "network_cost",
    "op_cost",
    "random_genotype",
    "reduction_cells",
]
