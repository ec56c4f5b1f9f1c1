"""``correlation_minima`` (MeCo): the batch's first image alone; per executed module, the smallest
eigenvalue of the correlation of its output's channels."""

from __future__ import annotations

import torch
from torch import nn

from archscore.estimators.zero_shot.passes.registry import PassInputs, register_pass


def _smallest_correlation_eigenvalue(output) -> float | None:
    """MeCo's term of one module: its output's first sample as channels x positions, the channels'
    Pearson correlation (undefined entries 0), its smallest eigenvalue. None when there are not two
    channels to correlate."""
    if not isinstance(output, torch.Tensor) or output.dim() < 2:
        return None
    features = output[0].detach().to(torch.float64)
    features = features.reshape(features.shape[0], -1)
    if features.shape[0] < 2:
        return None
    if features.shape[1] < 2:  # one position: every correlation is undefined, set to 0
        return 0.0
    corr = torch.nan_to_num(torch.corrcoef(features), nan=0.0, posinf=0.0, neginf=0.0)
    return torch.linalg.eigvalsh(corr).min().item()


@register_pass("correlation_minima")
def correlation_minima(inp: PassInputs) -> list[float]:
    """The batch's first image alone through the network; for every module executed (each execution,
    in order; containers included, as the authors' hooks on every named module), the smallest eigenvalue
    of its output's channel correlation (``_smallest_correlation_eigenvalue``)."""
    net, x = inp.net, inp.x
    minima: list[float] = []

    def hook(module: nn.Module, inputs: tuple, output) -> None:
        value = _smallest_correlation_eigenvalue(output)
        if value is not None:
            minima.append(value)

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    try:
        with torch.no_grad():
            net(x[:1])
    finally:
        for h in handles:
            h.remove()
    return minima
