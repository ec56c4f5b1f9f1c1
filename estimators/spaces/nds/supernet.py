"""Weight-sharing supernets for the NDS spaces, once-for-all style (docs/concepts/estimators.md).

Each stage holds ``max_depth`` blocks at width ``max_width``; an architecture runs the first d blocks
of each stage and the first w channels of every weight (ordinal slicing: the convolutions'
leading output and input channels, the BN statistics and affine parameters of the leading channels,
the classifier's leading inputs). A bottleneck's inner width round(w * bot_mul) slices the same
way, and its grouped 3x3 kernel with g groups is the block diagonal of one dense kernel: group k of
an inner width i reads the k-th diagonal block of the dense kernel's leading i x i channels. Each
stage's first block has a projection shortcut, used when the architecture's shape changes there.

The supernet covers the architectures whose depths are at most ``max_depth`` and widths at most
``max_width`` (a CPU-sized supernet covers a corner of the space); it trains and scores those.
``standalone_state_dict`` gives the sliced weights under the names of the standalone ``NDSNetwork``,
and the two compute the same function.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from archscore.estimators.spaces.base import get_space
from archscore.estimators.spaces.nds.encoding import BASIC, NUM_STAGES, STEM_WIDTH, STRIDES, Stages, inner_width
from archscore.estimators.spaces.supernet import Supernet


def _bn(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``bn`` on the first x.shape[1] channels, as nn.BatchNorm2d's forward (running statistics
    updated in place, cumulative when momentum is None)."""
    c = x.shape[1]
    factor = 0.0
    if bn.training and bn.track_running_stats:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    use_running = not bn.training or bn.track_running_stats
    return F.batch_norm(
        x,
        bn.running_mean[:c] if use_running else None,
        bn.running_var[:c] if use_running else None,
        bn.weight[:c],
        bn.bias[:c],
        bn.training or not use_running,
        factor,
        bn.eps,
    )


def block_diagonal(kernel: torch.Tensor, inner: int, groups: int) -> torch.Tensor:
    """The grouped-conv weight (inner, inner // groups, k, k) taken from a dense kernel's diagonal blocks."""
    size = inner // groups
    return torch.cat([kernel[k * size : (k + 1) * size, k * size : (k + 1) * size] for k in range(groups)])


class SuperBlock(nn.Module):
    """A residual block at its largest shape; ``f`` and ``proj`` mirror ``ResidualBlock``'s modules."""

    def __init__(self, block_type: str, c_in: int, width: int, stride: int, first: bool):
        super().__init__()
        self.block_type, self.stride = block_type, stride
        if block_type == BASIC:
            self.f = nn.Sequential(
                nn.Conv2d(c_in, width, 3, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.Conv2d(width, width, 3, bias=False),
                nn.BatchNorm2d(width),
            )
        else:  # the inner width is at most the block's width (bot_mul <= 1)
            self.f = nn.Sequential(
                nn.Conv2d(c_in, width, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.Conv2d(width, width, 3, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.Conv2d(width, width, 1, bias=False),
                nn.BatchNorm2d(width),
            )
        self.proj = nn.Sequential(nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width)) if first else None

    def forward(self, x: torch.Tensor, width: int, stride: int, inner: int, groups: int) -> torch.Tensor:
        c_in, f = x.shape[1], self.f
        if self.block_type == BASIC:
            h = F.relu(_bn(f[1], F.conv2d(x, f[0].weight[:width, :c_in], stride=stride, padding=1)))
            h = _bn(f[4], F.conv2d(h, f[3].weight[:width, :width], padding=1))
        else:
            h = F.relu(_bn(f[1], F.conv2d(x, f[0].weight[:inner, :c_in])))
            grouped = block_diagonal(f[3].weight, inner, groups)
            h = F.relu(_bn(f[4], F.conv2d(h, grouped, stride=stride, padding=1, groups=groups)))
            h = _bn(f[7], F.conv2d(h, f[6].weight[:width, :inner]))
        if c_in != width or stride != 1:
            shortcut = _bn(self.proj[1], F.conv2d(x, self.proj[0].weight[:width, :c_in], stride=stride))
        else:
            shortcut = x
        return F.relu(h + shortcut)


class NDSSupernet(Supernet):
    def __init__(self, space: str, block_type: str, max_depth: int = 4, max_width: int = 64, num_classes: int = 10):
        super().__init__()
        self.space, self.block_type = space, block_type
        self.config = {"max_depth": max_depth, "max_width": max_width, "num_classes": num_classes}
        self.stem = nn.Sequential(
            nn.Conv2d(3, STEM_WIDTH, 3, padding=1, bias=False), nn.BatchNorm2d(STEM_WIDTH), nn.ReLU()
        )
        self.stages = nn.ModuleList()
        c_in = STEM_WIDTH
        for stage in range(NUM_STAGES):
            self.stages.append(
                nn.ModuleList(
                    SuperBlock(
                        block_type, c_in if j == 0 else max_width, max_width, STRIDES[stage] if j == 0 else 1, j == 0
                    )
                    for j in range(max_depth)
                )
            )
            c_in = max_width
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(max_width, num_classes)

    def covers(self, arch: Stages) -> bool:
        return max(arch.depths) <= self.config["max_depth"] and max(arch.widths) <= self.config["max_width"]

    def coverage_error(self, arch: Stages) -> str:
        return (
            f"the supernet holds stages of at most {self.config['max_depth']} blocks of width "
            f"{self.config['max_width']}; this architecture needs depths {list(arch.depths)}, "
            f"widths {list(arch.widths)}"
        )

    def forward(self, x: torch.Tensor, arch: Stages) -> torch.Tensor:
        x = self.stem(x)
        for stage, blocks in enumerate(self.stages):
            width = arch.widths[stage]
            inner = inner_width(width, arch.bot_muls[stage]) if arch.bot_muls else width
            groups = arch.groups[stage] if arch.groups else 1
            for j in range(arch.depths[stage]):
                x = blocks[j](x, width, STRIDES[stage] if j == 0 else 1, inner, groups)
        return F.linear(
            self.global_pooling(x).flatten(1), self.classifier.weight[:, : x.shape[1]], self.classifier.bias
        )

    def sampling_space(self, space):
        return CoveredSpace(space, self.config["max_depth"], self.config["max_width"])

    def standalone_config(self) -> dict:
        return {}

    def standalone_state_dict(self, arch: Stages) -> dict[str, torch.Tensor]:
        """The sliced weights of ``arch`` under the names of ``NDSNetwork``: each tensor's leading
        slice of the standalone shape; grouped kernels their block diagonal."""
        if not self.covers(arch):
            raise ValueError(self.coverage_error(arch))
        with torch.device("meta"):
            shapes = {k: v.shape for k, v in get_space(self.space).build_network(arch).state_dict().items()}
        state = self.state_dict()
        grouped = re.compile(r"^stages\.(\d+)\.(\d+)\.f\.3\.weight$")
        out = {}
        for name, shape in shapes.items():
            tensor = state[name]
            match = grouped.match(name) if self.block_type != BASIC else None
            if match:
                stage = int(match.group(1))
                tensor = block_diagonal(tensor, shape[0], arch.groups[stage])
            out[name] = tensor[tuple(slice(0, n) for n in shape)] if shape else tensor
        return out


class CoveredSpace:
    """The sampler's view of an NDS space limited to a supernet's depth and width caps."""

    def __init__(self, space, max_depth: int, max_width: int):
        self.space, self.name = space, space.name
        self.caps = {"depths": max_depth, "widths": max_width}

    def has(self, capability: str) -> bool:
        return self.space.has(capability)

    def _values(self, field: str) -> tuple:
        values = self.space.fields[field]
        return tuple(v for v in values if v <= self.caps[field]) if field in self.caps else values

    def trainable(self, arch: Stages) -> bool:
        return max(arch.depths) <= self.caps["depths"] and max(arch.widths) <= self.caps["widths"]

    def random_arch(self, rng) -> Stages:
        return self.from_choices([rng.choice(self._values(f)) for f in self.space.fields for _ in range(NUM_STAGES)])

    def choice_slots(self) -> tuple[tuple, ...]:
        return tuple(self._values(f) for f in self.space.fields for _ in range(NUM_STAGES))

    def from_choices(self, values) -> Stages:
        return self.space.from_choices(values)
