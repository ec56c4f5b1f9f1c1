"""One forward pass and the fewest backward passes that serve every requested proxy.

The reference implementations copy the network and redo the passes per proxy. Here the
intermediate quantities the proxies read are computed once per batch, and only those requested:

- ``weight_grads``   dL/dw of the cross-entropy loss for every Conv2d/Linear weight
- ``fisher``         per-channel Fisher terms, from the activations and their gradients in that same backward
- ``hessian_grad``   Hg, by differentiating g.detach() . g (GraSP); reuses the same forward
- ``input_grads``    d(sum of outputs)/d(input) per sample (jacob_cov), a second backward of the same graph
- ``relu_kernel``    NASWOT kernel of ReLU activation codes, accumulated by forward hooks
- ``relu_count``     number of nn.ReLU modules executed
- ``layer_count``    number of Conv2d/Linear modules with a trainable weight executed (forward hooks)

and the passes on inputs of their own that proxies ask for (``passes``: their registry, one module
each), each run once per batch however many proxies read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archscore.estimators.zero_shot.passes import OWN_PASSES, PassInputs

# what the batch's one forward pass (and its backward passes) gives
MAIN_NEEDS = frozenset(
    {"weight_grads", "fisher", "hessian_grad", "input_grads", "relu_kernel", "relu_count", "layer_count"}
)
NOISE_SEED = 0  # seeds the Gaussian batch of a caller that passes none


def known_needs() -> frozenset[str]:
    """What a proxy may read: the batch's pass's quantities and every registered own-input pass."""
    return MAIN_NEEDS | frozenset(OWN_PASSES)


def reads_noise(needs: set[str] | frozenset[str]) -> bool:
    """Whether one of ``needs`` reads the Gaussian batch (``noise`` of run_shared_pass)."""
    return any(OWN_PASSES[n].noise for n in needs if n in OWN_PASSES)


ScoredLayer = nn.Conv2d | nn.Linear


def scored_layers(net: nn.Module) -> list[ScoredLayer]:
    """The layers whose weights the proxies sum over: Conv2d and Linear (docs/concepts/estimators.md)."""
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@dataclass
class PassResult:
    layers: list[ScoredLayer]
    weights: list[torch.Tensor]
    weight_grads: list[torch.Tensor] | None = None
    fisher: list[torch.Tensor] | None = None  # per layer, per output channel
    hessian_grad: list[torch.Tensor] | None = None
    input_grads: torch.Tensor | None = None
    relu_kernel: torch.Tensor | None = None  # float64 (B, B)
    relu_count: int | None = None
    layer_count: int | None = None
    own: dict[str, Any] = field(default_factory=dict)  # own-input pass name -> its value (``passes``)
    extras: dict = field(default_factory=dict)


class _ReluRecorder:
    """Forward hooks on nn.ReLU modules: count executions, accumulate the NASWOT kernel."""

    def __init__(self, kernel: bool):
        self.kernel_wanted = kernel
        self.count = 0
        self.kernel: torch.Tensor | None = None

    def __call__(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        self.count += 1
        if not self.kernel_wanted:
            return
        with torch.no_grad():
            codes = (inputs[0] > 0).flatten(1).to(torch.float32)
            n = codes.shape[1]
            ones = codes.sum(1, dtype=torch.float64)
            # x x^T + (1-x)(1-x)^T = 2 x x^T - r 1^T - 1 r^T + n, with r the per-sample count of ones
            k = 2.0 * (codes @ codes.T).to(torch.float64) - ones[:, None] - ones[None, :] + n
            self.kernel = k if self.kernel is None else self.kernel + k


class _FisherRecorder:
    """Keeps each layer's output and, in the first backward only, the per-channel Fisher term."""

    def __init__(self, layers: list[ScoredLayer]):
        self.index = {id(m): i for i, m in enumerate(layers)}
        self.terms: list[torch.Tensor | None] = [None] * len(layers)
        self.armed = True

    def __call__(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if not output.requires_grad:
            return
        i = self.index[id(module)]
        act = output.detach()

        def on_grad(grad: torch.Tensor) -> None:
            if not self.armed:
                return
            g = grad.detach()
            g_nk = (act * g).sum(dim=tuple(range(2, act.dim()))) if act.dim() > 2 else act * g
            term = 0.5 * g_nk.pow(2).mean(0)
            prev = self.terms[i]
            self.terms[i] = term if prev is None else prev + term

        output.register_hook(on_grad)


class _LayerRecorder:
    """Forward hook on Conv2d/Linear modules: which of the trainable ones run."""

    def __init__(self, trainable: set[int]):
        self.trainable = trainable
        self.executed: set[int] = set()

    def __call__(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if id(module) in self.trainable:
            self.executed.add(id(module))


def run_shared_pass(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None,
    needs: set[str],
    noise: torch.Tensor | None = None,
    seed: int = 0,
) -> PassResult:
    """Run ``net`` on one batch and compute the requested intermediates (see module docstring): the
    batch's forward pass only when a quantity of it is requested, and each requested own-input pass once.
    ``noise``: the Gaussian batch of the passes that read one (None: standard Gaussian noise of the batch's
    shape drawn from a generator seeded NOISE_SEED); ``seed``: of the random draws of the passes that make
    some (``fisher_information`` re-initialises a copy of the network, as VKDNW's authors do)."""
    unknown = set(needs) - known_needs()
    if unknown:
        raise ValueError(f"unknown shared-pass needs: {sorted(unknown)}")
    own = [OWN_PASSES[n] for n in OWN_PASSES if n in needs]  # registration order
    needs_loss = bool(needs & {"weight_grads", "fisher", "hessian_grad"})
    if (needs_loss or any(p.labels for p in own)) and y is None:
        raise ValueError("labels are needed for the cross-entropy proxies")
    layers = scored_layers(net)
    weights = [m.weight for m in layers]
    result = PassResult(layers=layers, weights=weights)
    if noise is None and any(p.noise for p in own):
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(NOISE_SEED), dtype=x.dtype)
    inputs = PassInputs(net, x, y, x if noise is None else noise.to(x.device), seed, weights)
    for p in own:  # before the batch's pass, whose train mode updates the running statistics these read
        if p.first:
            result.own[p.name] = p.compute(inputs)

    handles = []
    relu = _ReluRecorder(kernel="relu_kernel" in needs)
    if needs & {"relu_kernel", "relu_count"}:
        handles += [m.register_forward_hook(relu) for m in net.modules() if isinstance(m, nn.ReLU)]
    fisher = _FisherRecorder(layers)
    if "fisher" in needs:
        handles += [m.register_forward_hook(fisher) for m in layers]
    requires_grad = [w.requires_grad for w in weights]  # restored below: frozen weights stay frozen
    counted = _LayerRecorder({id(m) for m, flag in zip(layers, requires_grad) if flag})
    if "layer_count" in needs:
        handles += [m.register_forward_hook(counted) for m in layers]
    try:
        with torch.enable_grad():
            for w in weights:
                w.requires_grad_(True)
            try:
                if needs & MAIN_NEEDS:
                    _main_pass(net, x, y, needs, weights, result, fisher)
            finally:
                for h in handles:
                    h.remove()
            for p in own:
                if not p.first:
                    result.own[p.name] = p.compute(inputs)
    finally:
        for w, flag in zip(weights, requires_grad):
            w.requires_grad_(flag)
    if "fisher" in needs:
        result.fisher = [
            torch.zeros(m.weight.shape[0], device=m.weight.device) if t is None else t
            for t, m in zip(fisher.terms, layers)
        ]
    result.relu_count = relu.count
    result.relu_kernel = relu.kernel
    if "layer_count" in needs:
        result.layer_count = len(counted.executed)
    return result


def _main_pass(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None,
    needs: set[str],
    weights: list[torch.Tensor],
    result: PassResult,
    fisher: _FisherRecorder,
) -> None:
    """The batch's one forward pass and the backward passes its quantities need (grad mode on)."""
    x = x.detach().requires_grad_("input_grads" in needs)
    out = net(x)
    needs_loss = bool(needs & {"weight_grads", "fisher", "hessian_grad"})
    grads: list[torch.Tensor] = []
    if needs_loss and y is not None:  # y is None only without needs_loss (checked by the caller)
        loss = F.cross_entropy(out, y)
        raw_grads = torch.autograd.grad(
            loss,
            weights,
            create_graph="hessian_grad" in needs,
            retain_graph=bool(needs & {"hessian_grad", "input_grads"}),
            allow_unused=True,
        )
        grads = [torch.zeros_like(w) if g is None else g for g, w in zip(raw_grads, weights)]
        result.weight_grads = [g.detach() for g in grads]
    fisher.armed = False
    if "input_grads" in needs:
        (jac,) = torch.autograd.grad(out.sum(), x, retain_graph="hessian_grad" in needs)
        result.input_grads = jac.detach()
    if "hessian_grad" in needs:
        z = sum((g.detach() * g).sum() for g in grads if g.requires_grad)
        if isinstance(z, torch.Tensor) and z.requires_grad:
            hg = torch.autograd.grad(z, weights, allow_unused=True)
            result.hessian_grad = [torch.zeros_like(w) if h is None else h.detach() for h, w in zip(hg, weights)]
        else:
            result.hessian_grad = [torch.zeros_like(w) for w in weights]
