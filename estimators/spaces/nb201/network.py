"""The official NAS-Bench-201 inference network (``TinyNetwork`` with ``InferCell``), in torch.

Stem conv3x3+BN, three stages of N cells with C, 2C, 4C channels joined by residual reduction
blocks, BN+ReLU, global average pooling and a linear classifier. Cell ops are ReLU-Conv-BN with
affine BN; every op of the cell is instantiated and run, as in the reference, so parameter counts
equal the published ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archscore.estimators.spaces.nb201.encoding import EDGES, Arch


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=not affine),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class AvgPool3x3(nn.AvgPool2d):
    """``nn.AvgPool2d(3, 1, 1, count_include_pad=False)``, computed as a depthwise 3x3 box filter
    divided by the number of in-image taps: the same numbers, several times faster on CPU in NCHW
    (forward, backward and double backward)."""

    def __init__(self) -> None:
        super().__init__(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, h, w = x.shape[1:]
        box = torch.ones(c, 1, 3, 3, dtype=x.dtype, device=x.device)
        ones = torch.ones(1, 1, h, w, dtype=x.dtype, device=x.device)
        taps = F.conv2d(ones, box[:1], padding=1)
        return F.conv2d(x, box, padding=1, groups=c) / taps


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(op: str, c: int, affine: bool = True) -> nn.Module:
    """A cell op with c input and output channels, stride 1."""
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1, 1, 0, affine)
    if op == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3, 1, 1, affine)
    if op == "avg_pool_3x3":
        return AvgPool3x3()
    raise ValueError(f"unknown NB201 op {op!r}")


class ResNetBasicBlock(nn.Module):
    """Reduction block between stages: two ReLU-Conv-BN (first with stride 2) plus an avg-pool+1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1, affine)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, affine)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class InferCell(nn.Module):
    """Node i (1..3) is the sum over j < i of op_{j->i}(node j); the cell outputs node 3."""

    def __init__(self, arch: Arch, c: int, affine: bool = True):
        super().__init__()
        self.edges = nn.ModuleList(make_op(op, c, affine) for op in arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            nodes.append(sum(self.edges[pos](nodes[s]) for pos, (s, t) in enumerate(EDGES) if t == target))
        return nodes[3]


def build_stages(C: int, N: int, affine: bool, make_cell) -> tuple[list[nn.Module], int]:
    """Three stages of N cells (C, 2C, 4C channels) joined by reduction blocks; returns the
    modules and the final width. Shared by the standalone network and the supernet."""
    cells: list[nn.Module] = []
    c = C
    for stage in range(3):
        if stage > 0:
            cells.append(ResNetBasicBlock(c, 2 * c, affine))
            c *= 2
        cells.extend(make_cell(c) for _ in range(N))
    return cells, c


class NB201Network(nn.Module):
    def __init__(
        self, arch: Arch, C: int = 16, N: int = 5, num_classes: int = 10, input_size: int = 32, affine: bool = True
    ):
        super().__init__()
        self.arch = tuple(arch)
        self.input_size = input_size  # the network is size-agnostic; kept for cost accounting
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C, affine=affine))
        cells, c = build_stages(C, N, affine, lambda width: InferCell(self.arch, width, affine))
        self.cells = nn.Sequential(*cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c, affine=affine), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lastact(self.cells(self.stem(x)))
        return self.classifier(self.global_pooling(out).flatten(1))
