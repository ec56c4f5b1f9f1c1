"""``cell_features`` (AZ-NAS): per-cell expressivity and per-cell trainability terms, from one forward pass of
a re-initialised copy of the network in train mode on the first 64 images of the Gaussian batch, and one
backward per cell.

The cells are those the network's space declares (``SearchSpace.cell_outputs``): ``build_network`` tags each
cell-output module (``CELL_OUTPUT_TAG``, its position in execution order), so the pass needs only the network.
A network from outside any space has no tags, and the pass gives a reason instead of values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from archscore.estimators.spaces.base import CELL_OUTPUT_TAG
from archscore.estimators.zero_shot.passes.fisher_information import reinitialised
from archscore.estimators.zero_shot.passes.registry import PassInputs, register_pass

AZ_BATCH = 64  # Gaussian images the authors score on (NB201: the search loader's batch_size)
AZ_EPSILON = 1e-8  # in the entropy's log(p + ε)
AZ_SVD_EPSILON = 1e-6  # in 1/(σ_max + ε) of the trainability term


@dataclass(frozen=True)
class CellFeatures:
    """``entropies``: per feature (stem, then each cell) the entropy of its channel covariance's normalised
    eigenvalues; ``trainability``: per cell from the last to the first, -σ - 1/(σ + 1e-6) + 2 (-inf where the
    cell passes its input's gradient unchanged); ``reason``: why there are none (trainability alone is missing
    where the entropies were computed)."""

    entropies: list[float] = field(default_factory=list)
    trainability: list[float] = field(default_factory=list)
    reason: str | None = None


def tagged_cell_outputs(net: nn.Module) -> list[nn.Module]:
    """The modules the network's space tagged as cell outputs, in execution order (none: not a space's)."""
    tagged = [(getattr(m, CELL_OUTPUT_TAG), m) for m in net.modules() if hasattr(m, CELL_OUTPUT_TAG)]
    return [m for _, m in sorted(tagged, key=lambda t: t[0])]


def feature_entropy(feature: torch.Tensor) -> float:
    """AZ-NAS's expressivity of one feature map (B, C, H, W): the B·H·W positions as samples of C channels,
    their covariance's eigenvalues s normalised to p = s / Σs, and -Σ p log(p + 1e-8). In float64, the
    eigenvalues' round-off below 0 set to 0 (the authors: float32, where the rank-deficient covariance of a
    stem wider than its 27 input taps, DARTS's, gets eigenvalues below -1e-8 and the score is NaN)."""
    b, c, h, w = feature.shape
    rows = feature.detach().to(torch.float64).permute(0, 2, 3, 1).reshape(b * h * w, c)
    rows = rows - rows.mean(dim=0, keepdim=True)
    sigma = rows.T @ rows / rows.shape[0]
    s = torch.linalg.eigvalsh(sigma).clamp(min=0)
    p = s / s.sum()
    return (-p * torch.log(p + AZ_EPSILON)).sum().item()


def cell_trainability(f_in: torch.Tensor, f_out: torch.Tensor, generator: torch.Generator) -> float:
    """AZ-NAS's trainability term of the cell mapping ``f_in`` to ``f_out``: a Rademacher (±1) cotangent on
    ``f_out`` drawn from ``generator`` (on the CPU), pulled back to ``f_in``; where the spatial size shrinks by
    s, the input gradient pixel-unshuffled by s; M = G_inᵀ G_out / (B·H·W) over positions, σ its largest
    singular value, and -σ - 1/(σ + 1e-6) + 2. -inf where the gradient comes back unchanged (an identity
    cell); a zero gradient where ``f_out`` does not depend on ``f_in``."""
    g_out = (torch.bernoulli(torch.full(f_out.shape, 0.5), generator=generator) - 0.5) * 2
    g_out = g_out.to(dtype=f_out.dtype, device=f_out.device)
    g_in = None
    if f_out.requires_grad:
        (g_in,) = torch.autograd.grad(f_out, f_in, grad_outputs=g_out, retain_graph=True, allow_unused=True)
    if g_in is None:
        g_in = torch.zeros_like(f_in)
    if g_in.shape == g_out.shape and bool(torch.equal(g_in, g_out)):
        return float("-inf")
    (hi, wi), (ho, wo) = g_in.shape[2:], g_out.shape[2:]
    if (hi, wi) != (ho, wo):
        stride = hi // ho
        if stride < 1 or hi != stride * ho or wi != stride * wo:
            raise ValueError(f"a cell maps {hi}x{wi} to {ho}x{wo}, not a reduction by a whole stride")
        g_in = F.pixel_unshuffle(g_in, stride)
    rows_in = g_in.permute(0, 2, 3, 1).reshape(-1, g_in.shape[1])
    rows_out = g_out.permute(0, 2, 3, 1).reshape(-1, g_out.shape[1])
    m = rows_in.T @ rows_out / rows_out.shape[0]
    sigma = torch.linalg.svdvals(m).max().item()
    return -sigma - 1 / (sigma + AZ_SVD_EPSILON) + 2


@register_pass("cell_features", noise=True)
def cell_features(inp: PassInputs) -> CellFeatures:
    """On a copy of the network ``reinitialised`` from ``seed`` (Kaiming normal fan-in, as the authors do), in
    train mode, every parameter requiring gradients: one forward of the first AZ_BATCH Gaussian images, the
    tagged modules' outputs recorded by forward hooks (each hook passes a clone on, so in-place operations
    after a cell leave its recorded output and its graph intact); ``feature_entropy`` of each, then
    ``cell_trainability`` of each cell from the last to the first, the cotangents drawn from a CPU generator
    seeded ``seed``."""
    if not tagged_cell_outputs(inp.net):
        return CellFeatures(
            reason="the network declares no cell outputs (a space's networks do; AZ-NAS reads the stem's and "
            "each cell's output)"
        )
    net = reinitialised(inp.net, inp.seed)
    net.train()
    for p in net.parameters():
        p.requires_grad_(True)
    modules = tagged_cell_outputs(net)
    position = {id(m): i for i, m in enumerate(modules)}
    recorded: list[list[torch.Tensor]] = [[] for _ in modules]

    def hook(module: nn.Module, inputs: tuple, output: object) -> object:
        if isinstance(output, torch.Tensor):
            recorded[position[id(module)]].append(output)
            return output.clone()
        recorded[position[id(module)]].append(torch.empty(0))  # not a tensor: refused below
        return output

    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        with torch.enable_grad():
            net(inp.noise[:AZ_BATCH].detach())
    finally:
        for h in handles:
            h.remove()
    if any(len(r) != 1 for r in recorded):
        return CellFeatures(reason="a declared cell output did not run exactly once in the forward pass")
    features = [r[0] for r in recorded]
    if any(f.dim() != 4 for f in features):
        return CellFeatures(reason="a declared cell output is not an (N, C, H, W) feature map")
    entropies = [feature_entropy(f) for f in features]
    generator = torch.Generator().manual_seed(inp.seed)
    try:
        with torch.enable_grad():
            trainability = [
                cell_trainability(features[i - 1], features[i], generator) for i in reversed(range(1, len(features)))
            ]
    except ValueError as exc:
        return CellFeatures(entropies, reason=str(exc))
    return CellFeatures(entropies, trainability)
