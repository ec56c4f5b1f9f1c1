"""/v1/models: upload, describe and delete ONNX models, the architectures of the onnx space
(archscore.service.models)."""

from __future__ import annotations

from fastapi import Request

from archscore.service import models
from archscore.service.deps import RedisDep, SettingsDep
from archscore.service.routes import v1_router

router = v1_router()


@router.post(
    "/models",
    summary="Upload an ONNX model (the onnx space)",
    description="Body: the model's bytes (application/octet-stream), at most ARCHSCORE_MAX_MODEL_BYTES. The model "
    "is parsed, never run: one float input (N, 3, 32, 32), one output (the logits), supported operators only "
    "(422 naming the first refused operator and its node). Answers its sha256, which is how POST /v1/scores "
    'with space "onnx" names it, its operators and its input shape. Uploading the same bytes again keeps one copy; '
    "at most ARCHSCORE_MAX_MODELS are kept (507 past it; DELETE one).",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "the ONNX model",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def post_model(request: Request, redis: RedisDep, settings: SettingsDep) -> dict:
    return await models.upload(redis, settings, await request.body())


@router.get("/models/{sha256}", summary="An uploaded model: sha256, size, operators, input shape")
async def get_model(sha256: str, redis: RedisDep) -> dict:
    return await models.describe(redis, sha256)


@router.delete("/models/{sha256}", summary="Delete an uploaded model (frees its room under ARCHSCORE_MAX_MODELS)")
async def delete_model(sha256: str, redis: RedisDep) -> dict:
    await models.delete(redis, sha256)
    return {"sha256": sha256.lower(), "deleted": True}
