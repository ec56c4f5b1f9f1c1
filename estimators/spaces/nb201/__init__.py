"""NAS-Bench-201, in layers: the vocabulary (``encoding``: the architecture type, ops, edges, encodings,
canonical keys) and the cost model (``cost``) at the bottom; the shipped tables (``data``), the
standalone network (``network``) and the weight-sharing supernet (``supernet``) above them; the space
(``space``, registered with the registry) on top. Importing the package registers the space."""

from archscore.estimators.spaces.nb201.cost import FLOPS_BN_PER_ELEMENT, FLOPS_RELU_PER_ELEMENT, network_cost
from archscore.estimators.spaces.nb201.encoding import (
    CONV_OPS,
    EDGES,
    NUM_EDGES,
    OPS,
    Arch,
    arch_to_naslib,
    arch_to_string,
    canonical_key,
    has_conv_path,
    isomorphism_classes,
    live_edges,
    naslib_to_arch,
    string_to_arch,
)
from archscore.estimators.spaces.nb201.space import NB201Space

__all__ = [
    "CONV_OPS",
    "EDGES",
    "FLOPS_BN_PER_ELEMENT",
    "FLOPS_RELU_PER_ELEMENT",
    "NUM_EDGES",
    "OPS",
    "Arch",
    "NB201Space",
    "arch_to_naslib",
    "arch_to_string",
    "canonical_key",
    "has_conv_path",
    "isomorphism_classes",
    "live_edges",
    "naslib_to_arch",
    "network_cost",
    "string_to_arch",
]
