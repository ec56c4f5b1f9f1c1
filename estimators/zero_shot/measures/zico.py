"""``zico``: ZiCo (Li et al., ICLR 2023), the inverse coefficient of variation of the gradients.

For every Conv2d/Linear layer, g the weight gradients of two batches: log Σ_w mean|g|/std(g) over the
weights whose std is not 0 (a layer where none is, or whose weight the output does not use, adds nothing),
summed over the layers. It follows SLDGroup/ZiCo ``ZeroShotProxy/compute_zico.py`` (``getgrad``,
``caculate_zico``) as run on NAS-Bench-201 by VKDNW's Table 1 (ondratybl/VKDNW
``NB201/ZeroShotProxy/compute_zico_score.py``: two batches, train mode, cross-entropy). The two batches are
the two halves of the protocol's batch, each its own forward and backward: the default batch of 128 gives
Table 1's two batches of 64; the authors' own search uses two of 128 (batch_size 256).
"""

from __future__ import annotations

import math

import torch

from archscore.estimators.zero_shot.proxies import ProxyInput, Undefined, _finite, _shared, register_proxy


def zico_of(split_grads: list[list[torch.Tensor | None]]) -> float:
    total = 0.0
    for per_batch in zip(*split_grads):
        if any(g is None for g in per_batch):
            continue
        g = torch.stack([t.reshape(-1).to(torch.float64) for t in per_batch])  # batches x weights
        std = g.std(dim=0, correction=0)
        kept = std != 0
        layer = (g.abs().mean(dim=0)[kept] / std[kept]).sum().item()
        if layer != 0:
            total += math.log(layer)
    return total


@register_proxy("zico", {"split_grads"})
def zico(inp: ProxyInput) -> float:
    split_grads = _shared(inp).own["split_grads"]
    if not split_grads:
        raise Undefined("zico needs a batch of at least 2 images (two halves)")
    return _finite(zico_of(split_grads), "zico")
