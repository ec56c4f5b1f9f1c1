"""A weight-sharing supernet for NAS-Bench-101 in the style of NAS-Bench-1shot1 (docs/concepts/estimators.md).

Each cell holds, for every interior node t (1..5) and every op, one module, and for every node
(the output included) its own 1x1 projection of the cell input. An architecture's node t (the
t-th vertex of its pruned cell) sums its projected input (when input -> t) and its interior
predecessors, then runs its op; the output sums the nodes feeding it and its projection of the
input (when input -> output). Only the architecture's ops run; unused nodes contribute nothing.

How it differs from the standalone NB101 network: there, the cell's output channels are split among
the vertices feeding the output and concatenated, so a vertex's width depends on the architecture.
Here every node has the cell's full width and the output sums them (as NAS-Bench-1shot1's one-shot
model does), so weights can be shared; an architecture's supernet weights therefore do not load into
its standalone network. The equivalence test checks the supernet's forward against a reference
forward of the architecture written with the same weights by the test.
"""

from __future__ import annotations

import torch
from torch import nn

from archscore.estimators.spaces.nb101.encoding import MAX_VERTICES, OPS, Cell
from archscore.estimators.spaces.nb101.network import ConvBNReLU, make_op
from archscore.estimators.spaces.supernet import Supernet

NODES = tuple(range(1, MAX_VERTICES - 1))  # interior nodes 1..5


class SuperCell(nn.Module):
    def __init__(self, c_in: int, c: int):
        super().__init__()
        self.projections = nn.ModuleDict({str(t): ConvBNReLU(c_in, c, 1) for t in (*NODES, "out")})
        self.ops = nn.ModuleDict({str(t): nn.ModuleDict({op: make_op(op, c) for op in OPS}) for t in NODES})

    def forward(self, x: torch.Tensor, cell: Cell) -> torch.Tensor:
        m, n = cell.matrix, len(cell.matrix)
        nodes: list[torch.Tensor | None] = [x]
        for t in range(1, n - 1):
            inputs = [nodes[s] for s in range(1, t) if m[s][t]]
            if m[0][t]:
                inputs.append(self.projections[str(t)](x))
            nodes.append(self.ops[str(t)][cell.ops[t]](sum(inputs[1:], inputs[0])))
        feeding = [nodes[t] for t in range(1, n - 1) if m[t][n - 1]]
        if m[0][n - 1]:
            feeding.append(self.projections["out"](x))
        return sum(feeding[1:], feeding[0])


class NB101Supernet(Supernet):
    def __init__(self, stem_channels: int = 16, num_stacks: int = 3, cells_per_stack: int = 3, num_classes: int = 10):
        super().__init__()
        self.space = "nb101"
        self.config = {
            "stem_channels": stem_channels,
            "num_stacks": num_stacks,
            "cells_per_stack": cells_per_stack,
            "num_classes": num_classes,
        }
        self.stem = ConvBNReLU(3, stem_channels, 3)
        layers: list[nn.Module] = []
        channels = stem_channels
        for stack in range(num_stacks):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, stride=2))
                channels *= 2
            for i in range(cells_per_stack):
                layers.append(SuperCell(channels // 2 if stack > 0 and i == 0 else channels, channels))
        self.layers = nn.ModuleList(layers)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor, arch: Cell) -> torch.Tensor:
        out = self.stem(x)
        for layer in self.layers:
            out = layer(out, arch) if isinstance(layer, SuperCell) else layer(out)
        return self.classifier(self.global_pooling(out).flatten(1))
