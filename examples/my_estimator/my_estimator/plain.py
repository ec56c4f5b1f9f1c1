"""The ``plain`` zero-cost proxy as a plugin estimator: Σ w ⊙ ∂L/∂w over the weights of the Conv2d and
Linear layers, L the cross-entropy loss of one batch, signed. It is the derivative of the loss when every
weight is scaled by the same factor; unlike snip (Σ |w ⊙ ∂L/∂w|) it keeps the sign.

Source: Abdelfattah et al., *Zero-Cost Proxies for Lightweight NAS*, ICLR 2021, whose code
(SamsungLabs/zero-cost-nas, ``foresight/pruners/measures/plain.py``) sums ``weight.grad * weight`` over
the same layers after one backward pass. An example of the plugin mechanism, not a recommendation:
measure how it ranks with ``archscore evaluate -e my_plain`` before trusting it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from archscore.estimators.zero_shot.proxies import ProxyInput, Undefined, register_proxy


@register_proxy("my_plain")
def my_plain(inp: ProxyInput) -> float:
    """The network is left as it was: the gradients come from ``torch.autograd.grad`` (no ``.grad`` is
    written) and a weight's ``requires_grad`` is restored."""
    if inp.x is None or inp.y is None:
        raise ValueError("my_plain reads a data batch (its facts say needs_data)")
    weights = [m.weight for m in inp.net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    frozen = [not w.requires_grad for w in weights]
    try:
        with torch.enable_grad():
            for w in weights:
                w.requires_grad_(True)
            loss = F.cross_entropy(inp.net(inp.x), inp.y)
            grads = torch.autograd.grad(loss, weights, allow_unused=True)
    finally:
        for w, was_frozen in zip(weights, frozen):
            w.requires_grad_(not was_frozen)
    total = math.fsum((w.detach() * g).sum().item() for w, g in zip(weights, grads) if g is not None)
    if not math.isfinite(total):
        raise Undefined(f"plain is {total}")
    return total
