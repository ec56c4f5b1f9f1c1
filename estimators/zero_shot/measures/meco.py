"""``meco``: MeCo (Jiang et al., NeurIPS 2023), the minimum eigenvalue of the correlation of feature maps.

One image alone through the network; for every module executed (containers too, each execution), its
output's first sample as channels x positions, the Pearson correlation of the channels (undefined entries
set to 0) and its smallest eigenvalue; the sum. It follows HamsterMimi/MeCo ``correlation/NAS_Bench_201.py``
(``get_score``: forward hooks on every named module of the network, ``data_output[0]``, one CIFAR image of
the training loader, batch size 1, train mode); its ``foresight/pruners/measures/meco.py`` (the NAS-Bench-101
script) draws one Gaussian image of 64x64 instead. Here the image is the first of the protocol's batch,
run alone; ``inputs: noise`` gives a Gaussian one.
"""

from __future__ import annotations

import math

from archscore.estimators.zero_shot.proxies import ProxyInput, _finite, _shared, register_proxy


@register_proxy("meco", {"correlation_minima"})
def meco(inp: ProxyInput) -> float:
    minima = _shared(inp).own["correlation_minima"]
    return _finite(math.fsum(v for v in minima if math.isfinite(v)), "meco")
