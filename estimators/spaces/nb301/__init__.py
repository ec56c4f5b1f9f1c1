"""NAS-Bench-301 (DARTS space): encodings, canonical keys and exact cost (``space``), the shipped
table (``data``) and the standard network (``network``)."""

from archscore.estimators.spaces.nb301.space import (  # noqa: F401  (importing registers the space)
    CONCAT_NODES,
    OPS,
    Arch,
    Genotype,
    NB301Space,
    canonical_genotype,
    canonical_key,
    genotype_from_darts,
    genotype_from_json,
    genotype_to_darts,
    genotype_to_json,
    live_nodes,
    network_cost,
    op_cost,
    random_genotype,
    reduction_cells,
)
