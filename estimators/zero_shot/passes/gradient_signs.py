"""``gradient_signs`` (GradSign): per Conv2d/Linear weight, the sum over the batch's images of the sign of its
cross-entropy gradient, each image run alone."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from archscore.estimators.zero_shot.passes.registry import PassInputs, register_pass

SIGN_CHUNK = 16  # images whose gradients are computed at once (memory: this many copies of the weights)
ONE_VALUE_PER_CHANNEL = "Expected more than 1 value per channel"  # a BatchNorm in train mode, one image alone


@dataclass(frozen=True)
class GradientSigns:
    """``sums``: per Conv2d/Linear layer (``shared_pass.scored_layers`` order), Σ over images of
    sign(∂L_i/∂W), L_i the cross-entropy of image i run alone; ``reason``: why there are none."""

    sums: list[torch.Tensor] | None = None
    reason: str | None = None


def _without_running_statistics(net: nn.Module) -> nn.Module:
    """A copy of ``net`` whose BatchNorm modules in train mode keep no running statistics: the same outputs
    (train mode normalises by the batch's statistics), and nothing updated in place under vmap."""
    net = copy.deepcopy(net)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training:
            m.running_mean = None
            m.running_var = None
            m.num_batches_tracked = None
            m.track_running_stats = False
    return net


def signs_by_vmap(net: nn.Module, x: torch.Tensor, y: torch.Tensor, weights: list[torch.Tensor]) -> list[torch.Tensor]:
    """Σ_i sign(∂L_i/∂W) by torch.func: vmap over the images of the gradient of one image's loss, the image
    as a batch of 1, SIGN_CHUNK images at a time, on a copy whose train-mode BatchNorm keeps no statistics."""
    from torch.func import functional_call, grad, vmap

    index = {id(w): i for i, w in enumerate(weights)}
    copied = _without_running_statistics(net)
    named = dict(copied.named_parameters())
    original = dict(net.named_parameters())
    names = {id(original[k]): k for k in original}
    weight_names = [names[id(w)] for w in weights]  # a weight shared by two layers appears twice
    fixed = {k: p.detach() for k, p in named.items()}
    buffers = dict(copied.named_buffers())

    def loss(values: dict[str, torch.Tensor], image: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        out = functional_call(copied, ({**fixed, **values}, buffers), (image.unsqueeze(0),))
        return F.cross_entropy(out, label.unsqueeze(0))

    values = {k: fixed[k] for k in dict.fromkeys(weight_names)}
    sums = [torch.zeros_like(w) for w in weights]
    for start in range(0, x.shape[0], SIGN_CHUNK):
        part = slice(start, start + SIGN_CHUNK)
        grads = vmap(grad(loss), in_dims=(None, 0, 0))(values, x[part], y[part])
        for w, name in zip(weights, weight_names):
            sums[index[id(w)]] += grads[name].sign().sum(0).to(w.dtype)
    return sums


def signs_by_loop(net: nn.Module, x: torch.Tensor, y: torch.Tensor, weights: list[torch.Tensor]) -> list[torch.Tensor]:
    """The same as the authors compute it: per image, one forward of it alone and one backward (a weight its
    loss does not reach: gradient 0)."""
    sums = [torch.zeros_like(w) for w in weights]
    for i in range(x.shape[0]):
        loss = F.cross_entropy(net(x[i : i + 1]), y[i : i + 1])
        grads = torch.autograd.grad(loss, weights, allow_unused=True) if loss.requires_grad else [None] * len(weights)
        for total, g in zip(sums, grads):
            if g is not None:
                total += g.detach().sign()
    return sums


@register_pass("gradient_signs", labels=True)
def gradient_signs(inp: PassInputs) -> GradientSigns:
    """GradSign's sign sums over every image of the batch, each run alone in the network's mode (in train mode
    BatchNorm normalises by the image's own statistics): by ``signs_by_vmap``, or, where torch.func cannot run
    the network (random or data-dependent operations), ``signs_by_loop``. A reason instead for fewer than 2
    images, no Conv2d/Linear weight, or a BatchNorm in train mode that sees one value per channel."""
    net, x, y = inp.net, inp.x.detach(), inp.y
    assert y is not None  # labels=True: the shared pass checks they are given
    if x.shape[0] < 2:
        return GradientSigns(reason="gradsign needs a batch of at least 2 images")
    if not inp.weights:
        return GradientSigns(reason="the network has no Conv2d/Linear weight")
    try:
        try:
            return GradientSigns(signs_by_vmap(net, x, y, list(inp.weights)))
        except RuntimeError:
            return GradientSigns(signs_by_loop(net, x, y, list(inp.weights)))
    except ValueError as exc:
        if ONE_VALUE_PER_CHANNEL not in str(exc):
            raise
        return GradientSigns(reason="a BatchNorm in train mode sees one value per channel with one image alone")
