"""NDS ResNet and ResNeXt-A: encodings, value sets and exact cost (``space``), the standalone network
(``network``)."""

from archscore.estimators.spaces.nds.space import (  # noqa: F401  (importing registers both spaces)
    BASIC,
    BOTTLENECK,
    NDSResNetSpace,
    NDSResNeXtASpace,
    NDSSpace,
    Stages,
    network_cost,
)
