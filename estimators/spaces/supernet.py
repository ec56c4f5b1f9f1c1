"""What every space's weight-sharing supernet offers besides ``forward(x, arch)`` (torch)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Supernet(nn.Module):
    """Subclasses set ``space`` (the space's name) and ``config`` (the keyword arguments that build
    them again, recorded in checkpoint manifests)."""

    space: str
    config: dict[str, Any]

    def covers(self, arch) -> bool:
        """Whether this supernet can run ``arch`` (supernets smaller than their space cover part of it)."""
        return True

    def coverage_error(self, arch) -> str:
        """Why ``arch`` is not covered (only asked when ``covers`` is false)."""
        return "the architecture is outside this supernet"

    def sampling_space(self, space):
        """What the samplers draw training architectures from: the space, or (supernets smaller than
        their space) a view of it with the same sampler methods limited to what this supernet covers."""
        return space

    def standalone_config(self) -> dict[str, Any]:
        """Keyword arguments of the space's ``build_network`` that give the standalone network whose
        parameters ``standalone_state_dict`` names."""
        raise NotImplementedError(f"the {self.space} supernet's weights do not transfer to its standalone network")

    def standalone_state_dict(self, arch) -> dict[str, torch.Tensor]:
        """The weights of ``arch`` under the names of its standalone network at ``standalone_config()``."""
        raise NotImplementedError(f"the {self.space} supernet's weights do not transfer to its standalone network")


class PartitionedSupernet(Supernet):
    """Reduced sharing: K supernets of one space in one checkpoint, part k owning the architectures
    whose ``space.partition_value`` has index i with i mod K == k. Training routes each sampled
    architecture to its owner (so at a fixed number of steps each part gets about 1/K of them) and
    scoring runs each architecture in the part that owns it."""

    def __init__(self, space, partitions: int, config: dict[str, Any]):
        super().__init__()
        self.space = space.name
        self._values = {v: i % partitions for i, v in enumerate(space.partition_values())}
        self._value_of = lambda arch: space.partition_value(space.supernet_path(arch))
        self.parts = nn.ModuleList(space.build_supernet(**config) for _ in range(partitions))
        self.config = {**self.parts[0].config, "partitions": partitions}

    def part(self, arch) -> int:
        return self._values[self._value_of(arch)]

    def forward(self, x: torch.Tensor, arch) -> torch.Tensor:
        return self.parts[self.part(arch)](x, arch)

    def covers(self, arch) -> bool:
        return self.parts[0].covers(arch)

    def coverage_error(self, arch) -> str:
        return self.parts[0].coverage_error(arch)

    def sampling_space(self, space):
        return self.parts[0].sampling_space(space)

    def standalone_config(self) -> dict[str, Any]:
        return self.parts[0].standalone_config()

    def standalone_state_dict(self, arch) -> dict[str, torch.Tensor]:
        return self.parts[self.part(arch)].standalone_state_dict(arch)
