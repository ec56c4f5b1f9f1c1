"""The standard NAS-Bench-301 network behind the published params/flops (NASLib's NB301 graph as
NAS-Bench-Suite-Zero used it; the DARTS cell network without auxiliary head or drop path), in torch.

Stem conv3x3 (3 -> 3C) + BN; ``layers`` cells, reduction cells at layers//3 and 2*layers//3 doubling
the channels; each cell preprocesses its inputs (ReLU-conv1x1-BN, or FactorizedReduce for the input
from before a reduction, affine BN), runs its ops (non-affine BN) and concatenates its concat nodes;
global average pooling and a linear classifier. Only the nodes that run are built, so the parameter
count is ``NB301Space.cost``'s. The network is built from the canonical genotype, so genotypes that
share a canonical key get the same network for the same seed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archscore.estimators.spaces.nb301.cost import check_network_config, reduction_cells
from archscore.estimators.spaces.nb301.encoding import Genotype, Pair, canonical_genotype, live_nodes


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class FactorizedReduce(nn.Module):
    """ReLU, two 1x1 stride-2 convs (the second offset by one pixel) concatenated, BN."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class SepConv(nn.Sequential):
    """(ReLU, depthwise kxk, pointwise 1x1, BN) twice, the stride on the first depthwise conv."""

    def __init__(self, c: int, kernel: int, stride: int, affine: bool = False):
        pad = kernel // 2
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, kernel, stride=stride, padding=pad, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, kernel, stride=1, padding=pad, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise kxk with dilation 2 (padding k-1), pointwise 1x1, BN."""

    def __init__(self, c: int, kernel: int, stride: int, affine: bool = False):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, kernel, stride=stride, padding=kernel - 1, dilation=2, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=affine),
        )


class AvgPool3x3(nn.AvgPool2d):
    """``nn.AvgPool2d(3, stride, 1, count_include_pad=False)``, computed as a depthwise 3x3 box filter
    divided by the number of in-image taps: the same numbers, faster on CPU (forward, backward and
    double backward), as in the NB201 network."""

    def __init__(self, stride: int = 1) -> None:
        super().__init__(3, stride=stride, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, h, w = x.shape[1:]
        box = torch.ones(c, 1, 3, 3, dtype=x.dtype, device=x.device)
        ones = torch.ones(1, 1, h, w, dtype=x.dtype, device=x.device)
        taps = F.conv2d(ones, box[:1], stride=self.stride, padding=1)
        return F.conv2d(x, box, stride=self.stride, padding=1, groups=c) / taps


def make_op(op: str, c: int, stride: int) -> nn.Module:
    """A cell op with c channels (non-affine BN)."""
    if op == "max_pool_3x3":
        return nn.Sequential(nn.MaxPool2d(3, stride=stride, padding=1), nn.BatchNorm2d(c, affine=False))
    if op == "avg_pool_3x3":
        return nn.Sequential(AvgPool3x3(stride), nn.BatchNorm2d(c, affine=False))
    if op == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine=False)
    if op.startswith("sep_conv_"):
        return SepConv(c, int(op[-1]), stride)
    if op.startswith("dil_conv_"):
        return DilConv(c, int(op[-1]), stride)
    raise ValueError(f"unknown NB301 op {op!r}")


class NB301Cell(nn.Module):
    """Node k+2 sums its two ops on nodes 0..k+1 (0, 1: the preprocessed cell inputs); the cell
    outputs the channel concatenation of its concat nodes. Nodes that do not run are not built."""

    def __init__(
        self,
        pairs: tuple[Pair, ...],
        concat: tuple[int, ...],
        c_pp: int,
        c_p: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
    ):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c)
        self.preprocess1 = ReLUConvBN(c_p, c)
        self.concat = tuple(concat)
        self.ops = nn.ModuleDict()
        self.steps: list[tuple[int, tuple[tuple[str, int], ...]]] = []  # (node, ((op key, input), x2))
        for node in live_nodes(pairs, concat):
            inputs = []
            for j in (2 * (node - 2), 2 * (node - 2) + 1):
                op, src = pairs[j]
                self.ops[str(j)] = make_op(op, c, 2 if reduction and src < 2 else 1)
                inputs.append((str(j), src))
            self.steps.append((node, tuple(inputs)))
        self.out_channels = len(self.concat) * c

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = {0: self.preprocess0(s0), 1: self.preprocess1(s1)}
        for node, inputs in self.steps:
            (ka, a), (kb, b) = inputs
            states[node] = self.ops[ka](states[a]) + self.ops[kb](states[b])
        return torch.cat([states[n] for n in self.concat], dim=1)


class NB301Network(nn.Module):
    def __init__(self, arch: Genotype, C: int = 32, layers: int = 8, num_classes: int = 10, input_size: int = 32):
        super().__init__()
        check_network_config(C, layers, num_classes, input_size)
        self.arch = canonical_genotype(arch)
        self.input_size = input_size  # the network is size-agnostic; kept for cost accounting
        self.stem = nn.Sequential(nn.Conv2d(3, 3 * C, 3, padding=1, bias=False), nn.BatchNorm2d(3 * C))
        reductions = reduction_cells(layers)
        c_pp = c_p = 3 * C
        c = C
        reduction_prev = False
        cells = []
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                c *= 2
            a = self.arch
            pairs, concat = (a.reduce, a.reduce_concat) if reduction else (a.normal, a.normal_concat)
            cell = NB301Cell(pairs, concat, c_pp, c_p, c, reduction, reduction_prev)
            cells.append(cell)
            c_pp, c_p = c_p, cell.out_channels
            reduction_prev = reduction
        self.cells = nn.ModuleList(cells)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(s1).flatten(1))
