"""Reference implementation of AZ-NAS's expressivity, progressivity and trainability, used only by the tests.

Written from the paper (Lee & Ham, CVPR 2024) and the authors' code, cvlab-yonsei/AZ-NAS
``NB201/ZeroShotProxy/compute_az_nas_score.py`` (``compute_nas_score``) with the cells of
``NB201/custom/tss_model.py`` (``extract_cell_features``), independently of ``archscore.estimators.zero_shot``
(nothing is imported from it): the network's own copy is re-initialised with ``model.apply``, its features are
taken by re-running its forward cell by cell from the network's attributes (not from the spaces' declarations),
and the scores are computed as the authors do (``retain_grad``, ``torch.autograd.grad`` without keeping the
graph, numpy aggregation).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from helpers.reference_modern_proxies import _kaiming_normal_fanin_init  # the authors' init_model, as VKDNW's

AZ_BATCH = 64


def extract_cell_features(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The stem's and each cell's output, the network's forward re-run by hand as the authors'
    ``extract_cell_features`` does for NB201, per network class of the spaces."""
    features: list[torch.Tensor] = []

    def keep(t: torch.Tensor) -> torch.Tensor:
        if t.requires_grad:
            t.retain_grad()
        features.append(t)
        return t

    kind = type(net).__name__
    if kind == "NB201Network":
        f = keep(net.stem(x))
        for cell in net.cells:
            f = keep(cell(f))
    elif kind == "NB101Network":
        f = keep(net.features[0](x))
        for m in list(net.features)[1:]:
            f = m(f)
            if type(m).__name__ == "NB101Cell":  # the max pools between stacks are not cells
                keep(f)
    elif kind == "NB301Network":
        s0 = s1 = keep(net.stem(x))
        for cell in net.cells:
            s0, s1 = s1, keep(cell(s0, s1))
    elif kind == "NDSNetwork":
        f = keep(net.stem(x))
        for stage in net.stages:
            for block in stage:
                f = keep(block(f))
    else:
        raise ValueError(f"no cells known for {kind}")
    return features


def ref_az_nas(net: nn.Module, noise: torch.Tensor, seed: int = 0, float64: bool = True) -> dict[str, float]:
    """The three scores (-inf where the authors give -inf). ``float64``: the expressivity's covariance and
    eigenvalues in float64 with negative round-off set to 0, as archscore documents; else the authors' float32."""
    net = copy.deepcopy(net)
    net.train()
    with torch.no_grad():
        net.apply(_kaiming_normal_fanin_init(torch.Generator().manual_seed(seed)))
    for p in net.parameters():
        p.requires_grad_(True)
        p.grad = None
    input_ = noise[:AZ_BATCH]
    layer_features = extract_cell_features(net, input_)

    expressivity_scores = []
    for i in range(len(layer_features)):
        feat = layer_features[i].detach().clone()
        if float64:
            feat = feat.double()
        b, c, h, w = feat.size()
        feat = feat.permute(0, 2, 3, 1).contiguous().view(b * h * w, c)
        m = feat.mean(dim=0, keepdim=True)
        feat = feat - m
        sigma = torch.mm(feat.transpose(1, 0), feat) / (feat.size(0))
        s = torch.linalg.eigvalsh(sigma)
        if float64:
            s = torch.clamp(s, min=0)
        prob_s = s / s.sum()
        score = (-prob_s) * torch.log(prob_s + 1e-8)
        expressivity_scores.append(score.sum().item())
    expressivity_scores = np.array(expressivity_scores)
    progressivity = np.min(expressivity_scores[1:] - expressivity_scores[:-1])
    expressivity = np.sum(expressivity_scores)

    generator = torch.Generator().manual_seed(seed)
    scores = []
    for i in reversed(range(1, len(layer_features))):
        f_out = layer_features[i]
        f_in = layer_features[i - 1]
        g_out = torch.ones_like(f_out) * 0.5
        g_out = (torch.bernoulli(g_out, generator=generator) - 0.5) * 2
        g_in = torch.autograd.grad(outputs=f_out, inputs=f_in, grad_outputs=g_out, retain_graph=False)[0]
        if g_out.size() == g_in.size() and torch.all(g_in == g_out):
            scores.append(-np.inf)
        else:
            if g_out.size(2) != g_in.size(2) or g_out.size(3) != g_in.size(3):
                stride = int(g_in.size(2) / g_out.size(2))
                g_in = nn.PixelUnshuffle(stride)(g_in)
            bo, co, ho, wo = g_out.size()
            bi, ci, hi, wi = g_in.size()
            g_out = g_out.permute(0, 2, 3, 1).contiguous().view(bo * ho * wo, co)
            g_in = g_in.permute(0, 2, 3, 1).contiguous().view(bi * hi * wi, ci)
            mat = torch.mm(g_in.transpose(1, 0), g_out) / (bo * ho * wo)
            s = torch.linalg.svdvals(mat)
            scores.append(-s.max().item() - 1 / (s.max().item() + 1e-6) + 2)
    trainability = np.mean(scores)

    def finite_or_minus_inf(v: float) -> float:
        return float(v) if not np.isnan(v) else -np.inf

    return {
        "az_expressivity": finite_or_minus_inf(expressivity),
        "az_progressivity": finite_or_minus_inf(progressivity),
        "az_trainability": finite_or_minus_inf(trainability),
    }
