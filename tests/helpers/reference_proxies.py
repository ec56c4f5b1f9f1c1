"""Straightforward per-proxy reference implementations, used only by the tests.

Written independently of ``archscore.estimators.zero_shot`` (nothing is imported from it), following
the definitions of docs/concepts/estimators.md and the SamsungLabs zero-cost-nas ("foresight") / NASWOT reference code: every proxy
runs on its own ``copy.deepcopy`` of the network, in train mode, and redoes its own passes.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "REFERENCES",
    "ref_fisher",
    "ref_grad_norm",
    "ref_grasp",
    "ref_jacob_cov",
    "ref_params",
    "ref_relu",
    "ref_relu_logdet",
    "ref_snip",
    "ref_synflow",
    "reference_scores",
]


def _fresh(net: nn.Module, train: bool = True) -> nn.Module:
    """A private copy in train mode (BN with batch statistics), every parameter trainable,
    no stale gradients."""
    net = copy.deepcopy(net)
    net.train(train)
    for p in net.parameters():
        p.requires_grad_(True)
        p.grad = None
    return net


def _layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _ce_backward(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    net.zero_grad()
    loss = F.cross_entropy(net(x), y)
    loss.backward()


def ref_grad_norm(net: nn.Module, x: torch.Tensor, y: torch.Tensor, train: bool = True) -> float:
    net = _fresh(net, train)
    _ce_backward(net, x, y)
    total = 0.0
    for m in _layers(net):
        if m.weight.grad is not None:
            total += float(torch.linalg.vector_norm(m.weight.grad.flatten(), 2))
    return total


def ref_snip(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net = _fresh(net)
    _ce_backward(net, x, y)
    total = 0.0
    for m in _layers(net):
        if m.weight.grad is not None:
            total += float((m.weight.data * m.weight.grad).abs().sum())
    return total


def ref_grasp(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """foresight's compute_grasp_per_weight (T=1, one split): g without graph, then a second
    forward whose gradient keeps its graph; z = sum(g . grad); z.backward(); -w * w.grad."""
    net = _fresh(net)
    layers = _layers(net)
    weights = [m.weight for m in layers]
    net.zero_grad()
    loss = F.cross_entropy(net(x), y)
    g_first = torch.autograd.grad(loss, weights, allow_unused=True)
    loss = F.cross_entropy(net(x), y)
    g_graph = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
    z = 0
    for a, b in zip(g_first, g_graph):
        if a is not None and b is not None:
            z = z + (a.detach() * b).sum()
    net.zero_grad()
    if isinstance(z, torch.Tensor) and z.requires_grad:
        z.backward()
    total = 0.0
    for w in weights:
        if w.grad is not None:
            total += float((-w.data * w.grad).sum())
    return total


def ref_fisher(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Per Conv2d/Linear output channel 0.5 * mean over batch of (sum over spatial of act*dact)^2,
    act the layer output and dact its gradient; times fan-in prod(weight.shape[1:]); summed."""
    net = _fresh(net)
    layers = _layers(net)
    acts: dict[int, torch.Tensor] = {}
    dacts: dict[int, torch.Tensor] = {}

    def make_hook(i):
        def fwd(module, inputs, output):
            acts[i] = output.detach().clone()

            def bwd(grad):
                dacts[i] = grad.detach().clone()

            output.register_hook(bwd)

        return fwd

    handles = [m.register_forward_hook(make_hook(i)) for i, m in enumerate(layers)]
    try:
        _ce_backward(net, x, y)
    finally:
        for h in handles:
            h.remove()
    total = 0.0
    for i, m in enumerate(layers):
        if i not in dacts:
            continue
        prod = acts[i] * dacts[i]
        if prod.dim() == 4:
            g_nk = prod.sum(dim=(2, 3))
        else:
            g_nk = prod
        per_channel = 0.5 * g_nk.pow(2).mean(dim=0)
        fan_in = math.prod(m.weight.shape[1:])
        total += float(per_channel.sum()) * fan_in
    return total


def ref_jacob_cov(net: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    net = _fresh(net)
    x = x.clone().requires_grad_(True)
    out = net(x)
    out.backward(torch.ones_like(out))
    jac = x.grad.detach().reshape(x.shape[0], -1).numpy()
    corr = np.corrcoef(jac)
    v, _ = np.linalg.eig(corr)
    v = np.real(v)
    k = 1e-5
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


def ref_synflow(net: nn.Module, x: torch.Tensor | None = None) -> float:
    net = _fresh(net)

    def strip(module):
        for name, child in module.named_children():
            if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
                setattr(module, name, nn.Identity())
            else:
                strip(child)

    strip(net)
    net = net.double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(p.abs())
    shape = [1, *x.shape[1:]] if x is not None else [1, 3, 32, 32]
    out = net(torch.ones(shape, dtype=torch.float64))
    net.zero_grad()
    torch.sum(out).backward()
    total = 0.0
    for m in _layers(net):
        if m.weight.grad is not None:
            total += float((m.weight.detach() * m.weight.grad).abs().sum())
    return total


def ref_relu_logdet(net: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """NASWOT: hooks on nn.ReLU, codes of each ReLU's input, K = sum x x^T + (1-x)(1-x)^T."""
    net = _fresh(net)
    n = x.shape[0]
    state = {"K": np.zeros((n, n), dtype=np.float64)}

    def hook(module, inputs, output):
        codes = (inputs[0].detach().reshape(n, -1) > 0).double()
        state["K"] = state["K"] + (codes @ codes.T).numpy() + ((1.0 - codes) @ (1.0 - codes).T).numpy()

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    sign, logdet = np.linalg.slogdet(state["K"])
    return float(logdet)


def ref_relu(net: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    net = _fresh(net)
    calls = [0]

    def hook(module, inputs, output):
        calls[0] += 1

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return float(calls[0])


def ref_params(net: nn.Module) -> float:
    return sum(p.numel() for p in net.parameters() if p.requires_grad) / 1e6


REFERENCES = {
    "grad_norm": lambda net, x, y: ref_grad_norm(net, x, y),
    "snip": lambda net, x, y: ref_snip(net, x, y),
    "grasp": lambda net, x, y: ref_grasp(net, x, y),
    "fisher": lambda net, x, y: ref_fisher(net, x, y),
    "jacob_cov": lambda net, x, y: ref_jacob_cov(net, x, y),
    "synflow": lambda net, x, y: ref_synflow(net, x),
    "relu_logdet": lambda net, x, y: ref_relu_logdet(net, x, y),
    "relu": lambda net, x, y: ref_relu(net, x, y),
    "params": lambda net, x, y: ref_params(net),
}


def reference_scores(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Every reference proxy, each on its own deepcopy of ``net``."""
    return {name: fn(net, x, y) for name, fn in REFERENCES.items()}
