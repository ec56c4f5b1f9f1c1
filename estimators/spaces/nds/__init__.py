"""NDS ResNet and ResNeXt-A, in layers: the vocabulary (``encoding``: block types, the per-stage
architecture type) and the exact cost (``cost``) at the bottom; the standalone network (``network``)
and the supernet (``supernet``) above them; the spaces (``space``, registered with the registry) on
top. Importing the package registers both spaces."""

from archscore.estimators.spaces.nds.cost import network_cost
from archscore.estimators.spaces.nds.encoding import BASIC, BOTTLENECK, Stages
from archscore.estimators.spaces.nds.space import NDSResNetSpace, NDSResNeXtASpace, NDSSpace

__all__ = ["BASIC", "BOTTLENECK", "NDSResNeXtASpace", "NDSResNetSpace", "NDSSpace", "Stages", "network_cost"]
