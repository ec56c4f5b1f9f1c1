"""The passes on inputs of their own (``registry``), one module each; importing the package registers them."""

from archscore.estimators.zero_shot.passes import (
    activation_patterns,
    channel_correlation,
    fisher_information,
    split_gradients,
)
from archscore.estimators.zero_shot.passes.registry import OWN_PASSES, OwnPass, PassInputs, register_pass

__all__ = [
    "OWN_PASSES",
    "OwnPass",
    "PassInputs",
    "activation_patterns",
    "channel_correlation",
    "fisher_information",
    "register_pass",
    "split_gradients",
]
