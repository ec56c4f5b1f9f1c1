"""Every estimator the library and the service offer, zero-shot and one-shot: the one place their facts
(name, kind, direction, whether they read data, version, unit, definition) are written (torch-free).

This module imports nothing of the project but the torch-free discovery of plugins (other packages'
estimators, archscore.estimators.plugins), which it lists after the built-in ones: the zero-shot and
one-shot packages, the scoring above them and the service all read it. Bump an estimator's version
whenever its numbers change; the version is part of every cache key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from archscore.estimators.plugins import discover


@dataclass(frozen=True)
class EstimatorInfo:
    """One estimator of the catalog: ``kind`` is zero_shot or one_shot, ``direction`` always higher
    (after the declared sign, docs/concepts/estimators.md), ``needs_data`` whether it reads the
    protocol's data batches, ``version`` part of every cache key of its scores, ``module`` a plugin's module
    that registers its function (None: built in); a population estimator (archscore.estimators.population)
    has ``members`` and an ``aggregation`` and no scores of its own."""

    name: str
    kind: str  # "zero_shot", "one_shot" or "population"
    direction: str  # always "higher" after the declared sign (docs/concepts/estimators.md)
    needs_data: bool
    version: str
    unit: str
    description: str
    module: str | None = None
    members: tuple[str, ...] = ()  # a population estimator's: the estimators it ranks
    aggregation: str | None = None  # a population estimator's: how it adds the ranks (population.AGGREGATIONS)
    weights: tuple[float, ...] = ()  # a population estimator's: each member's weight in the sum (none: all 1)

    def to_dict(self) -> dict:
        """JSON-ready (members as a list, as JSON gives them back)."""
        return {**asdict(self), "members": list(self.members), "weights": list(self.weights)}


def _zs(name: str, needs_data: bool, unit: str, description: str, version: str = "1") -> EstimatorInfo:
    return EstimatorInfo(name, "zero_shot", "higher", needs_data, version, unit, description)


def _os(name: str, description: str, version: str = "1") -> EstimatorInfo:
    return EstimatorInfo(name, "one_shot", "higher", True, version, "", description)


ZERO_SHOT: dict[str, EstimatorInfo] = {
    info.name: info
    for info in (
        _zs("grad_norm", True, "", "sum over Conv2d/Linear layers of the L2 norm of the cross-entropy weight gradient"),
        _zs("snip", True, "", "sum of |w * dL/dw| over Conv2d/Linear weights (cross-entropy)"),
        _zs("grasp", True, "", "sum of -(w * Hg), Hessian-gradient product by double backward (negated as in GraSP)"),
        _zs("fisher", True, "", "per output channel 0.5*mean_batch((sum_spatial act*dact)^2), times fan-in, summed"),
        _zs("jacob_cov", True, "", "-sum(log(v+1e-5) + 1/(v+1e-5)), v eigenvalues of corrcoef of input Jacobians"),
        _zs(
            "synflow",
            False,
            "",
            "sum |w * dR/dw|, R = sum(net(1)) with |weights|, BN off, float64, one all-ones sample",
        ),
        _zs("relu_logdet", True, "", "NASWOT: log|det K|, K the Hamming-similarity kernel of ReLU activation codes"),
        _zs("relu", True, "layers", "number of nn.ReLU layers executed in one forward pass"),
        _zs("params", False, "M", "trainable parameters of the standalone network, in millions"),
        _zs("flops", False, "MFLOPs", "FLOPs of one forward pass of one sample, NAS-Bench-201 convention, in millions"),
        _zs("layers", True, "layers", "number of Conv2d/Linear modules with a trainable weight run in a forward pass"),
        _zs(
            "zico",
            True,
            "",
            "ZiCo: sum over Conv2d/Linear layers of log sum_w mean|g|/std(g), g the CE gradients of the batch's halves",
        ),
        _zs(
            "meco",
            True,
            "",
            "MeCo: sum over modules of the min eigenvalue of the channel correlation, the batch's 1st image alone",
        ),
        _zs("swap", True, "", "SWAP: distinct nn.ReLU sign patterns over the batch's first 16 images run alone"),
        _zs("swap_reg", True, "", "swap * exp(-(P - 1.5)^2 / 1.5), P the parameters in millions"),
        _zs(
            "vkdnw",
            True,
            "",
            "VKDNW: entropy of the Fisher information's eigenvalue deciles, 128 weights, re-initialised, noise inputs",
        ),
        _zs(
            "vkdnw_single",
            True,
            "",
            "VKDNW_single: the number of parameter tensors, then vkdnw among equals (count + vkdnw / 3)",
        ),
        _zs(
            "ntk_cond",
            True,
            "",
            "TE-NAS: condition number of the logits' NTK on the batch's first 64 images, negated (lower is better)",
        ),
        _zs(
            "linear_regions",
            True,
            "",
            "TE-NAS: number of distinct nn.ReLU activation patterns (linear regions) over the Gaussian batch",
        ),
        _zs(
            "gradsign",
            True,
            "",
            "GradSign: sum over Conv2d/Linear weights of |sum of sign(dL_i/dw)|, each image of the batch alone",
        ),
        _zs(
            "zen",
            True,
            "",
            "Zen-NAS: log mean sum|f(x) - f(x+0.01e)| before global pooling + BN sum of log sqrt(mean running_var)",
        ),
        _zs(
            "epe_nas",
            True,
            "",
            "EPE-NAS: sum over labels of |sum log(|corr|+1e-5)|, corr of the label's input Jacobians (jacob_cov's)",
        ),
        _zs(
            "az_expressivity",
            True,
            "",
            "AZ-NAS: sum over the stem and cells of the entropy of the features' normalised covariance eigenvalues",
        ),
        _zs(
            "az_progressivity",
            True,
            "",
            "AZ-NAS: smallest increase of that entropy from one cell's features to the next",
        ),
        _zs(
            "az_trainability",
            True,
            "",
            "AZ-NAS: mean over cells of -s - 1/(s+1e-6) + 2, s the top singular value of the cell's gradient map",
        ),
    )
}

ONE_SHOT: dict[str, EstimatorInfo] = {
    info.name: info
    for info in (
        _os(
            "oneshot_acc",
            "top-1 accuracy of the architecture in a trained supernet of its space on the validation split",
        ),
        _os(
            "oneshot_loss",
            "negated mean cross-entropy of the architecture in a trained supernet of its space on the validation split",
        ),
    )
}


def _pop(
    name: str,
    members: tuple[str, ...],
    aggregation: str,
    description: str,
    version: str = "1",
    weights: tuple[float, ...] = (),
) -> EstimatorInfo:
    if weights and len(weights) != len(members):
        raise ValueError(f"{name}: {len(weights)} weights for {len(members)} members")
    return EstimatorInfo(
        name, "population", "higher", True, version, "", description, None, members, aggregation, weights
    )


# ranks within the architectures scored together (archscore.estimators.population)
POPULATION: dict[str, EstimatorInfo] = {
    info.name: info
    for info in (
        _pop(
            "te_nas",
            ("ntk_cond", "linear_regions"),
            "rank_sum",
            "TE-NAS: rank of ntk_cond + rank of linear_regions",
        ),
        _pop(
            "az_nas",
            ("az_expressivity", "az_progressivity", "az_trainability", "flops"),
            "log_rank",
            "AZ-NAS: sum of log(rank/N) of its expressivity, progressivity, trainability and flops",
        ),
        _pop(
            "vkdnw_agg",
            ("vkdnw_single", "jacob_cov", "az_expressivity", "az_trainability", "flops"),
            "log_rank",
            "VKDNW_agg: sum of log(rank/N) of vkdnw_single, jacob_cov, AZ-NAS's expressivity and trainability, "
            "and flops",
            version="2",
        ),
        # a training-free ensemble: members chosen on a selection split of NB201 (benchmarks/select_ensemble.py)
        _pop(
            "ensemble:default",
            ("meco", "swap_reg", "az_expressivity", "az_trainability", "synflow"),
            "log_rank",
            "Sum of log(rank/N) of meco, swap_reg, AZ-NAS's expressivity and trainability, and synflow: the five "
            "chosen on NB201 cells disjoint from those it is reported on",
            version="2",
        ),
        _pop(
            "ensemble:nb101",
            ("meco", "az_expressivity", "params", "flops"),
            "log_rank",
            "Sum of log(rank/N) of meco, AZ-NAS's expressivity, params and flops: the four chosen on NB101 "
            "modules disjoint from those it is reported on",
        ),
        _pop(
            "ensemble:nb301",
            ("relu_logdet", "az_expressivity"),
            "log_rank",
            "Sum of log(rank/N) of relu_logdet and AZ-NAS's expressivity: the two chosen on NB301 genotypes "
            "disjoint from those it is reported on",
        ),
    )
}


def space_ensemble(space: str) -> EstimatorInfo:
    """The space's built-in training-free ensemble: ``ensemble:<space>`` where one was chosen on that space,
    else ``ensemble:default`` (chosen on NB201)."""
    return POPULATION.get(f"ensemble:{space}", POPULATION["ensemble:default"])


# the estimators archscore ships
BUILT_IN: dict[str, EstimatorInfo] = {**ZERO_SHOT, **ONE_SHOT, **POPULATION}

# the installed packages' (archscore.estimators.plugins): zero-shot, after the built-in ones
PLUGINS: dict[str, EstimatorInfo] = {
    f.name: EstimatorInfo(f.name, "zero_shot", "higher", f.needs_data, f.version, f.unit, f.description, f.module)
    for f in discover(BUILT_IN)
}
ZERO_SHOT.update(PLUGINS)

ESTIMATORS: dict[str, EstimatorInfo] = {**BUILT_IN, **PLUGINS}

# The estimators a space's exact cost model gives (spaces with the cost capability): exact functions of
# the architecture as written, computed without building its network.
COST_MODEL = ("params", "flops")


def is_one_shot(name: str) -> bool:
    return name in ONE_SHOT


def is_population(name: str) -> bool:
    return name in POPULATION


# A fitted few-shot predictor is named ``predictor:NAME`` (archscore.estimators.predictor): not in the
# catalog, it is found where it was fitted (the service's stored predictors), with the zero-shot
# estimators it reads as its members.
PREDICTOR_PREFIX = "predictor:"


def is_predictor(name: str) -> bool:
    return name.startswith(PREDICTOR_PREFIX)


def scored_estimators(names: list[str], predictors: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """The estimators computed per architecture for ``names``: each population estimator replaced by its
    members, and each predictor by the estimators of ``predictors[name]`` (each name once, in order of
    first appearance)."""
    out: dict[str, None] = {}
    for name in names:
        if name in POPULATION:
            members: Sequence[str] = POPULATION[name].members
        elif is_predictor(name):
            members = (predictors or {}).get(name, ())  # none: an unknown predictor (refused where asked)
        else:
            members = (name,)
        for scored in members:
            out.setdefault(scored)
    return list(out)


def batch_free(name: str) -> bool:
    """A zero-shot estimator that reads no data batch: it depends on the architecture only."""
    return not ZERO_SHOT[name].needs_data
