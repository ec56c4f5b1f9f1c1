"""Torch-free manifest of the zero-shot estimators: what the API lists and cache keys carry.

Bump an estimator's version whenever its numbers change; the version is part of every cache key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class EstimatorInfo:
    name: str
    kind: str  # "zero_shot" or "one_shot"
    direction: str  # always "higher" after the declared sign (docs/concepts/estimators.md)
    needs_data: bool
    version: str
    unit: str
    description: str

    def to_dict(self) -> dict:
        return asdict(self)


def _zs(name: str, needs_data: bool, unit: str, description: str, version: str = "1") -> EstimatorInfo:
    return EstimatorInfo(name, "zero_shot", "higher", needs_data, version, unit, description)


ZERO_SHOT: dict[str, EstimatorInfo] = {
    info.name: info
    for info in (
        _zs("grad_norm", True, "", "sum over Conv2d/Linear layers of the L2 norm of the cross-entropy weight gradient"),
        _zs("snip", True, "", "sum of |w * dL/dw| over Conv2d/Linear weights (cross-entropy)"),
        _zs("grasp", True, "", "sum of -(w * Hg), Hessian-gradient product by double backward (negated as in GraSP)"),
        _zs("fisher", True, "", "per output channel 0.5*mean_batch((sum_spatial act*dact)^2), times fan-in, summed"),
        _zs("jacob_cov", True, "", "-sum(log(v+1e-5) + 1/(v+1e-5)), v eigenvalues of corrcoef of input Jacobians"),
        _zs("synflow", False, "", "sum |w * dR/dw|, R = sum(net(1)) with |weights|, BN off, float64, one all-ones sample"),
        _zs("relu_logdet", True, "", "NASWOT: log|det K|, K the Hamming-similarity kernel of ReLU activation codes"),
        _zs("relu", True, "layers", "number of nn.ReLU layers executed in one forward pass"),
        _zs("params", False, "M", "trainable parameters of the standalone network, in millions"),
        _zs("flops", False, "MFLOPs", "FLOPs of one forward pass of one sample, NAS-Bench-201 convention, in millions"),
    )
}


def list_zero_shot() -> list[str]:
    return list(ZERO_SHOT)


def resolve_estimators(names: Iterable[str] | None) -> list[str]:
    """Validate estimator names (None or "all" = every zero-shot proxy); keep the given order, drop repeats."""
    if names is None:
        return list(ZERO_SHOT)
    names = list(names)
    if names == ["all"]:
        return list(ZERO_SHOT)
    unknown = [n for n in names if n not in ZERO_SHOT]
    if unknown:
        hint = ""
        if any(n.startswith("oneshot") for n in unknown):
            hint = " (one-shot estimators need a supernet: `archscore supernet eval`, or the service)"
        raise KeyError(
            f"unknown zero-shot estimator(s) {', '.join(unknown)}; available: {', '.join(ZERO_SHOT)}{hint}"
        )
    return list(dict.fromkeys(names))
