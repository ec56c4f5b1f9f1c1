"""NAS-Bench-101, in layers: the vocabulary (``encoding``: the cell type, ops, spec validation and
pruning, the module hash) and the exact cost (``cost``) at the bottom; the shipped table (``data``), the
standard network (``network``) and the supernet (``supernet``) above them; the space (``space``,
registered with the registry) on top. Importing the package registers the space."""

from archscore.estimators.spaces.nb101.encoding import OPS, Cell, cell_to_spec, module_hash, prune, spec_to_cell
from archscore.estimators.spaces.nb101.space import NB101Space

__all__ = ["OPS", "Cell", "NB101Space", "cell_to_spec", "module_hash", "prune", "spec_to_cell"]
