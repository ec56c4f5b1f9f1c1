"""Reference implementations of the proxies published since 2021 (layers, zico, meco, swap, swap_reg,
vkdnw), used only by the tests.

Written from the papers and the authors' code (docs/concepts/estimators.md names each repository and file),
independently of ``archscore.estimators.zero_shot`` (nothing is imported from it): every proxy runs on its
own ``copy.deepcopy`` of the network and redoes its own passes, in the authors' way where it is simple
(``.backward()`` and ``.grad``, numpy statistics, one sample at a time for VKDNW's Jacobian, loops for
the Cholesky factor).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from torch import nn

SWAP_SAMPLES = 16
SWAP_MU = 1.5  # millions of parameters (docs/concepts/estimators.md)
SWAP_SIGMA = 1.5
VKDNW_TENSORS = 128
VKDNW_ALPHA = 0.05


def _copy(net: nn.Module, train: bool = True) -> nn.Module:
    net = copy.deepcopy(net)
    net.train(train)
    for p in net.parameters():
        p.grad = None
    return net


def ref_layers(net: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """Conv2d/Linear modules with a trainable weight whose forward runs."""
    net = _copy(net)
    ran: set[str] = set()
    handles = [
        m.register_forward_hook(lambda m, i, o, name=name: ran.add(name))
        for name, m in net.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.requires_grad
    ]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return float(len(ran))


def ref_zico(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """ZiCo's getgrad / caculate_zico on the two halves of the batch, each a forward and a backward."""
    net = _copy(net)
    for p in net.parameters():
        p.requires_grad_(True)
    half = x.shape[0] // 2
    grad_dict: dict[str, list[np.ndarray]] = {}
    for part in (slice(0, half), slice(half, 2 * half)):
        net.zero_grad(set_to_none=True)
        loss = nn.CrossEntropyLoss()(net(x[part]), y[part])
        loss.backward()
        for name, mod in net.named_modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)) and mod.weight.grad is not None:
                grad_dict.setdefault(name, []).append(mod.weight.grad.detach().reshape(-1).double().numpy().copy())
    total = 0.0
    for grads in grad_dict.values():
        arr = np.array(grads)
        std = np.std(arr, axis=0)
        nonzero = np.nonzero(std)[0]
        tmpsum = np.sum(np.mean(np.abs(arr), axis=0)[nonzero] / std[nonzero])
        if tmpsum != 0:
            total += np.log(tmpsum)
    return float(total)


def ref_meco(net: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """MeCo's get_score: hooks on every module, data_output[0] as channels x positions, np.corrcoef with
    nan/inf set to 0, the smallest real part of np.linalg.eig; on the first image alone."""
    net = _copy(net)
    results: list[float] = []

    def hook(module, data_input, data_output):
        if not isinstance(data_output, torch.Tensor) or data_output.dim() < 2:
            return
        fea = data_output[0].detach().double().numpy()
        fea = fea.reshape(fea.shape[0], -1)
        if fea.shape[0] < 2:
            return
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # one position: no degrees of freedom
            corr = np.corrcoef(fea)
        corr[~np.isfinite(corr)] = 0
        results.append(float(np.min(np.real(np.linalg.eig(corr)[0]))))

    handles = [m.register_forward_hook(hook) for _, m in net.named_modules()]
    try:
        with torch.no_grad():
            net(x[:1])
    finally:
        for h in handles:
            h.remove()
    values = np.array(results)
    return float(np.sum(values[np.isfinite(values)]))


def ref_swap(net: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float | None:
    """SWAP: outputs of the nn.ReLU modules with a 4-D input over the first 16 images, concatenated per
    sample, signs, transposed to neurons x samples, distinct rows (np.unique)."""
    net = _copy(net)
    xs = x[:SWAP_SAMPLES]
    features: list[torch.Tensor] = []

    def hook(module, inputs, output):
        if isinstance(inputs, tuple) and len(inputs[0].size()) == 4:
            features.append(output.detach().clone())

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            net(xs)
    finally:
        for h in handles:
            h.remove()
    if not features:
        return None
    activations = torch.cat([f.reshape(xs.shape[0], -1) for f in features], 1).numpy()
    return float(np.unique(np.sign(activations).T, axis=0).shape[0])


def ref_swap_reg(net: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float | None:
    swap = ref_swap(net, x, y)
    if swap is None:
        return None
    thousands = np.sum([np.prod(v.size()) for name, v in net.named_parameters() if "auxiliary" not in name]) / 1e3
    millions = thousands / 1e3
    return float(swap * np.exp(-((millions - SWAP_MU) ** 2) / SWAP_SIGMA))


def _authors_cholesky(p: np.ndarray) -> np.ndarray:
    """cholesky_covariance of VKDNW for one sample, with loops: q_j = 1 - sum_{k<=j} p_k (q_C = 0),
    d_j = sqrt(p_j q_j / q_{j-1}) (q_0 = 1), L_jj = d_j, L_ij = -p_i / q_j * d_j below the diagonal."""
    c = len(p)
    q = 1.0 - np.cumsum(p)
    q[-1] = 0.0
    q_prev = np.concatenate([[1.0], q[:-1]])
    d = np.sqrt(p * q / q_prev)
    lower = np.zeros((c, c))
    for i in range(c):
        for j in range(i + 1):
            lower[i, j] = d[j] if i == j else -p[i] / q[j] * d[j]
    return lower


def _kaiming_normal_fanin_init(generator: torch.Generator):
    """VKDNW's init_model(method='kaiming_norm_fanin'), its draws from ``generator``."""

    def init(m: nn.Module) -> None:
        if isinstance(m, nn.Conv2d) or isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=generator)
            if hasattr(m, "bias") and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            if m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    return init


def ref_vkdnw_fisher(net: nn.Module, noise: torch.Tensor, seed: int = 0) -> np.ndarray:
    """VKDNW's compute_nas_score up to get_fisher(use_logits=False): the network re-initialised (init_model,
    model.apply); eval mode; per Gaussian sample alone, the Jacobian of the logits by the first weight of
    each of the first 128 parameter tensors (one backward per class); probabilities smoothed with alpha held
    in float16; F = mean (L J)^T (L J)."""
    net = _copy(net, train=False)
    with torch.no_grad():
        net.apply(_kaiming_normal_fanin_init(torch.Generator().manual_seed(seed)))
    chosen = [p for _, p in net.named_parameters() if p.numel() > 0][:VKDNW_TENSORS]
    for p in net.parameters():
        p.requires_grad_(True)
    alpha = np.float16(VKDNW_ALPHA)
    total = None
    for n in range(noise.shape[0]):
        logits = net(noise[n : n + 1])[0]
        classes = logits.shape[0]
        jac = np.zeros((classes, len(chosen)))
        for c in range(classes):
            grads = torch.autograd.grad(logits[c], chosen, retain_graph=True, allow_unused=True)
            jac[c] = [0.0 if g is None else g.reshape(-1)[0].item() for g in grads]
        z = logits.detach().double().numpy()
        soft = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        probs = soft * float(np.float16(1) - alpha) + float(alpha / np.float16(classes))
        lj = _authors_cholesky(probs) @ jac
        total = lj.T @ lj if total is None else total + lj.T @ lj
    return total / noise.shape[0]


def ref_vkdnw(net: nn.Module, noise: torch.Tensor, seed: int = 0) -> float:
    fisher = ref_vkdnw_fisher(net, noise, seed)
    lambdas = np.linalg.svd(fisher, compute_uv=False)
    deciles = np.quantile(lambdas, np.arange(1, 10) / 10)
    t = deciles / (np.sum(np.abs(deciles)) + 1e-10)
    return float(-np.sum(t * np.log(t + 1e-10)))


def ref_vkdnw_single(net: nn.Module, noise: torch.Tensor, seed: int = 0) -> tuple[int, float]:
    """VKDNW_single as the authors rank it: the pair (number of parameter tensors, vkdnw)."""
    return len(list(net.named_parameters())), ref_vkdnw(net, noise, seed)


REFERENCES = {
    "layers": lambda net, x, y, noise: ref_layers(net, x, y),
    "zico": lambda net, x, y, noise: ref_zico(net, x, y),
    "meco": lambda net, x, y, noise: ref_meco(net, x, y),
    "swap": lambda net, x, y, noise: ref_swap(net, x, y),
    "swap_reg": lambda net, x, y, noise: ref_swap_reg(net, x, y),
    "vkdnw": lambda net, x, y, noise: ref_vkdnw(net, noise),
}
