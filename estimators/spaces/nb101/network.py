"""The standard NAS-Bench-101 network (google-research/nasbench ``model_builder``), in torch.

Stem conv3x3-BN-ReLU (128 channels); 3 stacks of 3 cells, a 2x2 max-pool (stride 2) and channel
doubling before stacks 2 and 3; global average pooling and a linear classifier. Only the modules a
forward pass runs are built (the cell is pruned), so the parameter count is the published one.
"""

from __future__ import annotations

import torch
from torch import nn

from archscore.estimators.spaces.nb101.cost import vertex_channels
from archscore.estimators.spaces.nb101.encoding import CONV1X1, CONV3X3, Cell


class ConvBNReLU(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out, eps=1e-5),
            nn.ReLU(inplace=False),
        )


def make_op(op: str, channels: int) -> nn.Module:
    if op == CONV3X3:
        return ConvBNReLU(channels, channels, 3)
    if op == CONV1X1:
        return ConvBNReLU(channels, channels, 1)
    return nn.MaxPool2d(3, stride=1, padding=1)


class NB101Cell(nn.Module):
    """Vertex t sums the 1x1 projection of the cell input (input->t) and the first channels of its
    interior predecessors, then runs its op; the output concatenates the vertices feeding it and adds
    a projection of the input when input->output exists."""

    def __init__(self, cell: Cell, c_in: int, c_out: int):
        super().__init__()
        self.matrix = cell.matrix
        n = len(cell.matrix)
        self.channels = vertex_channels(c_in, c_out, cell.matrix)
        self.projections = nn.ModuleDict(
            {str(t): ConvBNReLU(c_in, self.channels[t], 1) for t in range(1, n) if cell.matrix[0][t]}
        )
        self.ops = nn.ModuleDict({str(t): make_op(cell.ops[t], self.channels[t]) for t in range(1, n - 1)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, n = self.matrix, len(self.matrix)
        nodes: list[torch.Tensor | None] = [x]
        for t in range(1, n - 1):
            inputs = [nodes[s][:, : self.channels[t]] for s in range(1, t) if m[s][t]]
            if m[0][t]:
                inputs.append(self.projections[str(t)](x))
            nodes.append(self.ops[str(t)](sum(inputs[1:], inputs[0])))
        feeding = [nodes[t] for t in range(1, n - 1) if m[t][n - 1]]
        out = torch.cat(feeding, 1) if len(feeding) > 1 else (feeding[0] if feeding else None)
        if m[0][n - 1]:
            projected = self.projections[str(n - 1)](x)
            out = projected if out is None else out + projected
        return out


class NB101Network(nn.Module):
    def __init__(
        self,
        cell: Cell,
        stem_channels: int = 128,
        num_stacks: int = 3,
        cells_per_stack: int = 3,
        num_classes: int = 10,
        input_size: int = 32,
    ):
        super().__init__()
        self.input_size = input_size  # the network is size-agnostic; kept for cost accounting
        layers: list[nn.Module] = [ConvBNReLU(3, stem_channels, 3)]
        channels = stem_channels
        for stack in range(num_stacks):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, stride=2))
                channels *= 2
            for i in range(cells_per_stack):
                c_in = channels // 2 if stack > 0 and i == 0 else channels
                layers.append(NB101Cell(cell, c_in, channels))
        self.features = nn.Sequential(*layers)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.global_pooling(self.features(x)).flatten(1))
