"""A weight-sharing supernet for NAS-Bench-301 (DARTS weight sharing; docs/concepts/estimators.md).

Each cell holds, for every edge (node k, input i < k) of the DARTS cell and every op, one module;
an architecture's node sums its two ops on its two inputs, each run by the module of that (edge, op).
The cell inputs' preprocessing, the stem and the classifier are shared by every architecture. Module
names mirror ``NB301Network``, so an architecture's weights load into its standalone network
(``standalone_state_dict``) and the two compute the same function.

The supernet's cells output the concatenation of all four nodes (channels 4C, as DARTS): it covers
the genotypes whose concat lists are [2, 3, 4, 5] (every genotype the benchmark and the random
sampler produce); it trains those whose nodes read two different inputs.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from archscore.estimators.spaces.nb301.cost import check_network_config, reduction_cells
from archscore.estimators.spaces.nb301.encoding import CONCAT_NODES, NUM_NODES, OPS, Genotype, canonical_genotype
from archscore.estimators.spaces.nb301.network import FactorizedReduce, ReLUConvBN, make_op
from archscore.estimators.spaces.supernet import Supernet

EDGES = tuple((node, src) for node in range(2, 2 + NUM_NODES) for src in range(node))


def full_concat(g: Genotype) -> bool:
    return tuple(sorted(g.normal_concat)) == CONCAT_NODES and tuple(sorted(g.reduce_concat)) == CONCAT_NODES


class SuperCell(nn.Module):
    def __init__(self, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c)
        self.preprocess1 = ReLUConvBN(c_p, c)
        self.edges = nn.ModuleDict(
            {
                f"{node}_{src}": nn.ModuleDict({op: make_op(op, c, 2 if reduction and src < 2 else 1) for op in OPS})
                for node, src in EDGES
            }
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, pairs) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(NUM_NODES):
            node = k + 2
            (op_a, a), (op_b, b) = pairs[2 * k], pairs[2 * k + 1]
            states.append(self.edges[f"{node}_{a}"][op_a](states[a]) + self.edges[f"{node}_{b}"][op_b](states[b]))
        return torch.cat(states[2:], dim=1)


class NB301Supernet(Supernet):
    def __init__(self, C: int = 16, layers: int = 8, num_classes: int = 10):
        super().__init__()
        check_network_config(C, layers, num_classes, 32)
        self.space = "nb301"
        self.config = {"C": C, "layers": layers, "num_classes": num_classes}
        self.stem = nn.Sequential(nn.Conv2d(3, 3 * C, 3, padding=1, bias=False), nn.BatchNorm2d(3 * C))
        self.reductions = reduction_cells(layers)
        c_pp = c_p = 3 * C
        c = C
        cells = []
        for i in range(layers):
            reduction = i in self.reductions
            c = 2 * c if reduction else c
            cells.append(SuperCell(c_pp, c_p, c, reduction, i - 1 in self.reductions))
            c_pp, c_p = c_p, len(CONCAT_NODES) * c
        self.cells = nn.ModuleList(cells)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def covers(self, arch: Genotype) -> bool:
        return full_concat(arch)

    def coverage_error(self, arch: Genotype) -> str:
        return "the supernet's cells concatenate all four nodes; this genotype's concat lists fewer"

    def forward(self, x: torch.Tensor, arch: Genotype) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, arch.reduce if i in self.reductions else arch.normal)
        return self.classifier(self.global_pooling(s1).flatten(1))

    def standalone_config(self) -> dict:
        return {k: self.config[k] for k in ("C", "layers")}

    def standalone_state_dict(self, arch: Genotype) -> dict[str, torch.Tensor]:
        """The weights of ``arch`` under the names of ``NB301Network(arch, C, layers)``: the module
        of pair j of the canonical genotype is the supernet's module of that pair's (edge, op)."""
        if not full_concat(arch):
            raise ValueError(self.coverage_error(arch))
        g = canonical_genotype(arch)
        state = self.state_dict()
        pattern = re.compile(r"^cells\.(\d+)\.edges\.(\d+)_(\d+)\.([a-z_0-9]+)\.(.+)$")
        out = {name: tensor for name, tensor in state.items() if not pattern.match(name)}
        for i in range(len(self.cells)):
            pairs = g.reduce if i in self.reductions else g.normal
            for j, (op, src) in enumerate(pairs):
                prefix = f"cells.{i}.edges.{j // 2 + 2}_{src}.{op}."
                out.update(
                    {
                        f"cells.{i}.ops.{j}.{name[len(prefix) :]}": t
                        for name, t in state.items()
                        if name.startswith(prefix)
                    }
                )
        return out
