"""``tangent_kernel`` (TE-NAS's trainability): the neural tangent kernel of the logits on the batch's first
64 images, from one forward of those images and one backward per image (``cotangents``)."""

from __future__ import annotations

import torch

from archscore.estimators.zero_shot.passes.cotangents import grads_along
from archscore.estimators.zero_shot.passes.registry import PassInputs, register_pass

NTK_SAMPLES = 64  # images the kernel is taken on: VKDNW's Table 1 batch (TE-NAS's NB201 search: 72)
GRAM_COLUMNS = 1 << 20  # gradient entries multiplied at once in float64 (memory)


def weight_parameters(net: torch.nn.Module) -> list[torch.Tensor]:
    """The parameters TE-NAS differentiates: those whose name contains 'weight' (Conv2d and Linear weights,
    and the affine weights of normalisation layers), in ``named_parameters`` order."""
    return [p for name, p in net.named_parameters() if "weight" in name]


def gram(rows: torch.Tensor) -> torch.Tensor:
    """rows rowsᵀ in float64, a block of columns at a time."""
    out = torch.zeros(rows.shape[0], rows.shape[0], dtype=torch.float64, device=rows.device)
    for start in range(0, rows.shape[1], GRAM_COLUMNS):
        block = rows[:, start : start + GRAM_COLUMNS].to(torch.float64)
        out += block @ block.T
    return out


@register_pass("tangent_kernel", gradient_rows=NTK_SAMPLES)
def tangent_kernel(inp: PassInputs) -> torch.Tensor | None:
    """K[i, j] = Σ_W ⟨∂s_i/∂W, ∂s_j/∂W⟩ (B x B, float64; B = min(NTK_SAMPLES, batch)), s_i the sum of image i's
    outputs, W the ``weight_parameters`` (each requiring gradients while the pass runs). One forward of the B
    images in the network's mode (in train mode their batch statistics couple them, as in the authors' one
    forward of the batch), then one backward per image through it; a weight its output does not reach adds
    nothing. The gradients are held as float32 rows (B x parameters), their products summed in float64.
    None for fewer than 2 images or a network without such a parameter."""
    net, x = inp.net, inp.x[:NTK_SAMPLES]
    params = weight_parameters(net)
    if x.shape[0] < 2 or not params:
        return None
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(True)
        out = net(x.detach())
        size = sum(p.numel() for p in params)
        rows = torch.zeros(x.shape[0], size, dtype=out.dtype, device=out.device)
        if out.requires_grad:  # else the output depends on no weight: every row is 0
            each_image = torch.zeros(x.shape[0], *out.shape, dtype=out.dtype, device=out.device)
            each_image[torch.arange(x.shape[0]), torch.arange(x.shape[0])] = 1  # image i: the sum of out[i]
            for i, grads in enumerate(grads_along(out, params, each_image)):
                offset = 0
                for p, g in zip(params, grads):
                    if g is not None:
                        rows[i, offset : offset + p.numel()] = g.detach().reshape(-1)
                    offset += p.numel()
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
    return gram(rows)
