"""``epe_nas``: EPE-NAS (Lopes et al., ICANN 2021), the per-class correlations of the input Jacobians.

J the input Jacobians d(Σ outputs)/dx of the batch, one row per image (the ``input_grads`` jacob_cov reads:
no pass of its own); the rows grouped by label; per label c, s_c = Σ over the entries of the rows'
correlation matrix of log(|corr| + 1e-5) (a label with one image: its correlation with itself, 1); the score
Σ_c |s_c|. It follows VascoLopes/EPE-NAS ``search.py`` (``get_batch_jacobian``, ``eval_score_perclass``) as
the authors' search calls it: ``n_classes`` left at its default 10, so their per-label sum is taken whatever
the dataset (the paper's normalisation for more than 100 classes is never reached). VKDNW's Table 1 does not
re-run it. Where it differs: the batch is the protocol's (the authors read 256 images, ``--batch_size`` and
``--evaluate_size``) in the protocol's BatchNorm mode (the authors': train mode); a Jacobian constant over the
image makes the authors' score NaN, here undefined with the reason.
"""

from __future__ import annotations

import torch

from archscore.estimators.zero_shot.proxies import ProxyInput, Undefined, _computed, _finite, _shared, register_proxy

EPSILON = 1e-5  # eval_score_perclass: k


def epe_of(jacobians: torch.Tensor, labels: torch.Tensor) -> float:
    """Σ over labels (in order of first appearance) of |Σ log(|corr| + EPSILON)|, corr the Pearson
    correlation of the label's rows of ``jacobians`` (images x inputs), float64, clipped to [-1, 1]."""
    rows = jacobians.reshape(jacobians.shape[0], -1).to(torch.float64)
    order = list(dict.fromkeys(labels.tolist()))
    total = 0.0
    for label in order:
        group = rows[labels == label]
        centred = group - group.mean(dim=1, keepdim=True)
        norms = centred.norm(dim=1)
        if bool((norms == 0).any()):
            raise Undefined("the output does not depend on some image (constant input Jacobian): correlation undefined")
        unit = centred / norms[:, None]
        corr = (unit @ unit.T).clamp(-1.0, 1.0)
        total += abs(torch.log(corr.abs() + EPSILON).sum().item())
    return total


@register_proxy("epe_nas", {"input_grads"})
def epe_nas(inp: ProxyInput) -> float:
    if inp.y is None:
        raise Undefined("EPE-NAS groups the input Jacobians by label: the batch has no labels")
    input_grads = _computed(_shared(inp).input_grads, "input_grads")
    return _finite(epe_of(input_grads, inp.y.to(input_grads.device)), "epe_nas")
