"""``split_grads`` (ZiCo): the cross-entropy weight gradients of each half of the batch, each half its own
forward and backward (the authors' two batches)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from archscore.estimators.zero_shot.passes.registry import PassInputs, register_pass


@register_pass("split_grads", labels=True)
def split_gradients(inp: PassInputs) -> list[list[torch.Tensor | None]]:
    """dL/dw of the mean cross-entropy of each half of the batch (the first B//2 images, then the next
    B//2; an odd batch leaves its last image out), each half its own forward and backward; None for a
    weight the output does not depend on. Empty for a batch of fewer than 2 images."""
    net, x, y = inp.net, inp.x, inp.y
    assert y is not None  # labels=True: the shared pass checks they are given
    half = x.shape[0] // 2
    if half == 0:
        return []
    out: list[list[torch.Tensor | None]] = []
    for part in (slice(0, half), slice(half, 2 * half)):
        loss = F.cross_entropy(net(x[part]), y[part])
        grads = torch.autograd.grad(loss, list(inp.weights), allow_unused=True)
        out.append([None if g is None else g.detach() for g in grads])
    return out
