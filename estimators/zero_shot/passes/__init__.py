"""The passes on inputs of their own (``registry``), one module each; importing the package registers them."""

from archscore.estimators.zero_shot.passes import (
    activation_patterns,
    activation_regions,
    cell_features,
    channel_correlation,
    fisher_information,
    gradient_signs,
    mixup_response,
    split_gradients,
    tangent_kernel,
)
from archscore.estimators.zero_shot.passes.registry import OWN_PASSES, OwnPass, PassInputs, register_pass

__all__ = [
    "OWN_PASSES",
    "OwnPass",
    "PassInputs",
    "activation_patterns",
    "activation_regions",
    "cell_features",
    "channel_correlation",
    "fisher_information",
    "gradient_signs",
    "mixup_response",
    "register_pass",
    "split_gradients",
    "tangent_kernel",
]
