"""Exact parameters and FLOPs of the standard NAS-Bench-101 network, without torch.

Counting convention of the published NAS-Bench-Suite-Zero columns (docs/concepts/spaces.md): parameters of the
modules that run in a forward pass; FLOPs = conv and linear multiply-adds + 2 per BatchNorm output
element + 1 per ReLU output element + k*k per pooling output element. Global average pooling and the
classifier's bias adds are not counted. With this the 500 published cells are reproduced exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

from archscore.estimators.spaces.counting import FLOPS_BN_PER_ELEMENT, FLOPS_RELU_PER_ELEMENT

CONV_BN_RELU_PER_ELEMENT = FLOPS_BN_PER_ELEMENT + FLOPS_RELU_PER_ELEMENT


def vertex_channels(in_channels: int, out_channels: int, matrix: Sequence[Sequence[int]]) -> list[int]:
    """Channels of each vertex (NAS-Bench-101's ``compute_vertex_channels``): the output's channels are
    split among the interior vertices feeding it (the first ``out % k`` get one more); other interior
    vertices take the max of their interior successors."""
    n = len(matrix)
    channels = [0] * n
    channels[0], channels[n - 1] = in_channels, out_channels
    if n == 2:
        return channels
    feeding = sum(matrix[v][n - 1] for v in range(1, n - 1))
    share, extra = divmod(out_channels, feeding)
    for v in range(1, n - 1):
        if matrix[v][n - 1]:
            channels[v] = share + (1 if extra > 0 else 0)
            extra -= 1
    for v in range(n - 3, 0, -1):
        if not matrix[v][n - 1]:
            for w in range(v + 1, n - 1):
                if matrix[v][w]:
                    channels[v] = max(channels[v], channels[w])
    return channels


def conv_bn_relu_cost(c_in: int, c_out: int, kernel: int, hw: int) -> tuple[int, int]:
    """(params, FLOPs) of conv (no bias) + BN (affine) + ReLU at stride 1."""
    out = c_out * hw * hw
    return c_in * c_out * kernel * kernel + 2 * c_out, c_in * kernel * kernel * out + CONV_BN_RELU_PER_ELEMENT * out


def cell_cost(cell, in_channels: int, out_channels: int, hw: int) -> tuple[int, int]:
    matrix, ops = cell.matrix, cell.ops
    n = len(matrix)
    channels = vertex_channels(in_channels, out_channels, matrix)
    params = flops = 0

    def add(cost: tuple[int, int]) -> None:
        nonlocal params, flops
        params, flops = params + cost[0], flops + cost[1]

    for t in range(1, n - 1):
        if matrix[0][t]:
            add(conv_bn_relu_cost(in_channels, channels[t], 1, hw))  # projection of the cell input
        if ops[t] == "conv3x3-bn-relu":
            add(conv_bn_relu_cost(channels[t], channels[t], 3, hw))
        elif ops[t] == "conv1x1-bn-relu":
            add(conv_bn_relu_cost(channels[t], channels[t], 1, hw))
        else:  # maxpool3x3, stride 1
            add((0, 9 * channels[t] * hw * hw))
    if matrix[0][n - 1]:
        add(conv_bn_relu_cost(in_channels, out_channels, 1, hw))
    return params, flops


def network_cost(
    cell,
    stem_channels: int = 128,
    num_stacks: int = 3,
    cells_per_stack: int = 3,
    num_classes: int = 10,
    input_size: int = 32,
) -> tuple[int, int]:
    """(trainable parameters, FLOPs of one sample) of the standard network (model_builder.py)."""
    hw = input_size
    params, flops = conv_bn_relu_cost(3, stem_channels, 3, hw)
    channels = stem_channels
    for stack in range(num_stacks):
        if stack > 0:
            hw //= 2
            flops += 4 * channels * hw * hw  # 2x2 max-pool, stride 2
            channels *= 2
        for i in range(cells_per_stack):
            c_in = channels // 2 if stack > 0 and i == 0 else channels
            p, f = cell_cost(cell, c_in, channels, hw)
            params, flops = params + p, flops + f
    params += channels * num_classes + num_classes
    flops += channels * num_classes
    return params, flops
