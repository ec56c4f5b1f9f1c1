"""A weight-sharing supernet for NAS-Bench-201 (docs/concepts/estimators.md).

Every (cell, edge, op) owns its weights, shared by all architectures that use that op there. A
forward pass of an architecture runs only its ops, and only on edges whose source is reachable from
the cell input and whose target reaches the cell output. Module names mirror ``NB201Network`` so the
weights of any architecture can be copied into its standalone network (``standalone_state_dict``).

Edges whose source is unreachable carry zero in the standalone network too, except that a
ReLU-Conv-BN op maps zero to its BN shift; the supernet skips them, as the spec prescribes. The
two networks agree exactly whenever no conv op sits on such an edge (or its BN shift is zero).
"""

from __future__ import annotations

import re

import torch
from torch import nn

from archscore.estimators.spaces.nb201.encoding import EDGES, OPS, Arch, live_edges
from archscore.estimators.spaces.nb201.network import build_stages, make_op
from archscore.estimators.spaces.supernet import Supernet

CANDIDATE_OPS = tuple(op for op in OPS if op != "none")  # none has no weights and is never run


class SuperCell(nn.Module):
    def __init__(self, c: int, affine: bool = True):
        super().__init__()
        self.edges = nn.ModuleList(nn.ModuleDict({op: make_op(op, c, affine) for op in CANDIDATE_OPS}) for _ in EDGES)

    def forward(self, x: torch.Tensor, arch: Arch, live: tuple[bool, ...]) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            terms = [
                self.edges[pos][arch[pos]](nodes[s]) for pos, (s, t) in enumerate(EDGES) if t == target and live[pos]
            ]
            nodes.append(sum(terms) if terms else None)
        return nodes[3] if nodes[3] is not None else torch.zeros_like(x)


class NB201Supernet(Supernet):
    def __init__(self, C: int = 16, N: int = 5, num_classes: int = 10, affine: bool = True):
        super().__init__()
        self.space = "nb201"
        self.config = {"C": C, "N": N, "num_classes": num_classes, "affine": affine}
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C, affine=affine))
        cells, c = build_stages(C, N, affine, lambda width: SuperCell(width, affine))
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c, affine=affine), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        arch = tuple(arch)
        live = live_edges(arch)
        out = self.stem(x)
        for cell in self.cells:
            out = cell(out, arch, live) if isinstance(cell, SuperCell) else cell(out)
        out = self.lastact(out)
        return self.classifier(self.global_pooling(out).flatten(1))

    def standalone_config(self) -> dict:
        return {k: self.config[k] for k in ("C", "N", "affine")}

    def standalone_state_dict(self, arch: Arch) -> dict[str, torch.Tensor]:
        """The weights of ``arch`` under the names of ``NB201Network(arch, **config)``."""
        arch = tuple(arch)
        pattern = re.compile(r"^cells\.(\d+)\.edges\.(\d+)\.([a-z_0-9]+)\.(.+)$")
        state = {}
        for name, tensor in self.state_dict().items():
            match = pattern.match(name)
            if match is None:
                state[name] = tensor
                continue
            cell, pos, op, rest = match.groups()
            if arch[int(pos)] == op:
                state[f"cells.{cell}.edges.{pos}.{rest}"] = tensor
        return state
