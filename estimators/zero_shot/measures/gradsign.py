"""``gradsign``: GradSign (Zhang & Jia, ICLR 2022), the agreement of the per-sample gradients' signs.

Every image of the batch alone through the network (in train mode BatchNorm normalises by that image's
statistics), g_i the gradient of its cross-entropy by the Conv2d/Linear weights; Σ over weights of |Σ_i
sign(g_i)|. It follows cmu-catalyst/GradSign ``zero-cost-nas-code/foresight/pruners/measures/grad_conflict.py``
(``get_grad_conflict``: one forward and backward per image, ``np.nansum``), run by ``nasbench2_pred.py`` on one
batch of 128, the network in train mode. VKDNW's Table 1 re-run (ondratybl/VKDNW
``NB201/ZeroShotProxy/compute_gradsign_score.py``, from the authors' ``naswot-code/gradsign.py``) averages over
the weights instead (``np.nanmean``) on a batch of 64; the paper's definition and the NB201 code sum. Where it
differs: the gradients are computed by torch.func (vmap of the gradient of one image's loss), the same
numbers as the authors' loop up to float rounding, which can flip the sign of gradients near 0; a NaN gradient
makes the value undefined (the authors' nansum leaves the weight out); fewer than 2 images: undefined.
"""

from __future__ import annotations

import math

from archscore.estimators.zero_shot.passes.gradient_signs import GradientSigns
from archscore.estimators.zero_shot.proxies import ProxyInput, Undefined, _finite, _shared, register_proxy


@register_proxy("gradsign", {"gradient_signs"})
def gradsign(inp: ProxyInput) -> float:
    signs: GradientSigns = _shared(inp).own["gradient_signs"]
    if signs.sums is None:
        raise Undefined(signs.reason or "no gradient signs")
    return _finite(math.fsum(s.abs().sum().item() for s in signs.sums), "gradsign")
