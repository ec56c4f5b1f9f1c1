"""NAS-Bench-201: encodings, canonical keys and cost (``space``), shipped tables (``data``),
the standalone network (``network``) and the weight-sharing supernet (``supernet``)."""

from archscore.estimators.spaces.nb201.space import *  # noqa: F401,F403
from archscore.estimators.spaces.nb201.space import (  # noqa: F401  (names used by tests and benchmarks)
    CONV_OPS,
    EDGES,
    FLOPS_BN_PER_ELEMENT,
    FLOPS_RELU_PER_ELEMENT,
    NUM_EDGES,
    OPS,
    Arch,
    NB201Space,
    arch_to_naslib,
    arch_to_string,
    canonical_key,
    has_conv_path,
    isomorphism_classes,
    live_edges,
    naslib_to_arch,
    network_cost,
    string_to_arch,
)
