"""``zen``: Zen-NAS (Lin et al., ICCV 2021), the Zen-score.

On a copy of the network re-initialised as the authors do (every Conv2d/Linear weight N(0, 1), biases 0,
BatchNorm 1 and 0; drawn from the protocol's seed, running statistics reset), in train mode: x the Gaussian
batch and x + 0.01·ε, ε Gaussian; f the feature map before global average pooling, found as the input of the
last global average pooling the network runs (every space's networks end with one; a network that runs none
has no zen); log of the batch mean of Σ over channels and positions of |f(x) - f(x + 0.01·ε)|, plus Σ over
BatchNorm2d modules of log sqrt(mean running_var) after the two passes. It follows idstcv/ZenNAS
``ZeroShotProxy/compute_zen_score.py`` (``network_weight_gaussian_init``, ``compute_nas_score``) as re-run on
NAS-Bench-201 for VKDNW's Table 1 (ondratybl/VKDNW ``NB201/ZeroShotProxy/compute_zen_score.py`` called by
``NB201/tss_general_.py``: Gaussian inputs, mixup_gamma 1e-2, one repeat, train mode, the network with its
skip connections). Where it differs: the Gaussian batch is the protocol's (the batches ``inputs: noise``
gives; VKDNW's script draws 32 images, ZenNAS leaves the size to its scripts) and ε is drawn from the
protocol's seed; the running statistics start fresh, as on the new networks ZenNAS's search scores (VKDNW's
script scores zen after other proxies have run on the same network in train mode); train mode whatever the
protocol's BatchNorm mode.
"""

from __future__ import annotations

import math

from archscore.estimators.zero_shot.passes.mixup_response import MixupResponse
from archscore.estimators.zero_shot.proxies import ProxyInput, Undefined, _finite, _shared, register_proxy


@register_proxy("zen", {"mixup_response"})
def zen(inp: ProxyInput) -> float:
    terms: MixupResponse = _shared(inp).own["mixup_response"]
    if terms.change is None:
        raise Undefined(terms.reason or "no feature map before global average pooling")
    if terms.change == 0:
        raise Undefined("the feature map before global average pooling does not change with the input")
    if not math.isfinite(terms.bn_log_scale):
        raise Undefined("a BatchNorm2d's mean running variance is 0 or not finite")
    return _finite(math.log(terms.change) + terms.bn_log_scale, "zen")
