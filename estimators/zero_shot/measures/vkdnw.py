"""``vkdnw``: VKDNW (Tybl & Neumann, CVPR 2025), the entropy of the Fisher information's eigenvalue deciles.

On a copy of the network re-initialised as the authors do (Kaiming normal fan-in, from the protocol's seed),
θ the first weight of each of the first 128 parameter tensors; the Fisher information of the network's
smoothed softmax by θ on a Gaussian batch, BatchNorm on its running statistics; its eigenvalues' deciles
0.1..0.9 normalised to sum 1, and their entropy. It follows ondratybl/VKDNW
``NB201/ZeroShotProxy/compute_vkdnw_score.py`` (``get_fisher``, ``cholesky_covariance``,
``get_jacobian_index``, ``compute_nas_score``: ``vkdnw_entropy``) as run for the paper's Table 1
(``NB201/tss_general_.py``: Gaussian inputs, 128 tensors, the first weight of each). The Gaussian batch is the
protocol's (the batches ``inputs: noise`` gives); the paper used 64 images.

``vkdnw_single``: the paper's VKDNW_single (Table 1), which ranks by the number of parameter tensors first
and by ``vkdnw`` among networks with as many: ``get_scores`` in ondratybl/VKDNW ``NB201/tss_utils.py`` ranks
the pairs (``vkdnw_dim``, ``vkdnw_entropy``), ``vkdnw_dim`` being ``len(list(model.named_parameters()))``
(``compute_vkdnw_score.py``). As one number: count + entropy / 3, which orders as the pairs do, since the
entropy of nine shares is at most log 9 < 3.
"""

from __future__ import annotations

import torch

from archscore.estimators.zero_shot.proxies import ProxyInput, Undefined, _finite, _shared, register_proxy


def entropy_of_deciles(fisher: torch.Tensor) -> float:
    """VKDNW: the eigenvalues' (singular values') deciles 0.1..0.9 (linear interpolation), normalised by
    their sum (+1e-10), and their entropy -Σ t log(t + 1e-10)."""
    eigenvalues = torch.linalg.svdvals(fisher.to(torch.float64))
    points = torch.arange(1, 10, dtype=torch.float64, device=eigenvalues.device) / 10
    deciles = torch.quantile(eigenvalues, points)
    t = deciles / (deciles.abs().sum() + 1e-10)
    return -(t * torch.log(t + 1e-10)).sum().item()


@register_proxy("vkdnw", {"fisher_information"})
def vkdnw(inp: ProxyInput) -> float:
    fisher = _shared(inp).own["fisher_information"]
    if fisher is None:
        raise Undefined("no parameters, or the network's output is not a batch of logits")
    if not bool(fisher.isfinite().all()):
        raise Undefined("the Fisher information is not finite")
    return _finite(entropy_of_deciles(fisher), "vkdnw")


ENTROPY_SCALE = 3.0  # above log 9, the largest entropy of nine shares: count + entropy / 3 orders as the pairs


@register_proxy("vkdnw_single", {"fisher_information"})
def vkdnw_single(inp: ProxyInput) -> float:
    tensors = len(list(inp.net.named_parameters()))
    return tensors + vkdnw(inp) / ENTROPY_SCALE
