"""NAS-Bench-101: encodings, pruning and module hash (``space``), exact cost (``cost``), the shipped
table (``data``) and the standard network (``network``)."""

from archscore.estimators.spaces.nb101.space import (  # noqa: F401
    OPS,
    Cell,
    NB101Space,
    cell_to_spec,
    module_hash,
    prune,
    spec_to_cell,
)
