"""``activation_patterns`` (SWAP): the distinct sign patterns of the nn.ReLU outputs over the batch's first
images run alone."""

from __future__ import annotations

import torch
from torch import nn

from archscore.estimators.zero_shot.passes.registry import PassInputs, register_pass

SWAP_SAMPLES = 16  # images SWAP reads: pym1024/SWAP correlation.py, --input_samples


class ActivationPatterns:
    """Forward hook for nn.ReLU modules: SWAP's sign patterns. Every output neuron of a ReLU whose input
    is 4-D has one pattern, its signs over the samples (output > 0); ``count`` is the number of distinct
    patterns over all of them (a pattern is a number below 2**samples, marked in a table)."""

    def __init__(self, samples: int, device: torch.device):
        self.samples = samples
        self.seen = torch.zeros(2**samples, dtype=torch.bool, device=device)
        self.bits = 2 ** torch.arange(samples, device=device, dtype=torch.int64)
        self.relus = 0

    def __call__(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if inputs[0].dim() != 4:
            return
        with torch.no_grad():
            codes = (output.detach()[: self.samples] > 0).flatten(1).to(torch.int64)  # samples x neurons
            self.seen[(codes * self.bits[:, None]).sum(0)] = True
        self.relus += 1

    @property
    def count(self) -> int | None:
        return int(self.seen.sum().item()) if self.relus else None


@register_pass("activation_patterns")
def activation_patterns(inp: PassInputs) -> int | None:
    """SWAP on the batch's first SWAP_SAMPLES images run alone (None: no nn.ReLU sees a 4-D input)."""
    net, x = inp.net, inp.x
    samples = min(SWAP_SAMPLES, x.shape[0])
    recorder = ActivationPatterns(samples, x.device)
    handles = [m.register_forward_hook(recorder) for m in net.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            net(x[:samples])
    finally:
        for h in handles:
            h.remove()
    return recorder.count
