"""The exact parameters and FLOPs of the standalone NDS networks, and the blocks they are made of,
without torch. Counted like ``archscore.estimators.zero_shot.flops`` (conv and linear multiply-adds, a
linear layer's bias adds, BatchNorm 2 and ReLU 1 per output element, global average pooling 1 per
input element; residual additions are free), so it equals counting the built network."""

from __future__ import annotations

from collections.abc import Iterator

from archscore.estimators.spaces.counting import FLOPS_BN_PER_ELEMENT, FLOPS_RELU_PER_ELEMENT
from archscore.estimators.spaces.nds.encoding import (
    BASIC,
    BOTTLENECK,
    NUM_STAGES,
    STEM_WIDTH,
    STRIDES,
    Stages,
    inner_width,
)


# --- analytic cost (torch-free; equal to counting the built network) ---
def _conv_bn(c_in: int, c_out: int, kernel: int, elements_out: int, groups: int = 1) -> tuple[int, int]:
    """(params, FLOPs) of a conv without bias followed by an affine BN."""
    macs = kernel * kernel * (c_in // groups) * c_out
    return macs + 2 * c_out, macs * elements_out // c_out + FLOPS_BN_PER_ELEMENT * elements_out


def check_network_config(num_classes: int, input_size: int) -> None:
    for name, value in (("num_classes", num_classes), ("input_size", input_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def blocks(block_type: str, arch: Stages) -> Iterator[tuple[int, int, int, int, int, int]]:
    """(stage, c_in, c_out, stride, inner width, groups) of every residual block, in order."""
    c_in = STEM_WIDTH
    for stage in range(NUM_STAGES):
        width = arch.widths[stage]
        inner = inner_width(width, arch.bot_muls[stage]) if block_type == BOTTLENECK else width
        groups = arch.groups[stage] if block_type == BOTTLENECK else 1
        for j in range(arch.depths[stage]):
            yield stage, c_in if j == 0 else width, width, STRIDES[stage] if j == 0 else 1, inner, groups
        c_in = width


def network_cost(block_type: str, arch: Stages, num_classes: int = 10, input_size: int = 32) -> tuple[int, int]:
    """(parameters, FLOPs of one sample) of the network ``NDSNetwork`` builds."""
    check_network_config(num_classes, input_size)
    hw = input_size
    params, flops = _conv_bn(3, STEM_WIDTH, 3, STEM_WIDTH * hw * hw)
    flops += FLOPS_RELU_PER_ELEMENT * STEM_WIDTH * hw * hw
    for _, c_in, c_out, stride, inner, groups in blocks(block_type, arch):
        hw_out = (hw - 1) // stride + 1
        e_out, e_inner_in = c_out * hw_out * hw_out, inner * hw * hw
        if block_type == BASIC:  # 3x3 (stride) BN ReLU, 3x3 BN
            parts = [_conv_bn(c_in, c_out, 3, e_out), _conv_bn(c_out, c_out, 3, e_out)]
            relus = e_out
        else:  # 1x1 BN ReLU, grouped 3x3 (stride) BN ReLU, 1x1 BN
            e_inner_out = inner * hw_out * hw_out
            parts = [
                _conv_bn(c_in, inner, 1, e_inner_in),
                _conv_bn(inner, inner, 3, e_inner_out, groups),
                _conv_bn(inner, c_out, 1, e_out),
            ]
            relus = e_inner_in + e_inner_out
        if c_in != c_out or stride != 1:  # projection shortcut: 1x1 (stride) BN
            parts.append(_conv_bn(c_in, c_out, 1, e_out))
        params += sum(p for p, _ in parts)
        flops += sum(f for _, f in parts) + FLOPS_RELU_PER_ELEMENT * (relus + e_out)  # + the ReLU after the sum
        hw = hw_out
    width = arch.widths[-1]
    params += width * num_classes + num_classes
    flops += width * hw * hw + width * num_classes + num_classes  # global average pooling, linear with bias
    return params, flops
