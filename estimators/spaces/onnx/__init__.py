"""ONNX models as a space, in layers: the torch-free check and the content-addressed store (``model``)
at the bottom, the converter into torch layers (``network``) above it, the space (``space``, registered
with the registry) on top. Importing the package registers the space."""

from archscore.estimators.spaces.onnx.model import (
    CHECKS,
    MAX_MODEL_BYTES_ENV,
    MODEL_DIR_ENV,
    SUPPORTED,
    ModelInfo,
    inspect,
    max_model_bytes,
    model_dir,
)
from archscore.estimators.spaces.onnx.space import OnnxSpace

__all__ = [
    "CHECKS",
    "MAX_MODEL_BYTES_ENV",
    "MODEL_DIR_ENV",
    "SUPPORTED",
    "ModelInfo",
    "OnnxSpace",
    "inspect",
    "max_model_bytes",
    "model_dir",
]
