"""The zero-shot proxies, each a small function registered with what it reads from the shared pass.

Definitions: docs/concepts/estimators.md (they follow the reference implementations: zero-cost-nas, NASWOT, GraSP,
SynFlow). A proxy that cannot give a number for a network raises ``Undefined`` with the reason,
never returns a silent NaN.
"""

from __future__ import annotations

import copy
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from archscore.estimators.zero_shot.manifest import ZERO_SHOT
from archscore.estimators.zero_shot.shared_pass import PassResult, known_needs, scored_layers


class Undefined(Exception):
    """The proxy has no finite value for this network (e.g. a cell with every edge 'none')."""


@dataclass
class ProxyInput:
    net: nn.Module
    x: torch.Tensor | None
    y: torch.Tensor | None
    shared: PassResult | None


@dataclass(frozen=True)
class Proxy:
    name: str
    needs: frozenset[str]  # shared-pass quantities it reads
    compute: Callable[[ProxyInput], float]


PROXIES: dict[str, Proxy] = {}
# the modules of estimators/zero_shot/measures/
MEASURES = ("layers", "zico", "meco", "swap", "vkdnw", "az_nas", "zen", "epe_nas", "tenas", "gradsign")


def register_proxy(name: str, needs: set[str] | frozenset[str] = frozenset()):
    """Register the decorated function as the zero-shot estimator ``name``, whose facts are the catalog's: a
    built-in one's, or a plugin's (archscore.estimators.plugins), which only the module its facts name may
    register. ``needs``: the shared-pass quantities it reads (shared_pass.known_needs(); none: it reads the network
    and the batch itself)."""

    def decorate(fn: Callable[[ProxyInput], float]) -> Callable[[ProxyInput], float]:
        if name in PROXIES:
            raise ValueError(f"proxy {name!r} is already registered")
        if name not in ZERO_SHOT:
            raise ValueError(
                f"proxy {name!r} has no manifest entry: a plugin declares its facts in an entry point of the "
                "group archscore.estimators (docs/guides/own-estimator.md)"
            )
        owner = ZERO_SHOT[name].module
        if owner is None and not fn.__module__.startswith("archscore.estimators."):
            raise ValueError(f"{name!r} is a built-in estimator: {fn.__module__} cannot register it")
        if owner is not None and fn.__module__ != owner:
            raise ValueError(f"estimator {name!r} is registered by {owner} (its facts say so), not {fn.__module__}")
        if not set(needs) <= known_needs():
            raise ValueError(
                f"proxy {name!r} needs {sorted(set(needs) - known_needs())}; the shared pass gives "
                f"{sorted(known_needs())}"
            )
        PROXIES[name] = Proxy(name, frozenset(needs), fn)
        return fn

    return decorate


_T = TypeVar("_T")


def _shared(inp: ProxyInput) -> PassResult:
    """The shared pass of a proxy that reads it (the engine runs it for every proxy with needs)."""
    if inp.shared is None:
        raise ValueError("this proxy reads the shared pass, which was not run")
    return inp.shared


def _computed(value: _T | None, need: str) -> _T:
    """A shared-pass quantity the proxy registered as a need (computed whenever it is requested)."""
    if value is None:
        raise ValueError(f"the shared pass did not compute {need!r}")
    return value


def _finite(value: float, what: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise Undefined(f"{what} is {value}")
    return value


@register_proxy("grad_norm", {"weight_grads"})
def grad_norm(inp: ProxyInput) -> float:
    grads = _computed(_shared(inp).weight_grads, "weight_grads")
    return _finite(sum(g.norm().item() for g in grads), "gradient norm")


@register_proxy("snip", {"weight_grads"})
def snip(inp: ProxyInput) -> float:
    s = _shared(inp)
    grads = _computed(s.weight_grads, "weight_grads")
    return _finite(sum((w.detach() * g).abs().sum().item() for w, g in zip(s.weights, grads)), "snip")


@register_proxy("grasp", {"hessian_grad"})
def grasp(inp: ProxyInput) -> float:
    s = _shared(inp)
    hessian_grad = _computed(s.hessian_grad, "hessian_grad")
    return _finite(sum((-w.detach() * hg).sum().item() for w, hg in zip(s.weights, hessian_grad)), "grasp")


@register_proxy("fisher", {"fisher"})
def fisher(inp: ProxyInput) -> float:
    s = _shared(inp)
    total = 0.0
    for layer, term in zip(s.layers, _computed(s.fisher, "fisher")):
        fan_in = math.prod(layer.weight.shape[1:])
        total += term.abs().sum().item() * fan_in
    return _finite(total, "fisher")


@register_proxy("jacob_cov", {"input_grads"})
def jacob_cov(inp: ProxyInput) -> float:
    input_grads = _computed(_shared(inp).input_grads, "input_grads")
    jac = input_grads.reshape(input_grads.shape[0], -1).to(torch.float64).cpu().numpy()
    if jac.shape[0] < 2:
        raise Undefined("jacob_cov needs a batch of at least 2 samples")
    if np.any(jac.std(axis=1) == 0):
        raise Undefined("the output does not depend on some input (constant Jacobian): correlation undefined")
    with np.errstate(all="ignore"):
        corr = np.corrcoef(jac)
    if not np.all(np.isfinite(corr)):
        raise Undefined("correlation of the input Jacobians is not finite")
    v = np.linalg.eigvalsh(corr) + 1e-5
    if np.any(v <= 0):
        raise Undefined("correlation matrix has negative eigenvalues beyond round-off")
    return _finite(-np.sum(np.log(v) + 1.0 / v), "jacob_cov")


@register_proxy("relu_logdet", {"relu_kernel"})
def relu_logdet(inp: ProxyInput) -> float:
    kernel = _shared(inp).relu_kernel
    if kernel is None:
        raise Undefined("the network has no nn.ReLU module")
    sign, logdet = torch.linalg.slogdet(kernel)
    if sign.item() == 0 or not math.isfinite(logdet.item()):
        raise Undefined("the ReLU code kernel is singular (log det = -inf)")
    return logdet.item()


@register_proxy("relu", {"relu_count"})
def relu(inp: ProxyInput) -> float:
    return float(_computed(_shared(inp).relu_count, "relu_count"))


def _device(net: nn.Module) -> torch.device:
    return next(net.parameters(), torch.empty(0)).device


def _strip_batchnorm(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, nn.Identity())
        else:
            _strip_batchnorm(child)


@register_proxy("synflow")
def synflow(inp: ProxyInput) -> float:
    """On a float64 copy with BatchNorm removed and every parameter made non-negative, so the
    caller's network is untouched."""
    net = copy.deepcopy(inp.net)
    _strip_batchnorm(net)
    net = net.double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    shape = (1, *inp.x.shape[1:]) if inp.x is not None else (1, 3, 32, 32)
    layers = scored_layers(net)
    weights = [m.weight for m in layers]
    with torch.enable_grad():
        for w in weights:
            w.requires_grad_(True)
        r = net(torch.ones(shape, dtype=torch.float64, device=_device(net))).sum()
        if not r.requires_grad:
            raise Undefined("the output does not depend on any weight")
        grads = torch.autograd.grad(r, weights, allow_unused=True)
    total = sum((w.detach() * g).abs().sum().item() for w, g in zip(weights, grads) if g is not None)
    return _finite(total, "synflow")


@register_proxy("params")
def params(inp: ProxyInput) -> float:
    return sum(p.numel() for p in inp.net.parameters() if p.requires_grad) / 1e6


@register_proxy("flops")
def flops(inp: ProxyInput) -> float:
    from archscore.estimators.zero_shot.flops import count_flops

    shape = (1, *inp.x.shape[1:]) if inp.x is not None else (1, 3, 32, 32)
    return count_flops(inp.net, shape) / 1e6


# the proxies published since 2021, one module each: they register themselves (proxies is complete here)
for _measure in MEASURES:
    importlib.import_module(f"archscore.estimators.zero_shot.measures.{_measure}")

assert set(PROXIES) == {n for n in ZERO_SHOT if ZERO_SHOT[n].module is None}, "every built-in needs a proxy"
