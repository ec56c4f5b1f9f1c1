"""``ntk_cond`` and ``linear_regions``: TE-NAS (Chen et al., ICLR 2021), trainability and expressivity.

``ntk_cond``: the neural tangent kernel of the logits on the batch's first 64 images (one forward of them in
the network's mode, one backward per image of the sum of its logits; the parameters whose name contains
'weight'), K = GGᵀ in float64, and its condition number λ_max/λ_min, negated: a lower condition number is
better. It follows VITA-Group/TENAS ``lib/procedures/ntk.py`` (``get_ntk_n``, called by ``prune_tenas.py`` with
train_mode=True and one batch) as re-run on NAS-Bench-201 for VKDNW's Table 1 (ondratybl/VKDNW
``NB201/ZeroShotProxy/compute_te_nas_score.py``: one batch of 64 training images, the full network, negated).
Where it differs: TE-NAS's NB201 search takes batches of 72 on a C=3, N=1 network and averages 3 batches (the
protocol's batches here); the kernel and its eigenvalues are float64 (the authors' float32); a kernel singular
to the gradients' float32 precision (λ_min ≤ B·ε₃₂²·λ_max) has no value (the authors' ratio would be huge,
negative or NaN; VKDNW sets NaN to 1e5).

``linear_regions``: the number of distinct activation patterns (the signs of every nn.ReLU output whose input is
4-D) over the protocol's Gaussian batch, the network in its mode, no gradients; the authors count them with
``LinearRegionCount.calc_LR`` (Σ over samples of 1/the number of samples sharing its pattern), here exactly.
It follows VITA-Group/TENAS ``lib/procedures/linear_region_counter.py`` (``LinearRegionCount``,
``Linear_Region_Collector``) as VKDNW's Table 1 re-runs it (``compute_RN_score``: the network itself on one
Gaussian batch of the batch's shape). TE-NAS itself counts on a narrower copy (``prune_tenas.py``,
``model_config_thin``: one cell of 1 channel, no stem) over 3 x 1000 one-channel 3x3 crops of training images;
a proxy receives only the network, and the spaces build no such copy. On full-width networks every sample has
its own pattern, so the value is the number of samples for nearly every network (docs/concepts/estimators.md).

The two are what TE-NAS's rank (``te_nas``, summed ranks of both, higher is better for each) reads.
"""

from __future__ import annotations

import torch

from archscore.estimators.zero_shot.proxies import ProxyInput, Undefined, _finite, _shared, register_proxy


def condition_number(kernel: torch.Tensor) -> float:
    """λ_max/λ_min of the kernel GGᵀ (float64). Undefined where it is singular to the precision of float32
    gradients: rounding G's entries moves its singular values by up to ε₃₂·‖G‖_F ≤ ε₃₂·√B·σ_max, so the
    kernel's eigenvalues below B·ε₃₂²·λ_max cannot be told from 0 (two equal images in train mode give about
    1e-13·λ_max)."""
    eigenvalues = torch.linalg.eigvalsh(kernel.to(torch.float64))
    low, high = eigenvalues[0].item(), eigenvalues[-1].item()
    if not high > 0:
        raise Undefined("the tangent kernel is 0: no weight moves the logits")
    if low <= kernel.shape[0] * torch.finfo(torch.float32).eps ** 2 * high:
        raise Undefined("the tangent kernel is singular (infinite condition number)")
    return high / low


@register_proxy("ntk_cond", {"tangent_kernel"})
def ntk_cond(inp: ProxyInput) -> float:
    kernel = _shared(inp).own["tangent_kernel"]
    if kernel is None:
        if inp.x is not None and inp.x.shape[0] < 2:
            raise Undefined("ntk_cond needs a batch of at least 2 images")
        raise Undefined("the network has no parameter named weight")
    if not bool(kernel.isfinite().all()):
        raise Undefined("the tangent kernel is not finite")
    return _finite(-condition_number(kernel), "ntk_cond")


@register_proxy("linear_regions", {"activation_regions"})
def linear_regions(inp: ProxyInput) -> float:
    count = _shared(inp).own["activation_regions"]
    if count is None:
        raise Undefined("no nn.ReLU sees a 4-D input: no activation pattern")
    return float(count)
