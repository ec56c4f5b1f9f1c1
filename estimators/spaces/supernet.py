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
