"""``swap`` and ``swap_reg``: SWAP (Peng et al., ICLR 2024), sample-wise activation patterns.

The first 16 images of the protocol's batch alone through the network (no gradient); every output neuron
of every nn.ReLU whose input is 4-D gives its pattern of signs over the 16 images; ``swap`` is the number
of distinct patterns. ``swap_reg`` multiplies it by exp(-(Θ - μ)² / σ), Θ the parameters. It follows
pym1024/SWAP ``src/metrics/swap.py`` (``SWAP``, ``SampleWiseActivationPatterns``, ``cal_regular_factor``)
with ``correlation.py``'s 16 input samples. The authors' code counts Θ in thousands and leaves μ and σ to
the caller; swap_reg uses Θ in millions with μ = σ = 1.5 (a size prior around NAS-Bench-201's largest
networks, 1.5 M parameters): see docs/concepts/estimators.md.
"""

from __future__ import annotations

import math

from torch import nn

from archscore.estimators.zero_shot.proxies import ProxyInput, Undefined, _finite, _shared, register_proxy

MU = 1.5  # millions of parameters
SIGMA = 1.5


def parameter_count_millions(net: nn.Module) -> float:
    """SWAP's Θ: the parameters whose name does not contain 'auxiliary', in millions."""
    return math.fsum(p.numel() for k, p in net.named_parameters() if "auxiliary" not in k) / 1e6


@register_proxy("swap", {"activation_patterns"})
def swap(inp: ProxyInput) -> float:
    count = _shared(inp).own["activation_patterns"]
    if count is None:
        raise Undefined("no nn.ReLU sees a 4-D input: no activation pattern")
    return float(count)


@register_proxy("swap_reg", {"activation_patterns"})
def swap_reg(inp: ProxyInput) -> float:
    count = swap(inp)
    theta = parameter_count_millions(inp.net)
    return _finite(count * math.exp(-((theta - MU) ** 2) / SIGMA), "swap_reg")
