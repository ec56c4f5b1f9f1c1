"""Reference implementations of zen (Zen-NAS) and epe_nas (EPE-NAS), used only by the tests.

Written from the papers and the authors' code (idstcv/ZenNAS and ondratybl/VKDNW
``ZeroShotProxy/compute_zen_score.py``; VascoLopes/EPE-NAS ``search.py``), independently of
``archscore.estimators.zero_shot`` (nothing is imported from it): each runs on its own ``copy.deepcopy`` of
the network and redoes its own passes in the authors' way: the feature map before global pooling from a
``forward_pre_GAP`` the caller gives (as the authors' networks define one) or a forward hook on the network's
``nn.AdaptiveAvgPool2d`` modules; the input Jacobians by ``backward(ones)`` and ``x.grad``; numpy's
``vstack`` and ``corrcoef``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

ZEN_MIXUP_GAMMA = 1e-2
EPE_K = 1e-5

PreGap = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def _network_weight_gaussian_init(net: nn.Module, generator: torch.Generator) -> None:
    """ZenNAS's network_weight_gaussian_init, its draws from ``generator``; and the running statistics of a
    freshly built network (mean 0, variance 1)."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, generator=generator)
                if hasattr(m, "bias") and m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                if m.affine:
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, generator=generator)
                if hasattr(m, "bias") and m.bias is not None:
                    nn.init.zeros_(m.bias)
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) and m.track_running_stats:
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
                m.num_batches_tracked.zero_()


def pre_gap_by_hook(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input of the last nn.AdaptiveAvgPool2d module the forward runs."""
    seen: list[torch.Tensor] = []
    handles = [
        m.register_forward_hook(lambda m, i, o: seen.append(i[0].clone()))
        for m in net.modules()
        if isinstance(m, nn.AdaptiveAvgPool2d)
    ]
    try:
        net(x)
    finally:
        for h in handles:
            h.remove()
    assert seen, "no nn.AdaptiveAvgPool2d ran"
    return seen[-1]


def ref_zen(net: nn.Module, noise: torch.Tensor, seed: int = 0, pre_gap: PreGap = pre_gap_by_hook) -> float:
    """compute_nas_score of ZenNAS as VKDNW re-runs it (one repeat, train mode): Gaussian init, the input the
    given Gaussian batch, input2 drawn after the weights from the same generator, mixup_input = input +
    gamma * input2; log of the batch mean of the per-sample sum of |output - mixup_output|, plus the sum over
    BatchNorm2d modules of log(sqrt(mean(running_var)))."""
    model = copy.deepcopy(net)
    model.train()
    generator = torch.Generator().manual_seed(seed)
    _network_weight_gaussian_init(model, generator)
    with torch.no_grad():
        input2 = torch.randn(noise.shape, generator=generator, dtype=noise.dtype)
        mixup_input = noise + ZEN_MIXUP_GAMMA * input2
        output = pre_gap(model, noise)
        mixup_output = pre_gap(model, mixup_input)
        nas_score = torch.mean(torch.sum(torch.abs(output - mixup_output), dim=[1, 2, 3]))
        log_bn_scaling_factor = 0.0
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                log_bn_scaling_factor += float(torch.log(torch.sqrt(torch.mean(m.running_var))))
        return float(torch.log(nas_score)) + log_bn_scaling_factor


def ref_epe_jacobians(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    """get_batch_jacobian of EPE-NAS (train mode): backward of ones through the outputs, x.grad per image."""
    model = copy.deepcopy(net)
    model.train()
    model.zero_grad()
    x = x.clone().requires_grad_(True)
    y = model(x)
    y.backward(torch.ones_like(y))
    assert x.grad is not None
    return x.grad.detach().reshape(x.shape[0], -1).numpy()


def eval_score_perclass(jacob: np.ndarray, labels: list[np.ndarray], n_classes: int = 10) -> float:
    """EPE-NAS's eval_score_perclass as written (labels a list of per-iteration label arrays; the authors'
    search leaves n_classes at 10). NaN when a correlation is."""
    k = EPE_K
    per_class: dict = {}
    for i, label in enumerate(labels[0]):
        if label in per_class:
            per_class[label] = np.vstack((per_class[label], jacob[i]))
        else:
            per_class[label] = jacob[i]
    scores = {}
    for c in per_class:
        with np.errstate(all="ignore"):
            corrs = np.corrcoef(per_class[c])
            s = np.sum(np.log(abs(corrs) + k))
        if n_classes > 100:
            s /= len(corrs)
        scores[c] = s
    score = 0.0
    if n_classes <= 100:
        for c in scores:
            score += np.absolute(scores[c])
    else:
        for c in scores:
            for cj in scores:
                score += np.absolute(scores[c] - scores[cj])
        score /= len(scores)
    return float(score)


def ref_epe_nas(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    jacobs = ref_epe_jacobians(net, x)
    return eval_score_perclass(jacobs, [y.numpy()])
