"""Reference implementations of TE-NAS's two measures (ntk_cond, linear_regions) and GradSign (gradsign), used
only by the tests.

Written from the papers and the authors' code (VITA-Group/TENAS ``lib/procedures/ntk.py`` ``get_ntk_n`` and
``lib/procedures/linear_region_counter.py`` ``LinearRegionCount``; cmu-catalyst/GradSign
``zero-cost-nas-code/foresight/pruners/measures/grad_conflict.py`` ``get_grad_conflict``), independently of
``archscore.estimators.zero_shot`` (nothing is imported from it): each runs on its own ``copy.deepcopy`` of the
network, in the authors' way: ``.backward()`` and ``.grad`` one sample at a time, the region count by the
authors' Hamming-distance formula (in float64 instead of float16), numpy for GradSign's signs.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

NTK_SAMPLES = 64  # VKDNW's Table 1 batch (docs/concepts/estimators.md)


def _copy(net: nn.Module, train: bool = True) -> nn.Module:
    net = copy.deepcopy(net)
    net.train(train)
    for p in net.parameters():
        p.requires_grad_(True)
        p.grad = None
    return net


def ref_ntk_kernel(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    """get_ntk_n: one forward of the batch in train mode; per sample, logit[i:i+1].backward(ones) through it,
    the .grad of every parameter whose name contains 'weight' and has one, concatenated; K = G Gᵀ (float64)."""
    net = _copy(net)
    x = x[:NTK_SAMPLES]
    logit = net(x)
    rows = []
    for i in range(len(x)):
        net.zero_grad(set_to_none=True)
        logit[i : i + 1].backward(torch.ones_like(logit[i : i + 1]), retain_graph=True)
        grad = []
        for name, w in net.named_parameters():
            if "weight" in name:
                g = w.grad if w.grad is not None else torch.zeros_like(w)  # unreached: adds nothing to K
                grad.append(g.detach().reshape(-1).double())
        rows.append(torch.cat(grad))
    g = torch.stack(rows).numpy()
    return g @ g.T


def ref_ntk_cond(net: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """-(λ_max / λ_min) of the kernel (numpy's eigvalsh, ascending), as compute_te_nas_score negates it."""
    eigenvalues = np.linalg.eigvalsh(ref_ntk_kernel(net, x))
    return float(-(eigenvalues[-1] / eigenvalues[0]))


def ref_linear_regions(net: nn.Module, noise: torch.Tensor) -> float:
    """Linear_Region_Collector / LinearRegionCount on one batch: hooks on every nn.ReLU whose input is 4-D keep
    its output; the signs concatenated per sample; res = A(1-A)ᵀ + (A(1-A)ᵀ)ᵀ (Hamming distances); 1 - sign(res)
    marks the samples sharing a pattern; Σ over samples of 1/their number (float64, the authors' float16)."""
    net = _copy(net)
    features: list[torch.Tensor] = []

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(inputs, tuple) and len(inputs[0].size()) == 4:
            features.append(output.detach())

    for m in net.modules():
        if isinstance(m, nn.ReLU):
            m.register_forward_hook(hook)
    with torch.no_grad():
        net(noise)
    a = torch.sign(torch.cat([f.reshape(noise.shape[0], -1) for f in features], 1)).double()
    res = a @ (1 - a).T
    res = res + res.T
    res = 1 - torch.sign(res)
    return float((1.0 / res.sum(1)).sum().item())


def ref_gradsign(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """get_grad_conflict: per sample, net.zero_grad(), forward of inputs[[i]] alone (train mode), cross-entropy,
    backward; every Conv2d/Linear weight's .grad (zeros where None) flattened; np.sign, summed over samples,
    abs, np.nansum."""
    net = _copy(net)
    batch_grad = []
    for i in range(x.shape[0]):
        net.zero_grad()
        loss = F.cross_entropy(net(x[[i]]), y[[i]])
        loss.backward()
        flat = []
        for layer in net.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                g = layer.weight.grad if layer.weight.grad is not None else torch.zeros_like(layer.weight)
                flat.append(g.detach().double().numpy().reshape(-1))
        batch_grad.append(np.concatenate(flat))
    direction_code = np.abs(np.sign(np.stack(batch_grad)).sum(axis=0))
    return float(np.nansum(direction_code))


REFERENCES = {
    "ntk_cond": lambda net, x, y, noise: ref_ntk_cond(net, x),
    "linear_regions": lambda net, x, y, noise: ref_linear_regions(net, noise),
    "gradsign": lambda net, x, y, noise: ref_gradsign(net, x, y),
}
