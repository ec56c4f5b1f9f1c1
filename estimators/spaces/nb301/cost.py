"""The standard NAS-Bench-301 network's shape (its reduction cells, the settings it accepts) and its
exact parameters and FLOPs, without torch."""

from __future__ import annotations

from archscore.estimators.spaces.counting import FLOPS_BN_PER_ELEMENT, FLOPS_RELU_PER_ELEMENT
from archscore.estimators.spaces.nb301.encoding import Genotype, _is_int, live_nodes

# --- analytic cost of the standard network (torch-free; equal to counting the built network) ---
# Convention of the published NAS-Bench-Suite-Zero columns (NASLib counts with tensorwatch, whose
# per-module rules these are), reproducing all 725 rows exactly: parameters of the modules that run;
# FLOPs = conv multiply-adds (k*k*C_in/groups*C_out per output position, no bias) + Linear in*out
# (the bias adds are not counted) + BatchNorm 2 per element when affine, 1 when not + ReLU 1 per
# element + max/avg pooling k*k per output element + global average pooling C*(H+1)*(W+1)
# (tensorwatch's adaptive-pool rule; 41,472 for 512x8x8); node sums and concatenations are free.
FLOPS_BN_NONAFFINE_PER_ELEMENT = 1


def _gap_flops(c: int, hw: int) -> int:
    return c * (hw + 1) * (hw + 1)


def _out_hw(hw: int, stride: int) -> int:
    return (hw - 1) // stride + 1  # every op here: "same" padding, kernel 1, 3 or 5, dilation 1 or 2


def _factorized_reduce_cost(c_in: int, c_out: int, hw: int, affine: bool) -> tuple[int, int]:
    """ReLU, two 1x1 stride-2 convs to c_out//2 channels each (one offset by a pixel), concat, BN."""
    ho = _out_hw(hw, 2)
    half = c_out // 2
    bn = FLOPS_BN_PER_ELEMENT if affine else FLOPS_BN_NONAFFINE_PER_ELEMENT
    params = 2 * c_in * half + (2 * c_out if affine else 0)
    flops = FLOPS_RELU_PER_ELEMENT * c_in * hw * hw + 2 * c_in * half * ho * ho + bn * c_out * ho * ho
    return params, flops


def _relu_conv_bn_cost(c_in: int, c_out: int, hw: int) -> tuple[int, int]:
    """ReLU, 1x1 conv, affine BN (the preprocessing of a cell input)."""
    e = hw * hw
    flops = FLOPS_RELU_PER_ELEMENT * c_in * e + c_in * c_out * e + FLOPS_BN_PER_ELEMENT * c_out * e
    return c_in * c_out + 2 * c_out, flops


def op_cost(op: str, c: int, hw: int, stride: int) -> tuple[int, int]:
    """(params, FLOPs) of one cell op with c channels on an hw x hw input; cell ops use non-affine BN."""
    ho = _out_hw(hw, stride)
    e_in, e_out = c * hw * hw, c * ho * ho
    bn = FLOPS_BN_NONAFFINE_PER_ELEMENT * e_out
    if op.startswith("sep_conv_"):  # (ReLU, depthwise kxk, pointwise 1x1, BN) x 2, stride on the first
        k = int(op[-1])
        params = 2 * (c * k * k + c * c)
        flops = FLOPS_RELU_PER_ELEMENT * (e_in + e_out) + 2 * (k * k + c) * e_out + 2 * bn
        return params, flops
    if op.startswith("dil_conv_"):  # ReLU, depthwise kxk dilation 2, pointwise 1x1, BN
        k = int(op[-1])
        return c * k * k + c * c, FLOPS_RELU_PER_ELEMENT * e_in + (k * k + c) * e_out + bn
    if op in ("max_pool_3x3", "avg_pool_3x3"):  # pool 3x3 + non-affine BN
        return 0, 9 * e_out + bn
    if op == "skip_connect":
        return (0, 0) if stride == 1 else _factorized_reduce_cost(c, c, hw, affine=False)
    raise ValueError(f"unknown NB301 op {op!r}")


def reduction_cells(layers: int) -> tuple[int, ...]:
    """Indices of the reduction cells (DARTS: layers//3 and 2*layers//3)."""
    return tuple(sorted({layers // 3, 2 * layers // 3}))


def check_network_config(C: int, layers: int, num_classes: int, input_size: int) -> None:
    """Raise ValueError for a network that cannot be built (shared with the torch network)."""
    for name, value in (("C", C), ("layers", layers), ("num_classes", num_classes), ("input_size", input_size)):
        if not _is_int(value) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    hw = input_size
    for _ in reduction_cells(layers):
        if hw % 2:
            raise ValueError(
                f"input_size {input_size}: every reduction needs an even feature map "
                f"(a multiple of {2 ** len(reduction_cells(layers))})"
            )
        hw //= 2


def network_cost(
    arch: Genotype, C: int = 32, layers: int = 8, num_classes: int = 10, input_size: int = 32
) -> tuple[int, int]:
    """(parameters, FLOPs of one sample) of the standard network: stem conv3x3 (3 -> 3C) + BN; ``layers``
    cells, reduction cells at layers//3 and 2*layers//3 doubling the channels; each cell preprocesses
    its two inputs (ReLU-conv1x1-BN, or FactorizedReduce for the input from before a reduction);
    global average pooling and a linear classifier. Only nodes that run are counted."""
    check_network_config(C, layers, num_classes, input_size)
    reductions = reduction_cells(layers)
    hw = input_size
    params = 3 * 9 * 3 * C + 2 * 3 * C
    flops = (27 + FLOPS_BN_PER_ELEMENT) * 3 * C * hw * hw
    c_pp = c_p = 3 * C
    hw_pp = hw
    c = C
    reduction_prev = False
    for i in range(layers):
        reduction = i in reductions
        if reduction:
            c *= 2
        pairs, concat = (arch.reduce, arch.reduce_concat) if reduction else (arch.normal, arch.normal_concat)
        p0 = _factorized_reduce_cost(c_pp, c, hw_pp, affine=True) if reduction_prev else _relu_conv_bn_cost(c_pp, c, hw)
        p1 = _relu_conv_bn_cost(c_p, c, hw)
        params += p0[0] + p1[0]
        flops += p0[1] + p1[1]
        for node in live_nodes(pairs, concat):
            for op, src in pairs[2 * (node - 2) : 2 * (node - 2) + 2]:
                stride = 2 if reduction and src < 2 else 1
                p, f = op_cost(op, c, hw if stride == 2 or not reduction else _out_hw(hw, 2), stride)
                params += p
                flops += f
        c_pp, c_p = c_p, len(concat) * c
        hw_pp, hw = hw, (_out_hw(hw, 2) if reduction else hw)
        reduction_prev = reduction
    params += c_p * num_classes + num_classes
    flops += _gap_flops(c_p, hw) + c_p * num_classes
    return params, flops
