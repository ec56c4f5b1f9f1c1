"""``fisher_information`` (VKDNW): the Fisher information of one weight per parameter tensor of a copy of
the network re-initialised from the protocol's seed, on a Gaussian batch, BatchNorm on its running
statistics."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from archscore.estimators.zero_shot.passes.cotangents import grads_along
from archscore.estimators.zero_shot.passes.registry import PassInputs, register_pass

FISHER_TENSORS = 128  # parameter tensors VKDNW reads one weight of: ondratybl/VKDNW, params_grad_len
FISHER_SMOOTHING = 0.05  # alpha of the smoothed probabilities (the authors hold it in float16: _smoothing)
FISHER_CHUNK = 16  # samples whose Jacobians are computed at once (memory)


def _smoothing(classes: int) -> tuple[float, float]:
    """(1 - α, α/C) as the authors compute them: α a float16 tensor, so both are float16 results
    (0.9501953125 and, for 10 classes, 0.0050010681...), which the float32 probabilities then take."""
    alpha = torch.tensor(FISHER_SMOOTHING, dtype=torch.float16)
    return float(1 - alpha), float(alpha / classes)


def _cholesky_factor_product(probs: torch.Tensor) -> torch.Tensor:
    """Per sample LᵀL, L the lower-triangular Cholesky factor (LLᵀ = diag(p) - ppᵀ) of the categorical
    covariance in the closed form the authors use (Tanabe & Sagae 1992, Theorem 1), float64.
    The authors multiply the logits' Jacobian J by L on the left and average (LJ)ᵀ(LJ) = JᵀLᵀLJ."""
    p = probs.to(torch.float64)
    c = p.shape[1]
    q = 1.0 - torch.cumsum(p, dim=1)
    q[:, -1] = 0.0
    q_before = torch.cat([torch.ones_like(q[:, :1]), q[:, :-1]], dim=1)
    d = torch.sqrt(p * q / q_before)
    below = torch.tril(torch.ones(c, c, dtype=torch.bool, device=p.device), diagonal=-1)
    below[:, -1] = False  # column C: q_C = 0, the authors' -inf entries set to 0 (none lies below the diagonal)
    safe_q = torch.where(q == 0, torch.ones_like(q), q)
    lower = torch.where(below, -p[:, :, None] / safe_q[:, None, :], torch.zeros((), dtype=p.dtype, device=p.device))
    lower = lower + torch.eye(c, dtype=p.dtype, device=p.device)
    factor = lower * d[:, None, :]
    return factor.transpose(1, 2) @ factor


_LAYER_TYPES = (nn.Conv2d, nn.Linear)
_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _first_weight_owners(
    net: nn.Module, chosen: Sequence[tuple[str, torch.Tensor]]
) -> list[tuple[nn.Module, str]] | None:
    """For each chosen parameter, the module that owns it and its role ('weight' or 'bias'), when every one
    belongs to a plain Conv2d (zero padding), Linear or BatchNorm with running statistics, and every
    BatchNorm of the network has them (samples then do not interact in eval mode); else None."""
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and (m.running_mean is None or m.running_var is None):
            return None
    owners = []
    for name, _ in chosen:
        prefix, _, role = name.rpartition(".")
        module = net.get_submodule(prefix)
        if role not in ("weight", "bias") or type(module) not in (*_LAYER_TYPES, *_NORM_TYPES):
            return None
        if isinstance(module, nn.Conv2d) and (module.padding_mode != "zeros" or isinstance(module.padding, str)):
            return None
        owners.append((module, role))
    return owners


def _channel0(module: nn.Module, t: torch.Tensor) -> torch.Tensor:
    """Output channel 0 of a layer's output (or its gradient): the last dimension of a Linear's, the
    second of a convolution's or BatchNorm's."""
    return t[..., 0] if isinstance(module, nn.Linear) else t.select(1, 0)


def _first_weight_factor(module: nn.Module, role: str, inputs: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """What multiplies the first weight (or bias) of ``module`` in its output channel 0, per sample and
    position: d output[:, 0] / d θ (eval mode)."""
    if role == "bias":
        return torch.ones_like(_channel0(module, output))
    a = inputs.detach()
    if isinstance(module, nn.Conv2d):
        ph, pw = (int(p) for p in module.padding)  # ints: _first_weight_owners leaves out string paddings
        sh, sw = module.stride
        h, w = output.shape[2:]
        padded = F.pad(a[:, :1], (pw, pw, ph, ph))[:, 0]
        return padded[:, : sh * (h - 1) + 1 : sh, : sw * (w - 1) + 1 : sw]
    if isinstance(module, nn.Linear):
        return a[..., 0]
    mean, var = module.running_mean[0], module.running_var[0]  # type: ignore[index]
    return (a[:, 0] - mean) / torch.sqrt(var + module.eps)  # type: ignore[operator]


def _jacobians_by_hooks(
    net: nn.Module, noise: torch.Tensor, owners: list[tuple[nn.Module, str]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample Jacobians of the logits by the chosen first weights, in eval mode where samples do not
    interact: one forward, then per class one backward (``cotangents``) of the class's logit summed over the
    batch to the owning modules' outputs (no weight gradient), each owner's per-sample factor times the output
    gradient of its channel 0 summed over positions (and over the module's runs)."""
    modules = {id(m): m for m, _ in owners}
    runs: dict[int, list[tuple[torch.Tensor, dict[str, torch.Tensor]]]] = {k: [] for k in modules}
    roles: dict[int, set[str]] = {}
    columns: dict[int, list[tuple[int, str]]] = {}
    for p, (m, role) in enumerate(owners):
        roles.setdefault(id(m), set()).add(role)
        columns.setdefault(id(m), []).append((p, role))

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        factors = {r: _first_weight_factor(module, r, inputs[0], output).detach() for r in roles[id(module)]}
        runs[id(module)].append((output, factors))
        return output.clone()  # what follows (in-place ops too) reads a copy: gradients reach ``output`` intact

    handles = [m.register_forward_hook(hook) for m in modules.values()]
    try:
        with torch.enable_grad():
            logits = net(noise.detach().requires_grad_(True))
    finally:
        for h in handles:
            h.remove()
    recorded = [(k, i, out) for k, rs in runs.items() for i, (out, _) in enumerate(rs)]
    jac = torch.zeros(noise.shape[0], logits.shape[1], len(owners), dtype=torch.float64, device=noise.device)
    each_class = torch.zeros(logits.shape[1], *logits.shape, dtype=logits.dtype, device=logits.device)
    each_class[torch.arange(logits.shape[1]), :, torch.arange(logits.shape[1])] = 1  # class c: Σ logits[:, c]
    outputs = [out for _, _, out in recorded]
    for c, grads in enumerate(grads_along(logits, outputs, each_class)):
        for (k, i, _), g in zip(recorded, grads):
            if g is None:
                continue
            g0 = _channel0(modules[k], g)
            factors = runs[k][i][1]
            for p, role in columns[k]:
                term = (g0 * factors[role]).to(torch.float64)
                jac[:, c, p] += term.reshape(term.shape[0], -1).sum(1)
    return logits.detach(), jac


def _jacobians_functional(
    net: nn.Module, noise: torch.Tensor, buffers: dict[str, torch.Tensor], chosen, named
) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' way (torch.func): θ spliced into the parameters, vmap over samples of jacrev."""
    from torch.func import functional_call, jacrev, vmap

    fixed = {k: p.detach() for k, p in named}
    state = {**fixed, **buffers}
    theta = torch.stack([p.detach().reshape(-1)[0] for _, p in chosen])

    def logits(values: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        params = dict(state)
        for i, (k, p) in enumerate(chosen):
            params[k] = torch.cat([values[i : i + 1], fixed[k].reshape(-1)[1:]]).reshape(p.shape)
        return functional_call(net, params, (sample.unsqueeze(0),)).squeeze(0)

    with torch.no_grad():
        out = functional_call(net, state, (noise,))
    jac = vmap(jacrev(logits), in_dims=(None, 0), chunk_size=FISHER_CHUNK)(theta, noise)  # B x C x P
    return out, jac.detach().to(torch.float64)


def reinitialised(net: nn.Module, seed: int) -> nn.Module:
    """A copy of ``net`` initialised as VKDNW's authors do before scoring (``init_model``,
    ``kaiming_normal_fanin_init``): every Conv2d/Linear weight Kaiming normal (fan-in, ReLU gain), their biases
    0, every affine BatchNorm2d/GroupNorm weight 1 and bias 0; running statistics kept. The draws come from a
    CPU generator seeded ``seed``, module by module in order."""
    copy_ = copy.deepcopy(net)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in copy_.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                drawn = torch.empty(m.weight.shape, dtype=m.weight.dtype)
                nn.init.kaiming_normal_(drawn, mode="fan_in", nonlinearity="relu", generator=generator)
                m.weight.copy_(drawn)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.affine:
                m.weight.fill_(1.0)
                m.bias.zero_()
    return copy_


@register_pass("fisher_information", noise=True, first=True)
def fisher_information(inp: PassInputs) -> torch.Tensor | None:
    """VKDNW's matrix, on the network ``reinitialised`` from ``seed``: θ the first weight of each of the first
    FISHER_TENSORS parameter tensors (``named_parameters`` order); per Gaussian sample n, J_n the Jacobian of
    the logits by θ with the network in eval mode (BatchNorm on the running statistics the network holds now:
    run it before any pass in train mode); p̃_n = softmax·(1-α) + α/C; F = mean_n J_nᵀ L_nᵀ L_n J_n
    (``_cholesky_factor_product``), float64. J by hooks where the chosen weights belong to Conv2d, Linear and
    BatchNorm modules, else by torch.func as the authors do. None when the network has no parameter or its
    output is not (B, C)."""
    net, noise = inp.net, inp.noise
    named = [(k, p) for k, p in net.named_parameters() if p.numel() > 0]
    if not named:
        return None
    net = reinitialised(net, inp.seed)
    named = [(k, p) for k, p in net.named_parameters() if p.numel() > 0]
    chosen = named[:FISHER_TENSORS]
    net.eval()
    owners = _first_weight_owners(net, chosen)
    with torch.no_grad():
        probe = net(noise[:1])
    if probe.dim() != 2:
        return None
    if owners is not None:
        out, j = _jacobians_by_hooks(net, noise, owners)
    else:
        out, j = _jacobians_functional(net, noise, dict(net.named_buffers()), chosen, named)
    scale, shift = _smoothing(out.shape[1])
    probs = torch.softmax(out, dim=1) * scale + shift
    weights = _cholesky_factor_product(probs)  # B x C x C
    return torch.einsum("bcp,bcd,bdq->pq", j, weights, j) / j.shape[0]
