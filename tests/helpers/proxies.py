"""What the tests of the proxies since 2021 share: small NB201 networks, a user network outside any space,
and the images and Gaussian batch they are scored on."""

from __future__ import annotations

import torch
from torch import nn

from archscore.estimators.datasets import fixed_batches, load_embedded_cifar10
from archscore.estimators.spaces import get_space

NB201 = get_space("nb201")


def small_net(arch: str | tuple, seed: int = 7) -> nn.Module:
    """An NB201 network of ``arch`` (any encoding) with 8 channels and one cell per stage, initialised from
    ``seed``."""
    torch.manual_seed(seed)
    return NB201.build_network(NB201.parse(arch), C=8, N=1)


class InplaceCNN(nn.Module):
    """A user network outside any space: in-place ReLU after BN, max pool, a conv with bias, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
        )
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


def proxy_batches() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """24 CIFAR-10 images and their labels (some labels held by one image only), and a Gaussian batch of 8."""
    x, y = fixed_batches(load_embedded_cifar10(), 24, 1, seed=0)[0]
    noise = torch.randn((8, 3, 32, 32), generator=torch.Generator().manual_seed(3))
    return x, y, noise
