"""The exact parameters and FLOPs of NAS-Bench-201's standard network, without torch."""

from __future__ import annotations

import functools

from archscore.estimators.spaces.counting import FLOPS_BN_PER_ELEMENT, FLOPS_RELU_PER_ELEMENT
from archscore.estimators.spaces.nb201.encoding import OPS, Arch

# --- analytic cost of the standard network (torch-free; equal to counting the built network) ---
# FLOP convention of the published NB201 cost column: conv and linear multiply-accumulates (plus
# bias adds), BatchNorm 2 per element, ReLU 1 per element, average pooling k*k per output element,
# global pooling 1 per input element; additions of the cell sum are free. This reproduces the
# published column up to a constant 1,078 FLOPs per network (< 0.02%) whose origin is unknown.


def _cell_op_cost(op: str, c: int, hw: int) -> tuple[int, int]:
    """(params, FLOPs) of one cell op with c channels on an hw x hw map."""
    elements = c * hw * hw
    elementwise = (FLOPS_RELU_PER_ELEMENT + FLOPS_BN_PER_ELEMENT) * elements
    if op == "nor_conv_3x3":
        return c * c * 9 + 2 * c, 9 * c * elements + elementwise
    if op == "nor_conv_1x1":
        return c * c + 2 * c, c * elements + elementwise
    if op == "avg_pool_3x3":
        return 0, 9 * elements
    return 0, 0


def _resblock_cost(c_in: int, c_out: int, hw_in: int) -> tuple[int, int]:
    hw = (hw_in + 1) // 2
    out = c_out * hw * hw
    params = (c_in * c_out * 9 + 2 * c_out) + (c_out * c_out * 9 + 2 * c_out) + c_in * c_out
    macs = (c_in * 9 + c_out * 9 + c_in) * out
    relu = FLOPS_RELU_PER_ELEMENT * (c_in * hw_in * hw_in + out)
    bn = FLOPS_BN_PER_ELEMENT * 2 * out
    pool = 4 * c_in * (hw_in // 2) * (hw_in // 2)
    return params, macs + relu + bn + pool


def network_cost(arch: Arch, C: int = 16, N: int = 5, num_classes: int = 10, input_size: int = 32) -> tuple[int, int]:
    """(trainable parameters, FLOPs per sample) of the standalone network, counted as NAS-Bench-201
    does: every op of the cell counts, also on edges that do not reach the output."""
    (params, flops), per_op, c, hw = _network_terms(C, N, input_size)
    for op in arch:  # an op's cost summed over every cell of the network (the cells of a stage are alike)
        p, f = per_op[op]
        params, flops = params + p, flops + f
    params += 2 * c + c * num_classes + num_classes  # last BN + classifier
    flops += (FLOPS_BN_PER_ELEMENT + FLOPS_RELU_PER_ELEMENT + 1) * c * hw * hw  # last BN, ReLU, global pool
    flops += c * num_classes + num_classes
    return params, flops


@functools.lru_cache(maxsize=8)
def _network_terms(C: int, N: int, input_size: int) -> tuple[tuple[int, int], dict[str, tuple[int, int]], int, int]:
    """What a network of this size costs besides its cells' ops and classifier (stem, residual blocks),
    each op's cost over all 3 x N cells, and the channels and map size at the end."""
    hw, c = input_size, C
    params = 3 * C * 9 + 2 * C  # stem conv + BN
    flops = (27 + FLOPS_BN_PER_ELEMENT) * C * hw * hw
    per_op = dict.fromkeys(OPS, (0, 0))
    for stage in range(3):
        if stage > 0:
            p, f = _resblock_cost(c, 2 * c, hw)
            params, flops = params + p, flops + f
            hw, c = (hw + 1) // 2, 2 * c
        for op in OPS:
            p, f = _cell_op_cost(op, c, hw)
            per_op[op] = (per_op[op][0] + N * p, per_op[op][1] + N * f)
    return (params, flops), per_op, c, hw
