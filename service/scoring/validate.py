"""Step 1: validate a score request. Every problem at once, as 422 details naming the field; nothing is
stored. Each architecture is parsed here, once, into an ArchRecord that the later steps carry."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from redis.asyncio import Redis
from starlette.concurrency import run_in_threadpool

from archscore.contract import store
from archscore.contract.settings import Settings
from archscore.estimators.catalog import ESTIMATORS, PREDICTOR_PREFIX, is_one_shot, is_predictor, scored_estimators
from archscore.estimators.datasets import training_images_available
from archscore.estimators.one_shot.registry import CheckpointError, resolve
from archscore.estimators.predictor import PredictorError, PredictorModel
from archscore.estimators.protocol import Protocol, cache_key
from archscore.estimators.spaces import DEFAULT_SPACE, get_space
from archscore.estimators.spaces.base import SUPERNET, UPLOADED, Arch, SearchSpace
from archscore.service import models
from archscore.service.analytic import analytic_names, analytic_values
from archscore.service.deps import Caller
from archscore.service.errors import ApiError
from archscore.service.schemas import ScoreRequest
from archscore.service.truth_tables import stored_name

Details = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class ArchRecord:
    """One requested architecture, as every later step needs it."""

    arch: Arch  # parsed
    text: str  # its string form (how results and the cache name it)
    cache_key: str  # its isomorphism class's canonical key, or with per_member its string form
    truth_key: str  # the key of its ground truth (SearchSpace.truth_key)
    cost: dict[str, float] = field(default_factory=dict)  # params and flops when asked for (API-computed)


def arch_record(space: SearchSpace, arch: Arch, per_member: bool, analytic: list[str], classes: int) -> ArchRecord:
    return ArchRecord(
        arch=arch,
        text=space.to_string(arch),
        cache_key=cache_key(space, arch, per_member),
        truth_key=space.truth_key(arch),
        cost=analytic_values(space, arch, analytic, classes),
    )


@dataclass(frozen=True)
class ValidRequest:
    space: SearchSpace
    archs: list[ArchRecord]
    estimators: list[str]  # each once, in the order asked
    analytic: list[str]  # those of them the API computes itself
    protocol: Protocol
    protocol_fields: dict  # protocol.model_dump(): what the job records and the cache keeps
    protocol_hash: str
    truth: str | None  # the stored name of the ground-truth column (archscore.service.truth_tables)
    predictors: dict[str, PredictorModel] = field(default_factory=dict)  # predictor:NAME -> its fitted model

    def features(self) -> dict[str, list[str]]:
        """The estimators each predictor asked for reads (what ScoreJob.predictors records)."""
        return {name: list(model.estimators) for name, model in self.predictors.items()}

    def with_archs(self, archs: list[Arch]) -> ValidRequest:
        """The same request for other architectures of its space (a study's derived members)."""
        per_member, classes = self.protocol.per_member, self.protocol.num_classes
        records = [arch_record(self.space, a, per_member, self.analytic, classes) for a in archs]
        return ValidRequest(
            self.space,
            records,
            self.estimators,
            self.analytic,
            self.protocol,
            self.protocol_fields,
            self.protocol_hash,
            self.truth,
            self.predictors,
        )

    def with_protocol(self, protocol: Protocol) -> ValidRequest:
        """The same architectures under another protocol (a study's derived protocols); the records
        are rebuilt when the protocol changes what a score is cached under or the cost's classes."""
        archs = self.archs
        if (protocol.per_member, protocol.num_classes) != (self.protocol.per_member, self.protocol.num_classes):
            archs = [
                arch_record(self.space, r.arch, protocol.per_member, self.analytic, protocol.num_classes) for r in archs
            ]
        return ValidRequest(
            self.space,
            archs,
            self.estimators,
            self.analytic,
            protocol,
            *_fields_and_hash(protocol),
            self.truth,
            self.predictors,
        )


async def validate(request: ScoreRequest, settings: Settings, redis: Redis, caller: Caller) -> ValidRequest:
    """The request checked and canonicalised; uploaded truth tables, predictors and supernet checkpoints
    are looked up among the caller's. ApiError 422 with every problem otherwise."""
    owner = caller.owner
    details: Details = []
    try:
        space = get_space(request.space)
    except KeyError as exc:
        raise ApiError(422, "unknown search space", [("space", exc.args[0])]) from None
    if len(request.archs) > settings.max_archs_per_request:
        raise ApiError(
            422,
            "too many architectures",
            [("archs", f"{len(request.archs)} given, at most {settings.max_archs_per_request} per request")],
        )
    for i, name in enumerate(request.estimators):
        if is_predictor(name):
            continue  # looked up below
        if name not in ESTIMATORS:
            details.append((f"estimators[{i}]", f"unknown estimator {name!r}"))
        elif is_one_shot(name) and not space.has(SUPERNET):
            details.append((f"estimators[{i}]", f"search space {space.name} has no supernet for one-shot estimators"))
    weights_sha256 = None
    if request.protocol.weights is not None:
        if space.has(SUPERNET) and space.supernet_transfers_weights:
            weights_sha256 = await _checkpoint(
                "protocol.weights", request.protocol.weights, space, settings, caller, details
            )
        else:
            details.append(
                (
                    "protocol.weights",
                    f"search space {space.name} has no supernet whose weights its standalone networks can take",
                )
            )
    estimators = list(dict.fromkeys(request.estimators))
    predictors = await _predictors(redis, owner, request.estimators, space, details)
    features = {name: list(model.estimators) for name, model in predictors.items()}
    supernet_sha256 = None  # the checkpoint of the one-shot estimators asked for, or read by a predictor asked for
    if any(is_one_shot(n) for n in [*request.estimators, *itertools.chain(*features.values())]) and space.has(SUPERNET):
        supernet_sha256 = await _checkpoint(
            "protocol.oneshot.supernet", request.protocol.oneshot.supernet, space, settings, caller, details
        )
    analytic = analytic_names(space, estimators, features)
    # the protocol built below copies these two fields of the request's
    per_member, classes = request.protocol.per_member, 100 if request.protocol.dataset == "cifar100" else 10
    archs: list[ArchRecord] = []
    for i, encoding in enumerate(request.archs):
        try:
            archs.append(arch_record(space, space.parse(encoding), per_member, analytic, classes))
        except ValueError as exc:
            details.append((f"archs[{i}]", str(exc)))
    if space.has(UPLOADED):  # each the sha256 of an uploaded model
        details += await models.missing(redis, request.archs)
    details += data_problems(request.protocol, settings)
    details += work_problems(estimators, [request.protocol], space, settings, len(request.archs), features=features)
    truth = request.truth_column(space)
    if truth is not None and not await truth_exists(redis, space, stored_name(space, truth, owner)):
        details.append(("truth", f"no ground-truth column {truth!r} for {space.name}"))
    if details:
        message = "invalid request"
        if any(name.startswith("estimators") for name, _ in details):
            message += f"; available estimators: {', '.join(ESTIMATORS)}"
        raise ApiError(422, message, details)
    protocol = request.protocol.to_protocol(settings.cifar_root, supernet_sha256, weights_sha256)
    fields, protocol_hash = _fields_and_hash(protocol)
    for i, name in enumerate(request.estimators):
        model = predictors.get(name)
        if model is not None and Protocol(**model.protocol).hash() != protocol_hash:
            details.append(
                (
                    f"estimators[{i}]",
                    f"{name} reads scores under protocol {Protocol(**model.protocol).hash()}, this request's is "
                    f"{protocol_hash}: send the protocol it was fitted with (GET /v1/predictors/"
                    f"{name.removeprefix(PREDICTOR_PREFIX)})",
                )
            )
    if details:
        raise ApiError(422, "invalid request", details)
    return ValidRequest(
        space,
        archs,
        estimators,
        analytic,
        protocol,
        fields,
        protocol_hash,
        None if truth is None else stored_name(space, truth, owner),
        predictors,
    )


async def _predictors(
    redis: Redis, owner: str, names: list[str], space: SearchSpace, details: Details
) -> dict[str, PredictorModel]:
    """The fitted model of each ``predictor:NAME`` among ``names`` (the caller's), or a detail saying why
    there is none."""
    out: dict[str, PredictorModel] = {}
    for i, name in enumerate(names):
        if not is_predictor(name) or name in out:
            continue
        short = name.removeprefix(PREDICTOR_PREFIX)
        record = store.decode_predictor(await redis.get(store.predictor_key(owner, short)))
        if record is None:
            details.append((f"estimators[{i}]", f"no predictor {short!r} (POST /v1/predictors fits one)"))
        elif record.space != space.name:
            details.append((f"estimators[{i}]", f"predictor {short!r} ranks {record.space}, not {space.name}"))
        elif record.model is None:
            state = record.error or "its training set is still being scored (GET /v1/predictors/" + short + ")"
            details.append((f"estimators[{i}]", f"predictor {short!r} is not fitted: {state}"))
        else:
            model = PredictorModel.model_validate(record.model)
            try:
                model.check_space(space)
            except PredictorError as exc:
                details.append((f"estimators[{i}]", f"predictor {short!r}: {exc}"))
                continue
            out[name] = model
    return out


def _fields_and_hash(protocol: Protocol) -> tuple[dict, str]:
    """The protocol's fields as the job records them, and its hash, from one dump."""
    fields = protocol.model_dump()
    return fields, protocol.hash(fields)


async def _checkpoint(
    name: str, ref: str | None, space: SearchSpace, settings: Settings, caller: Caller, details: Details
) -> str | None:
    """The sha256 of the checkpoint ``ref`` names (default: the newest complete one), which must be a
    supernet of ``space``; else a detail for the field ``name`` and None."""
    try:
        checkpoint = await run_in_threadpool(resolve, settings.supernet_path, ref, space.name, caller.checkpoints)
    except CheckpointError as exc:
        details.append((name, str(exc)))
        return None
    if (checkpoint["space"] or DEFAULT_SPACE) != space.name:
        details.append(
            (name, f"checkpoint {checkpoint['name']!r} is a supernet of {checkpoint['space']}, not of {space.name}")
        )
        return None
    return checkpoint["sha256"]


def work_problems(
    estimators: list[str],
    protocols: list,
    space: SearchSpace,
    settings: Settings,
    count: int,
    name: str = "archs",
    features: dict[str, list[str]] | None = None,
) -> Details:
    """A bound on the work one request may enqueue: architectures x estimators x images each, summed over
    the protocols it scores under (a score request has one; a study may derive several). params and
    flops, answered by the API itself, do not count."""
    names = set(scored_estimators(list(estimators), features)) - set(analytic_names(space, list(estimators), features))
    images = sum(p.batch_size * p.num_batches for p in protocols)
    work = count * len(names) * images
    if work <= settings.max_work_per_request:
        return []
    under = f" under {len(protocols)} protocols" if len(protocols) > 1 else ""
    return [
        (
            name,
            f"{count} architectures x {len(names)} estimators x {images} images{under} = "
            f"{work:,} exceeds this server's bound of {settings.max_work_per_request:,} per request; split it",
        )
    ]


def data_problems(protocol, settings: Settings, name: str = "protocol") -> Details:
    """What the workers could not run: a dataset this server has no data for, or more images per
    architecture than the dataset holds."""
    available = training_images_available(settings.cifar_root)
    if protocol.dataset not in available:
        names = ", ".join(available) or "none"
        return [(f"{name}.dataset", f"{protocol.dataset} is not configured on this server (available: {names})")]
    needed = protocol.batch_size * protocol.num_batches
    if needed > available[protocol.dataset]:
        return [
            (
                f"{name}.batch_size",
                f"batch_size x num_batches = {needed} exceeds the "
                f"{available[protocol.dataset]} training images of {protocol.dataset} on this server",
            )
        ]
    return []


async def truth_exists(redis: Redis, space: SearchSpace, name: str) -> bool:
    return name in space.ground_truth_columns or bool(await redis.exists(store.truth_key(space.name, name)))
