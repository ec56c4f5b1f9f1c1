"""Few-shot predictors: gradient-boosted trees fitted on a few labelled architectures (torch-free).

The features of an architecture are its zero-shot scores (estimators of the catalog, computed under one
protocol) and, where the space declares them, its encoding features (``SearchSpace.encoding_features``:
one-hot ops, adjacency, op counts), as in NASLib's XGBoost predictor on zero-cost scores. The trees are
LightGBM's. They are fitted to the labels' ranks in the training set, scaled to (0, 1]: a prediction
reads as the fraction of the training architectures the architecture is expected to beat, so it is
higher-is-better like every estimator, and the outliers of the accuracy scale (the 10 % networks of
NAS-Bench-201) weigh no more than any other rank. Kendall tau on held-out cells is what is asked of it.

A fitted predictor is one JSON document (:class:`PredictorModel`): the space, the truth column, the
feature names, the training architectures and labels, the seed, the LightGBM parameters and version, and
LightGBM's own text model. Nothing is pickled; loading parses JSON and LightGBM's text format.
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
from scipy.stats import rankdata

from archscore.estimators.spaces.base import FEATURES, Arch, SearchSpace

FORMAT = "archscore-predictor/1"
MODEL_FILE = "predictor.json"  # the file a predictor directory holds

# The zero-shot estimators a predictor reads by default: the built-in ensemble's members (zico, jacob_cov,
# meco, swap_reg) and three that cost no batch gradient (params, flops, layers). On NB201 (1,000 cells of
# sample(1000, seed 0), 10 splits) adding swap, epe_nas and linear_regions changed Kendall tau at N=100 by
# under 0.001, and leaving out jacob_cov and swap_reg lost 0.02 (benchmarks/predictor.py).
DEFAULT_ESTIMATORS = ("params", "flops", "layers", "zico", "jacob_cov", "meco", "swap_reg")

# Small trees with a slow learning rate: the training sets are 10 to 400 architectures. One thread and
# LightGBM's deterministic mode make a fit a function of its data and seed.
PARAMS: dict[str, Any] = {
    "objective": "regression",
    "learning_rate": 0.05,
    "num_leaves": 7,
    "min_data_in_leaf": 2,
    "min_data_in_bin": 1,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "deterministic": True,
    "num_threads": 1,
    "verbose": -1,
}
ROUNDS = 300
MIN_TRAIN = 5  # fewer labelled architectures fit nothing a ranking can use


class PredictorError(ValueError):
    """A predictor that cannot be fitted or read; the message says which input and why."""


class PredictorModel(BaseModel):
    """A fitted predictor, as saved (``predictor.json``) and as the service stores it."""

    model_config = ConfigDict(frozen=True)

    format: str = FORMAT
    space: str
    truth: str = Field(description="the labels' source: a ground-truth column or the table given")
    estimators: tuple[str, ...] = Field(description="the zero-shot estimators whose scores are features")
    encoding: tuple[str, ...] = Field(description="the space's encoding features used (empty: none)")
    protocol: dict[str, Any] = Field(description="the protocol the estimators' scores are computed under")
    train: tuple[str, ...] = Field(description="the training architectures, as the space writes them")
    labels: tuple[float, ...]
    seed: int
    params: dict[str, Any]
    rounds: int
    library: str = Field(description="the LightGBM version that fitted the trees")
    model: str = Field(description="LightGBM's text model")

    @property
    def feature_names(self) -> list[str]:
        return [*self.estimators, *self.encoding]

    def predict(self, space: SearchSpace, archs: Sequence[Arch], scores: Sequence[Mapping[str, float | None]]):
        """The predicted training-set quantile of each architecture, given its scores under ``protocol``."""
        self.check_space(space)
        booster = _booster(self.model)
        x = feature_matrix(space, archs, scores, self.estimators, bool(self.encoding))
        return [float(v) for v in booster.predict(x, num_threads=1)]

    def check_space(self, space: SearchSpace) -> None:
        """Raise :class:`PredictorError` unless ``space`` gives the features the trees were fitted on (the
        encoding features change between versions of archscore; the training set stays in the file)."""
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
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise PredictorError(f"{file}: format must be {FORMAT!r}")
        return cls.model_validate(data)


@functools.lru_cache(maxsize=32)
def _booster(model: str):
    """LightGBM's trees parsed from their text once per process (a service answers many requests with one)."""
    import lightgbm

    return lightgbm.Booster(model_str=model)


def feature_matrix(
    space: SearchSpace,
    archs: Sequence[Arch],
    scores: Sequence[Mapping[str, float | None]],
    estimators: Sequence[str],
    encoding: bool,
) -> np.ndarray:
    """One row per architecture: its scores of ``estimators`` (NaN where undefined: LightGBM's missing
    value) and, with ``encoding``, the space's encoding features."""
    rows = []
    for arch, row in zip(archs, scores, strict=True):
        values = [math.nan if row.get(name) is None else float(row[name]) for name in estimators]  # type: ignore[arg-type]
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
) -> PredictorModel:
    """Fit trees to the ranks of ``labels`` from the architectures' ``scores`` (of ``estimators``) and,
    with ``encoding`` and where the space has them, its encoding features."""
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
    x = feature_matrix(space, archs, scores, estimators, encoding)
    target = rankdata(labels) / len(labels)
    params = {**PARAMS, "seed": seed}
    booster = lightgbm.train(params, lightgbm.Dataset(x, target, params={"verbose": -1}), ROUNDS)
    return PredictorModel(
        space=space.name,
        truth=truth,
        estimators=tuple(estimators),
        encoding=space.feature_names() if encoding else (),
        protocol=dict(protocol),
        train=tuple(space.to_string(a) for a in archs),
        labels=tuple(float(v) for v in labels),
        seed=seed,
        params=params,
        rounds=ROUNDS,
        library=f"lightgbm {lightgbm.__version__}",
        model=booster.model_to_string(),
    )
