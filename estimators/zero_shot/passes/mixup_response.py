"""``mixup_response`` (Zen-NAS): how much the feature map before global average pooling of a copy of the
network, Gaussian re-initialised, moves when its Gaussian input is perturbed slightly, and the BatchNorm
scales the two passes leave."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from archscore.estimators.zero_shot.passes.registry import PassInputs, register_pass

MIXUP_GAMMA = 1e-2  # idstcv/ZenNAS and ondratybl/VKDNW compute_zen_score.py: mixup_gamma

# the calls that pool a 4-D map globally: to a 1x1 map, or a mean over both spatial dimensions
_POOLS: frozenset[Callable[..., Any]] = frozenset({F.adaptive_avg_pool2d, F.avg_pool2d})
_MEANS: frozenset[Callable[..., Any]] = frozenset({torch.mean, torch.Tensor.mean})


@dataclass(frozen=True)
class MixupResponse:
    change: float | None  # mean over the batch of Σ over channels and positions of |f(x) - f(x + γε)|
    bn_log_scale: float  # Σ over BatchNorm2d modules of log sqrt(mean running_var)
    reason: str | None = None  # why ``change`` is None


def gaussian_initialised(net: nn.Module, generator: torch.Generator) -> nn.Module:
    """A copy of ``net`` initialised as Zen-NAS's authors do (``network_weight_gaussian_init``): every
    Conv2d/Linear weight N(0, 1), their biases 0, every affine BatchNorm2d/GroupNorm weight 1 and bias 0; the
    draws from ``generator`` (on the CPU), module by module in order. Every BatchNorm's running statistics are
    reset, as on the freshly built networks the authors score."""
    net = copy.deepcopy(net)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator, dtype=m.weight.dtype))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.affine:
                m.weight.fill_(1.0)
                m.bias.zero_()
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
    return net


def _spatial_dims(args: tuple, kwargs: dict) -> set[int] | None:
    dims = args[1] if len(args) > 1 else kwargs.get("dim")
    if dims is None:
        return None
    return {int(d) % 4 for d in (dims if isinstance(dims, (tuple, list)) else (dims,))}


class GlobalPoolInput(TorchFunctionMode):
    """While active, keeps (a copy of) the input of the last global average pooling run: a 4-D tensor
    pooled by ``adaptive_avg_pool2d`` or ``avg_pool2d`` (the functions or nn.AdaptiveAvgPool2d/nn.AvgPool2d)
    to a 1x1 map, or averaged over both spatial dimensions (``mean`` over dims 2 and 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.last: torch.Tensor | None = None

    def __torch_function__(
        self, func: Callable[..., Any], types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in _POOLS or func in _MEANS:
            x = args[0] if args else kwargs.get("input")
            if isinstance(x, torch.Tensor) and x.dim() == 4 and isinstance(out, torch.Tensor):
                pooled = out.dim() == 4 and tuple(out.shape[2:]) == (1, 1)
                if (func in _POOLS and pooled) or (func in _MEANS and _spatial_dims(args, kwargs) == {2, 3}):
                    self.last = x.detach().clone()
        return out


def before_global_pooling(net: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """The input of the last global average pooling ``net`` runs on ``x`` (GlobalPoolInput; None: none)."""
    recorder = GlobalPoolInput()
    with recorder:
        net(x)
    return recorder.last


@register_pass("mixup_response", noise=True, first=True)
def mixup_response(inp: PassInputs) -> MixupResponse:
    """Zen-NAS's two terms, one repeat: the network ``gaussian_initialised`` from a generator seeded by the
    protocol's seed, in train mode, without gradients; x the Gaussian batch, ε a standard Gaussian batch of its
    shape drawn next from that generator; f the input of the last global average pooling
    (``before_global_pooling``); change = mean over the batch of Σ |f(x) - f(x + MIXUP_GAMMA·ε)|, the two
    passes in that order; then Σ over BatchNorm2d modules of log sqrt(mean running_var)."""
    generator = torch.Generator().manual_seed(inp.seed)
    net = gaussian_initialised(inp.net, generator)
    norms = [(k, m) for k, m in net.named_modules() if isinstance(m, nn.BatchNorm2d)]
    untracked = [k for k, m in norms if m.running_var is None]
    if untracked:
        return MixupResponse(None, 0.0, f"BatchNorm2d {untracked[0]!r} keeps no running variance, which Zen-NAS reads")
    x = inp.noise
    eps = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    net.train()
    with torch.no_grad():
        f = before_global_pooling(net, x)
        if f is None:
            return MixupResponse(None, 0.0, "no global average pooling of a 4-D feature map runs in the network")
        f_mixed = before_global_pooling(net, x + MIXUP_GAMMA * eps)
        assert f_mixed is not None  # the same network: its global pooling runs again
        change = (f - f_mixed).abs().to(torch.float64).flatten(1).sum(1).mean().item()
    scale = 0.0
    for _, m in norms:
        variance = m.running_var.to(torch.float64).mean().item()  # type: ignore[union-attr]
        scale += 0.5 * math.log(variance) if variance > 0 else -math.inf
    return MixupResponse(change, scale)
