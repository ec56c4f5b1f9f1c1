"""A worker's copy of the uploaded ONNX models it scores (the onnx space): read from Redis, where the API
keeps them (archscore.service.models), into this host's model folder (ARCHSCORE_MODEL_DIR, else
{ARCHSCORE_DATA_DIR}/models), checked against their sha256."""

from __future__ import annotations

import base64
import hashlib

import redis

from archscore.contract import store
from archscore.estimators.spaces.base import EncodingError
from archscore.estimators.spaces.onnx import model as onnx_model


def fetch(r: redis.Redis, sha256: str) -> None:
    """The uploaded model ``sha256`` in this worker's model folder (read from Redis when it is not there);
    EncodingError when it was never uploaded or has been deleted."""
    if onnx_model.model_path(sha256).exists():
        return
    raw = r.get(store.model_key(sha256))
    if raw is None:
        raise EncodingError(f"no uploaded model with sha256 {sha256} (deleted?); upload it with POST /v1/models")
    data = base64.b64decode(raw)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise EncodingError(f"the uploaded model {sha256} does not match its sha256")
    onnx_model.store(data)
