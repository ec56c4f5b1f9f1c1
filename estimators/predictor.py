"""Few-shot predictors: gradient-boosted trees fitted on a few labelled architectures (torch-free).

The features of an architecture are its scores (zero-shot estimators of the catalog and, when the protocol
names a supernet, its one-shot ones, all computed under one protocol) and, where the space declares them,
its encoding features (``SearchSpace.encoding_features``: one-hot ops, op counts, path features), as in
NASLib's XGBoost predictor on zero-cost scores.

The trees compare two architectures: LightGBM's binary classifier, fitted on ordered pairs of training
architectures (the features of the first, of the second and their difference) to whether the first has
the higher label, as the binary relation predictor of BRP-NAS (Dudziak et al., NeurIPS 2020) does with a
graph network. An architecture's prediction is the mean, over the training architectures, of the
probability that it beats each: the fraction of the training set it is expected to beat, so it is
higher-is-better like every estimator and reads the same whatever the labels' scale. Only the order of
the labels is learnt, which is what Kendall tau on held-out cells asks of it: on NB201, 100 labels rank
the rest of a 1,000-cell pool at tau 0.844, against 0.830 for trees fitted to the labels' ranks from the
same features (docs/results/predictors.md). With a prior (a training-free ensemble's members), the
prediction is multiplied by their standing among the training architectures, weighted as PRIOR_LABELS
labels: it carries the ranking while labels are few and fades as they arrive.

A fitted predictor is one JSON document (:class:`PredictorModel`): the space, the truth column, the
feature names, the training architectures with their labels and scores (the references predictions are
made against), the seed, the LightGBM parameters and version, and LightGBM's own text model. Nothing is
pickled; loading parses JSON and LightGBM's text format.
"""

from __future__ import annotations

import functools
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from archscore.estimators.spaces.base import FEATURES, Arch, SearchSpace, get_space

FORMAT = "archscore-predictor/3"
# 1: trees fitted to the labels' ranks, no training scores (refused); 2: no prior (read as prior=())
READABLE = ("archscore-predictor/2", FORMAT)
MODEL_FILE = "predictor.json"  # the file a predictor directory holds

# The zero-shot estimators a predictor reads by default: the members of both versions of ensemble:default
# (zico, jacob_cov, meco, swap_reg; az_expressivity, az_trainability, synflow) and three that cost no batch
# gradient (params, flops, layers). On NB201 (928 cells of sample(1000, seed 0), 10 splits, N = 100), the
# first seven gave tau 0.842, these ten 0.850; adding az_progressivity, relu_logdet, swap, epe_nas and
# linear_regions 0.852, and leaving out jacob_cov lost 0.007.
DEFAULT_ESTIMATORS = (
    "params",
    "flops",
    "layers",
    "zico",
    "jacob_cov",
    "meco",
    "swap_reg",
    "az_expressivity",
    "az_trainability",
    "synflow",
)

# The one-shot estimators a predictor also reads by default where a supernet of the space is at hand (the
# newest complete checkpoint of the supernet directory, else the one archscore ships:
# archscore.estimators.one_shot.registry.resolve). On NB201 (the built-in supernet, the pool's 10 splits at
# N = 100) they lift tau from 0.847 to 0.856; through the command line, 0.838 to 0.853.
DEFAULT_ONE_SHOT = ("oneshot_acc", "oneshot_loss")


def default_estimators(with_supernet: bool) -> tuple[str, ...]:
    """The estimators a predictor reads when none are named: DEFAULT_ESTIMATORS, and DEFAULT_ONE_SHOT when a
    supernet of the space is at hand."""
    return DEFAULT_ESTIMATORS + (DEFAULT_ONE_SHOT if with_supernet else ())


# Trees with a slow learning rate, fitted on up to MAX_PAIRS ordered pairs (every pair up to 141 training
# architectures; beyond, a sample drawn with the seed: on NB201 at N = 400, 20,000 pairs fit in about 4 s
# and rank 0.005 better than 10,000). One thread and LightGBM's deterministic mode make a fit a function of
# its data and seed.
PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 20,
    "min_data_in_bin": 1,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "deterministic": True,
    "num_threads": 1,
    "verbose": -1,
}
ROUNDS = 300
# The prior (a training-free ensemble's members, ranked among the training architectures) weighs as much as
# this many labels: its weight is PRIOR_LABELS / N. On the NB201 pool (10 splits) it lifts N = 10 from tau
# 0.712 to 0.775 and N = 25 from 0.779 to 0.802, and moves N >= 100 by under 0.005; 25 labels did better on
# NB201 but cost up to 0.03 on NB301, whose ensemble is weaker (docs/results/predictors.md).
PRIOR_LABELS = 10.0
MAX_PAIRS = 20_000
PREDICT_ROWS = 50_000  # pairs scored per call to LightGBM: bounds the memory of a large query
MIN_TRAIN = 5  # fewer labelled architectures fit nothing a ranking can use


class PredictorError(ValueError):
    """A predictor that cannot be fitted or read; the message says which input and why."""


class PredictorModel(BaseModel):
    """A fitted predictor, as saved (``predictor.json``) and as the service stores it."""

    model_config = ConfigDict(frozen=True)

    format: str = FORMAT
    space: str
    truth: str = Field(description="the labels' source: a ground-truth column or the table given")
    estimators: tuple[str, ...] = Field(
        description="the estimators whose scores are features: zero-shot ones, and one-shot ones of the supernet "
        "protocol.oneshot names"
    )
    encoding: tuple[str, ...] = Field(description="the space's encoding features used (empty: none)")
    protocol: dict[str, Any] = Field(description="the protocol the estimators' scores are computed under")
    train: tuple[str, ...] = Field(description="the training architectures, as the space writes them")
    labels: tuple[float, ...]
    scores: tuple[tuple[float | None, ...], ...] = Field(
        default=(), description="the training architectures' scores of the estimators, in their order"
    )
    prior: tuple[str, ...] = Field(
        default=(),
        description="the estimators (among estimators) whose ranks among the training architectures are the "
        "prior: a training-free ensemble's members; empty: no prior",
    )
    prior_weight: float = Field(default=0.0, description="the prior's weight: PRIOR_LABELS / training architectures")
    seed: int
    params: dict[str, Any]
    rounds: int
    library: str = Field(description="the LightGBM version that fitted the trees")
    model: str = Field(description="LightGBM's text model")

    @property
    def feature_names(self) -> list[str]:
        return [*self.estimators, *self.encoding]

    def predict(self, space: SearchSpace, archs: Sequence[Arch], scores: Sequence[Mapping[str, float | None]]):
        """The fraction of the training architectures each architecture is expected to beat, given its
        scores under ``protocol``, times the prior (:meth:`prior_factors`)."""
        self.check_space(space)
        booster = _booster(self.model)
        query = feature_matrix(space, archs, scores, self.estimators, bool(self.encoding))
        references = self._references(space)
        per_call = max(1, PREDICT_ROWS // len(references))
        out: list[float] = []
        for start in range(0, len(query), per_call):
            chunk = query[start : start + per_call]
            first = np.repeat(chunk, len(references), axis=0)
            second = np.tile(references, (len(chunk), 1))
            wins = booster.predict(pair_rows(first, second), num_threads=1).reshape(len(chunk), len(references))
            out += [float(v) for v in wins.mean(axis=1)]
        if self.prior:
            out = [v * f for v, f in zip(out, self.prior_factors(scores), strict=True)]
        return out

    def prior_factors(self, scores: Sequence[Mapping[str, float | None]]) -> list[float]:
        """Each architecture's prior: the geometric mean over the prior's members of the fraction u of the
        training architectures it outscores (ties count half; u = (below + ties / 2 + 1/2) / (N + 1), so
        never 0 or 1; a missing score is below every other, as in the ensembles), raised to
        ``prior_weight``. It is AZ-NAS's sum of log(rank / N), its ranks taken among the training set so
        that an architecture's value never depends on the others queried with it."""
        columns = [self.estimators.index(name) for name in self.prior]
        n = len(self.train)
        logs = np.zeros(len(scores))
        for column, name in zip(columns, self.prior, strict=True):
            train = np.sort([_ranked(row[column]) for row in self.scores])
            query = np.asarray([_ranked(_number(row.get(name))) for row in scores])
            below = np.searchsorted(train, query, "left")
            ties = np.searchsorted(train, query, "right") - below
            logs += np.log((below + ties / 2 + 0.5) / (n + 1))
        return [float(v) for v in np.exp(self.prior_weight * logs / len(columns))]

    def _references(self, space: SearchSpace) -> np.ndarray:
        """The training architectures' feature rows, built once per process for a fitted predictor."""
        return _reference_rows(space.name, self.train, self.scores, self.estimators, bool(self.encoding))

    def check_space(self, space: SearchSpace) -> None:
        """Raise :class:`PredictorError` unless this predictor can rank ``space``: one fitted by an earlier
        version of archscore (another format, or encoding features this version no longer computes) must be
        fitted again; the training set stays in the file."""
        if self.format not in READABLE:
            raise PredictorError(
                f"the predictor is in format {self.format!r}, fitted by an earlier version of archscore (this one "
                f"reads {FORMAT!r}): fit it again"
            )
        if space.name != self.space:
            raise PredictorError(f"the predictor ranks {self.space}, not {space.name}")
        if self.encoding and tuple(self.encoding) != space.feature_names():
            raise PredictorError(
                f"the predictor was fitted on {len(self.encoding)} encoding features of {self.space} that this "
                f"version of archscore no longer computes (it has {len(space.feature_names())}): fit it again"
            )

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``predictor.json`` into ``directory`` (created), atomically; returns its path."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / MODEL_FILE
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".predictor-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            f.write(self.model_dump_json(indent=1))
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would keep it from the others a saved file is for
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PredictorModel:
        """Read a predictor directory (or its ``predictor.json``)."""
        file = Path(path)
        if file.is_dir():
            file = file / MODEL_FILE
        try:
            data = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise PredictorError(f"{file}: not a predictor file ({exc})") from None
        if not isinstance(data, dict) or not str(data.get("format", "")).startswith("archscore-predictor/"):
            raise PredictorError(f"{file}: format must be {FORMAT!r}")
        if data["format"] not in READABLE:
            raise PredictorError(
                f"{file}: format {data['format']!r} was written by an earlier version of archscore (this one reads "
                f"{FORMAT!r}): fit it again"
            )
        return cls.model_validate(data)


@functools.lru_cache(maxsize=32)
def _booster(model: str):
    """LightGBM's trees parsed from their text once per process (a service answers many requests with one)."""
    import lightgbm

    return lightgbm.Booster(model_str=model)


@functools.lru_cache(maxsize=32)
def _reference_rows(
    space: str,
    train: tuple[str, ...],
    scores: tuple[tuple[float | None, ...], ...],
    estimators: tuple[str, ...],
    encoding: bool,
) -> np.ndarray:
    sp = get_space(space)
    rows = [dict(zip(estimators, values, strict=True)) for values in scores]
    return feature_matrix(sp, [sp.parse(a) for a in train], rows, estimators, encoding)


def pair_rows(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The trees' input for ordered pairs: the features of the first, of the second, and their difference."""
    return np.hstack([first, second, first - second])


def training_pairs(labels: Sequence[float], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (first, second) of the ordered pairs of training architectures whose labels differ: all of
    them, or MAX_PAIRS drawn with ``seed`` where there are more."""
    values = np.asarray(labels, dtype=np.float64)
    first, second = np.nonzero(values[:, None] != values[None, :])
    if len(first) > MAX_PAIRS:
        keep = np.sort(np.random.default_rng(seed).choice(len(first), MAX_PAIRS, replace=False))
        first, second = first[keep], second[keep]
    return first, second


def prior_members(space: str, prior: str | None, estimators: Sequence[str]) -> tuple[str, ...]:
    """The members of the prior a user names: an ensemble of the catalog (``ensemble:NAME``: its members
    join the estimators); ``auto`` (or None): the space's built-in one
    (:func:`archscore.estimators.catalog.space_ensemble`) when ``estimators`` hold all its members, so that
    the prior never adds scoring, else none; ``none``: no prior."""
    from archscore.estimators.catalog import POPULATION, space_ensemble

    if prior is None or prior == "auto":
        members = space_ensemble(space).members
        return members if set(members) <= set(estimators) else ()
    if prior == "none":
        return ()
    info = POPULATION.get(prior)
    if info is None or not prior.startswith("ensemble:"):
        known = ", ".join(n for n in POPULATION if n.startswith("ensemble:"))
        raise PredictorError(f"prior: {prior!r} is not an ensemble; give auto, none or one of {known}")
    return info.members


def _ranked(value: float | None) -> float:
    """A score as the ensembles rank it: a missing one below every other."""
    return -math.inf if value is None else value


def _number(value: float | None) -> float | None:
    """A score as JSON keeps it: None where undefined (NaN is not JSON)."""
    return None if value is None or not math.isfinite(float(value)) else float(value)


def feature_matrix(
    space: SearchSpace,
    archs: Sequence[Arch],
    scores: Sequence[Mapping[str, float | None]],
    estimators: Sequence[str],
    encoding: bool,
) -> np.ndarray:
    """One row per architecture: its scores of ``estimators`` (NaN where undefined or infinite: LightGBM's
    missing value) and, with ``encoding``, the space's encoding features."""
    rows = []
    for arch, row in zip(archs, scores, strict=True):
        values = [math.nan if (v := _number(row.get(name))) is None else v for name in estimators]
        if encoding:
            values += list(space.encoding_features(arch))
        rows.append(values)
    width = len(estimators) + (len(space.feature_names()) if encoding else 0)
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), width)


def fit(
    space: SearchSpace,
    archs: Sequence[Arch],
    labels: Sequence[float],
    scores: Sequence[Mapping[str, float | None]],
    *,
    estimators: Sequence[str],
    truth: str,
    protocol: Mapping[str, Any],
    seed: int = 0,
    encoding: bool = True,
    prior: Sequence[str] = (),
) -> PredictorModel:
    """Fit trees to the order of ``labels`` from the architectures' ``scores`` (of ``estimators``) and,
    with ``encoding`` and where the space has them, its encoding features. ``prior``: estimators among
    ``estimators`` whose ranks among the training architectures multiply the trees' predictions, with the
    weight PRIOR_LABELS / N (see :meth:`PredictorModel.prior_factors`)."""
    import lightgbm

    if len(archs) != len(labels) or len(archs) != len(scores):
        raise PredictorError(f"{len(archs)} architectures, {len(labels)} labels and {len(scores)} score rows")
    if len(archs) < MIN_TRAIN:
        raise PredictorError(f"train: {len(archs)} labelled architectures; at least {MIN_TRAIN} are needed")
    if len(set(labels)) < 2:
        raise PredictorError("labels: every training architecture has the same label; nothing can be ranked")
    if not all(math.isfinite(v) for v in labels):
        raise PredictorError("labels: every label must be a finite number")
    encoding = encoding and space.has(FEATURES)
    if not estimators and not encoding:
        raise PredictorError(f"estimators: none given, and {space.name} has no encoding features")
    outside = [name for name in prior if name not in estimators]
    if outside:
        raise PredictorError(f"prior: {', '.join(outside)} not among the estimators, whose scores it ranks")
    x = feature_matrix(space, archs, scores, estimators, encoding)
    first, second = training_pairs(labels, seed)
    wins = (np.asarray(labels)[first] > np.asarray(labels)[second]).astype(np.float64)
    params = {**PARAMS, "seed": seed}
    pairs = lightgbm.Dataset(pair_rows(x[first], x[second]), wins, params={"verbose": -1})
    booster = lightgbm.train(params, pairs, ROUNDS)
    return PredictorModel(
        space=space.name,
        truth=truth,
        estimators=tuple(estimators),
        encoding=space.feature_names() if encoding else (),
        protocol=dict(protocol),
        train=tuple(space.to_string(a) for a in archs),
        labels=tuple(float(v) for v in labels),
        scores=tuple(tuple(_number(row.get(name)) for name in estimators) for row in scores),
        prior=tuple(prior),
        prior_weight=PRIOR_LABELS / len(archs) if prior else 0.0,
        seed=seed,
        params=params,
        rounds=ROUNDS,
        library=f"lightgbm {lightgbm.__version__}",
        model=booster.model_to_string(),
    )
