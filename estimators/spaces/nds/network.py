"""The standalone NDS networks in torch, following pycls's AnyNet conventions for CIFAR: stem conv3x3
(3 -> 16) + BN + ReLU; three stages (strides 1, 2, 2) whose first block carries the stride and the
change of width; a 1x1 conv + BN projection shortcut where the shape changes; global average pooling
and a linear head. Convolutions have no bias; PyTorch's default initialisation, as in the other spaces.

Basic block: 3x3 (stride) BN ReLU, 3x3 BN. Bottleneck block: 1x1 BN ReLU, grouped 3x3 (stride) BN
ReLU, 1x1 BN, inner width round(w * bot_mul). Both add the shortcut, then ReLU. ReLUs run in place:
the largest networks are memory-bound on a CPU, and no estimator needs the pre-activation kept.
"""

from __future__ import annotations

import torch
from torch import nn

from archscore.estimators.spaces.nds.cost import blocks, check_network_config
from archscore.estimators.spaces.nds.encoding import BASIC, STEM_WIDTH, Stages


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]


class ResidualBlock(nn.Module):
    def __init__(self, block_type: str, c_in: int, c_out: int, stride: int, inner: int, groups: int):
        super().__init__()
        if block_type == BASIC:
            layers = [*_conv_bn(c_in, c_out, 3, stride), nn.ReLU(inplace=True), *_conv_bn(c_out, c_out, 3)]
        else:
            if inner % groups:
                raise ValueError(f"inner width {inner} is not divisible into {groups} groups")
            layers = [
                *_conv_bn(c_in, inner, 1),
                nn.ReLU(inplace=True),
                *_conv_bn(inner, inner, 3, stride, groups),
                nn.ReLU(inplace=True),
                *_conv_bn(inner, c_out, 1),
            ]
        self.f = nn.Sequential(*layers)
        self.proj = nn.Sequential(*_conv_bn(c_in, c_out, 1, stride)) if c_in != c_out or stride != 1 else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.proj is None else self.proj(x)
        return self.relu(self.f(x) + shortcut)


class NDSNetwork(nn.Module):
    def __init__(self, block_type: str, arch: Stages, num_classes: int = 10, input_size: int = 32):
        super().__init__()
        check_network_config(num_classes, input_size)
        self.arch = arch
        self.input_size = input_size  # the network is size-agnostic; kept for cost accounting
        self.stem = nn.Sequential(*_conv_bn(3, STEM_WIDTH, 3), nn.ReLU(inplace=True))
        self.stages = nn.ModuleList(nn.Sequential() for _ in arch.depths)
        for stage, c_in, c_out, stride, inner, groups in blocks(block_type, arch):
            self.stages[stage].append(ResidualBlock(block_type, c_in, c_out, stride, inner, groups))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(arch.widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.classifier(self.global_pooling(x).flatten(1))
