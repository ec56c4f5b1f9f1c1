"""``layers``: the number of trainable layers (Conv2d and Linear modules with a trainable weight) that
run in one forward pass -- the size baseline of VKDNW's Table 1 (Tybl & Neumann, CVPR 2025), which the
zero-shot proxies have to beat."""

from __future__ import annotations

from archscore.estimators.zero_shot.proxies import ProxyInput, _computed, _shared, register_proxy


@register_proxy("layers", {"layer_count"})
def layers(inp: ProxyInput) -> float:
    return float(_computed(_shared(inp).layer_count, "layer_count"))
