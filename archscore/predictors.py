"""``archscore.Predictor``: a few-shot accuracy predictor with NASLib's predictor interface
(``fit(xtrain, ytrain)``, ``query(xtest)``), so a NAS loop written for NASLib's predictors can use it.

It scores the architectures it is given with its estimators (reusing a score file when one is named) and
fits or queries the trees of archscore.estimators.predictor. The features are zero-shot scores and, when
the protocol names a supernet (``protocol.oneshot``), may include its one-shot scores.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from archscore.estimators.catalog import ONE_SHOT, ZERO_SHOT
from archscore.estimators.predictor import PredictorError, PredictorModel, default_estimators, fit, prior_members
from archscore.estimators.protocol import OneShotSettings, Protocol
from archscore.estimators.spaces import DEFAULT_SPACE
from archscore.estimators.spaces.base import Arch, EncodingError, SearchSpace, get_space
from archscore.library import ProgressCallback

__all__ = ["Predictor", "PredictorError"]


class Predictor:
    """Fit on labelled architectures, then rank any others of the space.

    ``estimators``: the estimators whose scores are features: zero-shot ones, and the one-shot ones
    (``oneshot_acc``, ``oneshot_loss``) of the supernet ``protocol.oneshot`` names, whose checkpoint is in
    ``supernet_dir`` (default: ARCHSCORE_SUPERNET_DIR's folder) or built in; without ``protocol.oneshot``,
    the newest complete supernet of the space there, else the built-in one, with the default one-shot
    evaluation. Default: ``archscore.estimators.predictor.default_estimators``, the one-shot ones included
    where the space has a supernet. ``encoding``: add the space's encoding
    features; ``prior``: the training-free ensemble the trees' predictions lean on while labels are few
    (``auto``: the space's built-in one where ``estimators`` hold its members; ``none``; or an
    ``ensemble:NAME``, its members added to the estimators); ``truth``: the ground-truth column (or
    table ``path[:column]``) that labels ``fit`` when no ``ytrain`` is given; ``scores_file``: a
    JSON-lines score file (``archscore score --out``) read before scoring and appended to. ``protocol``,
    ``device``, ``jobs`` and ``progress`` are those of :func:`archscore.score`.
    """

    def __init__(
        self,
        space: str = DEFAULT_SPACE,
        estimators: Sequence[str] | None = None,
        truth: str | None = None,
        protocol: Protocol | Mapping[str, Any] | None = None,
        seed: int = 0,
        encoding: bool = True,
        scores_file: str | os.PathLike[str] | None = None,
        device: str = "auto",
        jobs: int = 1,
        progress: ProgressCallback | None = None,
        prior: str | None = "auto",
        supernet_dir: str | os.PathLike[str] | None = None,
    ):
        self.space: SearchSpace = get_space(space)
        self.protocol = protocol if isinstance(protocol, Protocol) else Protocol.model_validate(dict(protocol or {}))
        if supernet_dir is None:
            from archscore.estimators.one_shot.registry import default_supernet_dir

            supernet_dir = default_supernet_dir()
        self.supernet_dir = supernet_dir
        if estimators is None:
            estimators = default_estimators(self.protocol.oneshot is not None or self._supernet() is not None)
        self.prior = prior_members(self.space.name, prior, estimators)
        estimators = [*estimators, *self.prior]
        unknown = [n for n in estimators if n not in ZERO_SHOT and n not in ONE_SHOT]
        if unknown:
            raise PredictorError(
                f"estimators: {', '.join(unknown)}: not a zero-shot estimator; features are the scores of: "
                + ", ".join(ZERO_SHOT)
                + " (and, with protocol.oneshot, "
                + ", ".join(ONE_SHOT)
                + ")"
            )
        one_shot = [n for n in estimators if n in ONE_SHOT]
        if one_shot and self.protocol.oneshot is None:
            checkpoint = self._supernet()
            if checkpoint is None:
                raise PredictorError(
                    f"estimators: {', '.join(one_shot)}: a one-shot estimator needs a supernet: protocol.oneshot, or "
                    f"a complete checkpoint of {self.space.name} in {self.supernet_dir}"
                )
            settings = OneShotSettings(supernet=checkpoint["sha256"], post_deiso=not self.protocol.per_member)
            self.protocol = Protocol.model_validate({**self.protocol.model_dump(), "oneshot": settings.model_dump()})
        self.estimators = tuple(dict.fromkeys(estimators))
        self.truth = truth or (self.space.ground_truth_columns[0] if self.space.ground_truth_columns else None)
        self.seed, self.encoding = seed, encoding
        self.scores_file, self.device, self.jobs, self.progress = scores_file, device, jobs, progress
        self.model: PredictorModel | None = None

    def _supernet(self) -> dict | None:
        """The supernet one-shot features read without protocol.oneshot (registry.unnamed_supernet)."""
        from archscore.estimators.one_shot.registry import unnamed_supernet

        return unnamed_supernet(Path(self.supernet_dir), self.space.name)

    @classmethod
    def load(cls, path: str | os.PathLike[str], **runtime: Any) -> Predictor:
        """A saved predictor (its directory or ``predictor.json``); ``runtime``: scores_file, device, jobs,
        progress, supernet_dir."""
        model = PredictorModel.load(path)
        model.check_space(get_space(model.space))
        predictor = cls(
            model.space,
            model.estimators,
            model.truth,
            model.protocol,
            model.seed,
            bool(model.encoding),
            prior="none",
            **runtime,
        )
        predictor.prior, predictor.model = model.prior, model
        return predictor

    def save(self, directory: str | os.PathLike[str]) -> str:
        """Write the fitted predictor to ``directory/predictor.json``; returns that path."""
        return str(self._fitted().save(directory))

    def fit(self, xtrain: Sequence[Any], ytrain: Sequence[float] | None = None, train_info: Any = None) -> Predictor:
        """Fit on ``xtrain`` (any encodings of the space) labelled by ``ytrain``, or by the truth column when
        ``ytrain`` is None. ``train_info`` is accepted for NASLib's interface and unused."""
        archs = self._parse(xtrain)
        truth = "given" if ytrain is not None else self.truth
        if ytrain is None:
            ytrain = self._labels(archs)
        elif len(ytrain) != len(archs):
            raise PredictorError(f"ytrain: {len(ytrain)} labels for {len(archs)} architectures")
        self.model = fit(
            self.space,
            archs,
            ytrain,
            self.scores(archs),
            estimators=self.estimators,
            truth=truth or "given",
            protocol=self.protocol.model_dump(mode="json"),
            seed=self.seed,
            encoding=self.encoding,
            prior=self.prior,
        )
        return self

    def query(self, xtest: Sequence[Any], info: Any = None) -> list[float]:
        """The predicted score of each architecture of ``xtest``: higher is better (the fraction of the
        training architectures it is expected to beat, times the prior). ``info`` is accepted for NASLib's
        interface."""
        archs = self._parse(xtest)
        return self._fitted().predict(self.space, archs, self.scores(archs))

    def scores(self, archs: Sequence[Arch]) -> list[dict[str, float | None]]:
        """The feature estimators' scores of ``archs`` (parsed), as the service gives them: per isomorphism
        class, its representative's (from the score file where it holds them, scored otherwise and then
        appended to it), except params and flops, which are the architecture's own. Zero-shot scores are
        taken under the protocol without its one-shot settings, which do not change them, so the score file
        shares them with zero-shot predictors and ``archscore score``."""
        from archscore.estimators.protocol import PER_ARCHITECTURE

        rows: list[dict[str, float | None]] = [{} for _ in archs]
        zero_shot = self.protocol.model_copy(update={"oneshot": None})
        for protocol, names in (
            (zero_shot, [n for n in self.estimators if n in ZERO_SHOT]),
            (self.protocol, [n for n in self.estimators if n in ONE_SHOT]),
        ):
            own = [n for n in names if n in PER_ARCHITECTURE]
            shared = [n for n in names if n not in PER_ARCHITECTURE]
            if own:
                for row, record in zip(rows, self._score(archs, own, protocol)):
                    row.update(record.scores)
            if shared:
                by_class = self._class_scores(archs, shared, protocol)
                for row, arch in zip(rows, archs):
                    row.update(by_class[self._class_key(arch)])
        return [{n: row[n] for n in self.estimators} for row in rows]

    def _class_key(self, arch: Arch) -> str:
        return self.space.to_string(arch) if self.protocol.per_member else self.space.canonical_key(arch)

    def _class_scores(
        self, archs: Sequence[Arch], names: list[str], protocol: Protocol
    ) -> dict[str, dict[str, float | None]]:
        from archscore.estimators.protocol import scored_arch
        from archscore.estimators.score_file import ScoreFile

        cache = ScoreFile(self.scores_file, self.space.name, protocol.hash()) if self.scores_file else None
        held: dict[str, dict[str, float | None]] = {}
        # the classes the file lacks scores of, by the names they lack: each group is scored for those only
        lacking: dict[tuple[str, ...], dict[str, Arch]] = {}
        for arch in archs:
            key = self._class_key(arch)
            if key in held:
                continue
            held[key] = cache.get(key, names) if cache else {}
            missing = tuple(n for n in names if n not in held[key])
            if missing:
                lacking.setdefault(missing, {})[key] = scored_arch(self.space, arch, self.protocol.per_member)
        for missing, group in lacking.items():
            records = self._score(list(group.values()), list(missing), protocol)
            for key, record in zip(group, records):
                held[key].update(record.scores)
            if cache:
                cache.add([{"arch": r.arch, "canonical_key": k, "scores": r.scores} for k, r in zip(group, records)])
        return held

    def _score(self, archs: Sequence[Arch], names: list[str], protocol: Protocol):
        from archscore.library import score

        if not archs:
            return []
        return score(
            [self.space.to_json(a) for a in archs],
            space=self.space.name,
            estimators=names,
            protocol=protocol,
            device=self.device,
            jobs=self.jobs,
            progress=self.progress,
            supernet_dir=self.supernet_dir,
        )

    def _fitted(self) -> PredictorModel:
        if self.model is None:
            raise PredictorError("the predictor is not fitted: call fit first (or Predictor.load)")
        return self.model

    def _parse(self, encodings: Sequence[Any]) -> list[Arch]:
        archs = []
        for i, encoding in enumerate(encodings):
            try:
                archs.append(self.space.parse_local(encoding))
            except EncodingError as exc:
                raise EncodingError(f"archs[{i}]: {exc}") from None
        return archs

    def _labels(self, archs: Sequence[Arch]) -> list[float]:
        from archscore.estimators.truth import resolve_truth

        if self.truth is None:
            raise PredictorError(
                f"{self.space.name} has no built-in ground truth: pass ytrain or truth='path[:column]'"
            )
        table = resolve_truth(self.space.name, self.truth)
        labels = [table.get(a) for a in archs]
        for i, label in enumerate(labels):
            if label is None:
                raise PredictorError(f"xtrain[{i}]: no {table.column} value for {self.space.to_string(archs[i])}")
        return labels  # type: ignore[return-value]
