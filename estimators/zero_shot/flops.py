"""FLOPs of one forward pass of any torch module, in the convention of NAS-Bench-201's cost column.

Conv/Linear multiply-accumulates (plus one add per output for a bias), BatchNorm 2 per element,
ReLU 1 per element, average/max pooling k*k per output element, adaptive pooling 1 per input
element. The spaces' cost models compute the same numbers without torch.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from archscore.estimators.spaces.counting import FLOPS_BN_PER_ELEMENT, FLOPS_RELU_PER_ELEMENT


def _module_flops(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        per_position = kh * kw * module.in_channels * module.out_channels // module.groups
        positions = out.numel() // module.out_channels
        return per_position * positions + (out.numel() if module.bias is not None else 0)
    if isinstance(module, nn.Linear):
        rows = out.numel() // module.out_features
        return rows * module.in_features * module.out_features + (out.numel() if module.bias is not None else 0)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return FLOPS_BN_PER_ELEMENT * out.numel()
    if isinstance(module, nn.ReLU):
        return FLOPS_RELU_PER_ELEMENT * out.numel()
    if isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)):
        k = module.kernel_size
        return (math.prod(k) if isinstance(k, tuple) else k * k) * out.numel()
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return inp.numel()
    return 0


def count_flops(net: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs per sample for an input of ``input_shape`` (batch dimension first)."""
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += _module_flops(module, inputs[0], output)

    handles = [m.register_forward_hook(hook) for m in net.modules() if not list(m.children())]
    was_training = net.training
    try:
        net.eval()
        with torch.no_grad():
            device = next(net.parameters(), torch.empty(0)).device
            net(torch.zeros(input_shape, device=device))
    finally:
        net.train(was_training)
        for h in handles:
            h.remove()
    return total // input_shape[0]
