"""``activation_regions`` (TE-NAS's expressivity): the number of distinct nn.ReLU activation patterns, linear
regions, over the Gaussian batch, from one forward pass without gradients."""

from __future__ import annotations

import torch
from torch import nn

from archscore.estimators.zero_shot.passes.registry import PassInputs, register_pass


class RegionRecorder:
    """Forward hook for nn.ReLU modules: every image's pattern is the signs (output > 0) of the outputs of
    every nn.ReLU whose input is 4-D (the authors' hook), concatenated; ``labels`` numbers the distinct
    patterns seen so far, refined one ReLU at a time (none is kept), and no longer once every image has its
    own."""

    def __init__(self, samples: int, device: torch.device):
        self.labels = torch.zeros(samples, dtype=torch.int64, device=device)
        self.distinct = 1
        self.relus = 0

    def __call__(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if inputs[0].dim() != 4:
            return
        self.relus += 1
        if self.distinct == self.labels.shape[0]:
            return
        with torch.no_grad():
            codes = (output.detach() > 0).flatten(1).to(torch.uint8)
            _, pattern = torch.unique(codes, dim=0, return_inverse=True)
            pairs = torch.stack([self.labels, pattern.reshape(-1).to(torch.int64)], dim=1)
            _, labels = torch.unique(pairs, dim=0, return_inverse=True)
        self.labels = labels.reshape(-1)
        self.distinct = int(self.labels.max().item()) + 1

    @property
    def count(self) -> int | None:
        return self.distinct if self.relus else None


@register_pass("activation_regions", noise=True)
def activation_regions(inp: PassInputs) -> int | None:
    """The number of distinct patterns (``RegionRecorder``) over the Gaussian batch, run through the network
    in its mode, without gradients. None: no nn.ReLU sees a 4-D input."""
    net, noise = inp.net, inp.noise
    recorder = RegionRecorder(noise.shape[0], noise.device)
    handles = [m.register_forward_hook(recorder) for m in net.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            net(noise.detach())
    finally:
        for h in handles:
            h.remove()
    return recorder.count
