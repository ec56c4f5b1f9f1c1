"""Uploaded ONNX models (the onnx space) for the service: checked torch-free (parsing, operators, input
shape: archscore.estimators.spaces.onnx.model), kept in Redis under their sha256 (base64 of their bytes,
archscore.contract.store) so that workers on any host fetch them, bounded in number (max_models) and size
(max_model_bytes); an architecture of the onnx space is the sha256 of an uploaded model."""

from __future__ import annotations

import base64
import json

from redis.asyncio import Redis
from starlette.concurrency import run_in_threadpool

from archscore.contract import store
from archscore.contract.settings import Settings
from archscore.estimators.spaces.base import EncodingError
from archscore.estimators.spaces.onnx import model as onnx_model
from archscore.service.errors import ApiError


async def upload(redis: Redis, settings: Settings, body: bytes) -> dict:
    """Check a model's bytes and keep it (again: the same bytes are the same model); its description.
    413 past max_model_bytes, 422 naming what is refused, 507 when max_models are kept."""
    if len(body) > settings.max_model_bytes:
        too_large = f"{len(body)} bytes, at most {settings.max_model_bytes} (ARCHSCORE_MAX_MODEL_BYTES)"
        raise ApiError(413, "model too large", [("body", too_large)])
    if not body:
        raise ApiError(422, "invalid ONNX model", [("body", "empty: send the model's bytes")])
    try:
        info = await run_in_threadpool(onnx_model.inspect, body)
    except EncodingError as exc:
        raise ApiError(422, "invalid ONNX model", [("body", str(exc))]) from None
    described = info.to_dict()
    kept = await redis.hkeys(store.models_key())
    if info.sha256 not in kept and len(kept) >= settings.max_models:
        raise ApiError(
            507,
            "no room for another model",
            [
                (
                    "body",
                    f"{len(kept)} models are kept, at most {settings.max_models} (ARCHSCORE_MAX_MODELS): "
                    "delete one with DELETE /v1/models/{sha256}",
                )
            ],
        )
    pipe = redis.pipeline()
    pipe.set(store.model_key(info.sha256), base64.b64encode(body).decode("ascii"))
    pipe.hset(store.models_key(), info.sha256, json.dumps(described))
    await pipe.execute()
    return described


async def describe(redis: Redis, sha256: str) -> dict:
    raw = await redis.hget(store.models_key(), sha256.lower())
    if raw is None:
        raise ApiError(404, f"no uploaded model with sha256 {sha256}")
    return json.loads(raw)


async def delete(redis: Redis, sha256: str) -> None:
    sha256 = sha256.lower()
    pipe = redis.pipeline()
    pipe.delete(store.model_key(sha256))
    pipe.hdel(store.models_key(), sha256)
    _, removed = await pipe.execute()
    if not removed:
        raise ApiError(404, f"no uploaded model with sha256 {sha256}")


async def missing(redis: Redis, archs: list) -> list[tuple[str, str]]:
    """The problems of a request's onnx architectures: each must be the sha256 of an uploaded model."""
    shas = [a.strip().lower() if isinstance(a, str) else a for a in archs]
    wanted = [s for s in shas if isinstance(s, str) and onnx_model.SHA256.match(s)]
    present = dict(zip(wanted, await redis.hmget(store.models_key(), wanted))) if wanted else {}
    return [
        (f"archs[{i}]", f"no uploaded model with sha256 {s}; upload it with POST /v1/models")
        for i, s in enumerate(shas)
        if isinstance(s, str) and present.get(s, "") is None
    ]
