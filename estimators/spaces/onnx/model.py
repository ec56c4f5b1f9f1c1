"""ONNX models as architectures, torch-free: read and check a model (size, operators, attributes, input
shape) and keep it in a content-addressed folder, named by the sha256 of its bytes.

A model is parsed with the ``onnx`` package (protobuf); nothing in it is ever run as code. The checks
here are all a model needs to be converted (``archscore.estimators.spaces.onnx.network``): a model that
passes them converts, so the API process refuses a bad upload without importing torch.

Supported: one float input (N, 3, 32, 32) (N a name or a number: the protocol's CIFAR batches are fed
to it), one output (the logits), the operators of ``CHECKS`` from the default domain, weights stored
inside the model.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archscore.estimators.spaces.base import EncodingError

MAX_MODEL_BYTES_ENV = "ARCHSCORE_MAX_MODEL_BYTES"
MODEL_DIR_ENV = "ARCHSCORE_MODEL_DIR"
DEFAULT_MAX_MODEL_BYTES = 64 * 2**20
INPUT_SHAPE = (3, 32, 32)  # (C, H, W) of the protocol's batches (CIFAR-10/100 images)
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def max_model_bytes() -> int:
    """The size bound of one model: ``ARCHSCORE_MAX_MODEL_BYTES`` when set, else 64 MiB."""
    configured = os.environ.get(MAX_MODEL_BYTES_ENV, "").strip()
    return int(configured) if configured else DEFAULT_MAX_MODEL_BYTES


def model_dir() -> Path:
    """Where models are kept: ``ARCHSCORE_MODEL_DIR``, else ``{ARCHSCORE_DATA_DIR or .archscore}/models``."""
    configured = os.environ.get(MODEL_DIR_ENV, "").strip()
    if configured:
        return Path(configured)
    return Path(os.environ.get("ARCHSCORE_DATA_DIR", "").strip() or ".archscore") / "models"


@dataclass(frozen=True)
class ModelInfo:
    """What a checked model is: its sha256, size, operators (type -> count) and input."""

    sha256: str
    size: int
    operators: dict[str, int]
    input_name: str
    input_shape: tuple[int | str, ...]  # the batch dimension may be a name
    output_name: str
    opset: int
    nodes: int = field(default=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "size": self.size,
            "operators": dict(self.operators),
            "input_name": self.input_name,
            "input_shape": list(self.input_shape),
            "output_name": self.output_name,
            "opset": self.opset,
            "nodes": self.nodes,
        }


# --- the operators, one check each -----------------------------------------------------------------
# Each check gets the node, its attributes (name -> value) and the constant tensors (initializers and
# Constant outputs: name -> shape); it returns a reason when the node cannot be converted.


def _ints(attrs: dict, name: str, default: list[int]) -> list[int]:
    return list(attrs.get(name, default))


def _spatial(attrs: dict, kernel: list[int]) -> str | None:
    """The checks Conv and the pools share: 2-D, explicit symmetric padding, no dilation in pools."""
    if len(kernel) != 2:
        return f"only 2-D kernels are supported, got kernel of rank {len(kernel)}"
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID", "NOTSET", "VALID"):
        return f"auto_pad {attrs['auto_pad']!r} is not supported (export with explicit pads)"
    pads = _ints(attrs, "pads", [0, 0, 0, 0])
    if len(pads) != 4 or pads[:2] != pads[2:]:
        return f"pads {pads} are not supported: only symmetric padding (top = bottom, left = right)"
    return None


def _check_conv(node, attrs: dict, consts: dict[str, list[int]]) -> str | None:
    if len(node.input) < 2 or node.input[1] not in consts:
        return "the weight must be an initializer (a constant of the model)"
    if len(consts[node.input[1]]) != 4:
        return f"only 2-D convolutions are supported (a weight of rank 4), got rank {len(consts[node.input[1]])}"
    if len(node.input) > 2 and node.input[2] and node.input[2] not in consts:
        return "the bias must be an initializer"
    kernel = attrs.get("kernel_shape")
    return _spatial(attrs, list(kernel) if kernel is not None else [0, 0])


def _check_batchnorm(node, attrs: dict, consts: dict[str, list[int]]) -> str | None:
    if any(name not in consts for name in node.input[1:5]):
        return "scale, bias, mean and variance must be initializers"
    if attrs.get("training_mode", 0) or len([o for o in node.output if o]) > 1:
        return "only inference-mode BatchNormalization (one output) is supported; export in eval mode"
    return None


def _check_pool(node, attrs: dict, consts: dict[str, list[int]]) -> str | None:
    if len([o for o in node.output if o]) > 1:
        return "the indices output is not supported"
    if any(d != 1 for d in _ints(attrs, "dilations", [1, 1])):
        return "dilated pooling is not supported"
    if attrs.get("storage_order", 0):
        return "storage_order 1 is not supported"
    return _spatial(attrs, _ints(attrs, "kernel_shape", []))


def _check_gemm(node, attrs: dict, consts: dict[str, list[int]]) -> str | None:
    if node.input[1] not in consts or (len(node.input) > 2 and node.input[2] and node.input[2] not in consts):
        return "B and C must be initializers (a fully connected layer)"
    if len(consts[node.input[1]]) != 2:
        return "B must have rank 2 (a fully connected layer)"
    if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
        return "only transA=0, alpha=1, beta=1 (a fully connected layer) are supported"
    return None


def _check_matmul(node, attrs: dict, consts: dict[str, list[int]]) -> str | None:
    if node.input[1] not in consts or len(consts[node.input[1]]) != 2:
        return "the second input must be an initializer of rank 2 (a fully connected layer)"
    return None


def _check_flatten(node, attrs: dict, consts: dict[str, list[int]]) -> str | None:
    return None if attrs.get("axis", 1) == 1 else f"only axis=1 is supported, got {attrs['axis']}"


def _check_reshape(node, attrs: dict, consts: dict[str, list[int]]) -> str | None:
    if node.input[1] not in consts:
        return "only a constant shape is supported"
    return None  # the shape's value is checked where constants are read (check_reshape_shape)


def _check_pad(node, attrs: dict, consts: dict[str, list[int]]) -> str | None:
    mode = attrs.get("mode", b"constant")
    if mode not in (b"constant", "constant"):
        return f"only constant (zero) padding is supported, got mode {mode!r}"
    if len(node.input) > 1 and node.input[1] not in consts:
        return "the pads must be a constant"
    if len(node.input) > 2 and node.input[2] and node.input[2] not in consts:
        return "the padding value must be a constant"
    if len(node.input) > 3 and node.input[3]:
        return "the axes input is not supported"
    return None


def _check_clip(node, attrs: dict, consts: dict[str, list[int]]) -> str | None:
    if any(name and name not in consts for name in node.input[1:3]):
        return "min and max must be constants"
    return None


def _check_constant(node, attrs: dict, consts: dict[str, list[int]]) -> str | None:
    return None if "value" in attrs or "value_float" in attrs or "value_floats" in attrs else "only tensor values"


def _check_binary(node, attrs: dict, consts: dict[str, list[int]]) -> str | None:
    return None if len(node.input) == 2 else "two inputs expected"


def _no_check(node, attrs: dict, consts: dict[str, list[int]]) -> str | None:
    return None


CHECKS = {
    "Conv": _check_conv,
    "BatchNormalization": _check_batchnorm,
    "Relu": _no_check,
    "LeakyRelu": _no_check,
    "Sigmoid": _no_check,
    "Tanh": _no_check,
    "Clip": _check_clip,
    "Add": _check_binary,
    "Mul": _check_binary,
    "Concat": _no_check,
    "MaxPool": _check_pool,
    "AveragePool": _check_pool,
    "GlobalAveragePool": _no_check,
    "GlobalMaxPool": _no_check,
    "Flatten": _check_flatten,
    "Reshape": _check_reshape,
    "Gemm": _check_gemm,
    "MatMul": _check_matmul,
    "Identity": _no_check,
    "Dropout": _no_check,
    "Pad": _check_pad,
    "Constant": _check_constant,
}
SUPPORTED = tuple(sorted(CHECKS))


def node_label(node) -> str:
    return f"operator {node.op_type} (node {node.name or '<unnamed>'!r})"


def refuse(node, reason: str) -> EncodingError:
    return EncodingError(f"{node_label(node)}: {reason}")


def check_reshape_shape(node, shape: list[int]) -> None:
    """Reshape is supported where it flattens: to (batch, -1), the batch written 0, -1 or a number."""
    if len(shape) != 2 or (shape[1] != -1 and shape[0] not in (0, -1)):
        raise refuse(node, f"only a reshape that flattens to (batch, features) is supported, got shape {shape}")


# --- reading and checking a model ------------------------------------------------------------------


def dims(value_info) -> tuple[int | str, ...] | None:
    tensor = value_info.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor.shape.dim)


def load(data: bytes):
    """The parsed and checked ``onnx.ModelProto`` of ``data`` (raises EncodingError saying why not)."""
    import onnx
    from google.protobuf.message import DecodeError

    limit = max_model_bytes()
    if len(data) > limit:
        raise EncodingError(f"the model is {len(data)} bytes, over the {limit}-byte bound ({MAX_MODEL_BYTES_ENV})")
    try:
        model = onnx.load_model_from_string(bytes(data))
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise EncodingError(f"not an ONNX model: {exc}"[:300]) from None
    if not model.HasField("graph") or not model.graph.node:
        raise EncodingError("not an ONNX model: it has no graph nodes")
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as exc:
        raise EncodingError(f"invalid ONNX model: {exc}"[:500]) from None
    check(model)
    return model


def check(model) -> None:
    """Raise EncodingError for the first thing of ``model`` the converter cannot take."""
    import onnx

    graph = model.graph
    for tensor in graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise EncodingError(f"initializer {tensor.name!r} keeps its data outside the model; save it inside")
    consts = {t.name: list(t.dims) for t in graph.initializer}  # name -> shape
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise EncodingError(f"the model must have one input (the image batch), it has {len(inputs)}")
    if inputs[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise EncodingError(f"the input {inputs[0].name!r} must be float32")
    shape = dims(inputs[0])
    if shape is None or len(shape) != 4 or tuple(shape[1:]) != INPUT_SHAPE:
        shown = "unknown" if shape is None else "x".join(str(d) for d in shape)
        raise EncodingError(
            f"the input {inputs[0].name!r} has shape {shown}; it must be (N, 3, 32, 32): the protocol scores "
            "with batches of CIFAR images"
        )
    if len(graph.output) != 1:
        raise EncodingError(f"the model must have one output (the logits), it has {len(graph.output)}")
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise refuse(node, f"operators of domain {node.domain!r} are not supported")
        checker = CHECKS.get(node.op_type)
        if checker is None:
            raise refuse(node, f"is not supported; supported operators: {', '.join(SUPPORTED)}")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        reason = checker(node, attrs, consts)
        if reason:
            raise refuse(node, reason)
        if node.op_type == "Reshape":
            check_reshape_shape(node, [int(v) for v in _constant(graph, node.input[1]).reshape(-1)])
        if node.op_type == "Pad":
            check_pad(node, graph, attrs)
        if node.op_type == "Constant":
            consts[node.output[0]] = list(constant_value(attrs).shape)
        elif node.op_type == "Identity" and node.input[0] in consts:
            consts[node.output[0]] = consts[node.input[0]]


def constant_value(attrs: dict):
    """The value (a numpy array) of a Constant node, from its attributes."""
    import numpy as np
    import onnx

    if "value" in attrs:
        return onnx.numpy_helper.to_array(attrs["value"])
    return np.asarray(attrs.get("value_float", attrs.get("value_floats")), dtype=np.float32)


def _constant(graph, name: str):
    """The value (a numpy array) of constant ``name``: an initializer or a Constant node's output."""
    import onnx

    for tensor in graph.initializer:
        if tensor.name == name:
            return onnx.numpy_helper.to_array(tensor)
    for node in graph.node:
        if node.output and node.output[0] == name:
            if node.op_type == "Identity":
                return _constant(graph, node.input[0])
            return constant_value({a.name: onnx.helper.get_attribute_value(a) for a in node.attribute})
    raise KeyError(name)


def check_pad(node, graph, attrs: dict) -> None:
    """Pad is supported as zero padding of height and width."""
    pads = [int(p) for p in (_constant(graph, node.input[1]) if len(node.input) > 1 else attrs.get("pads", []))]
    has_value = len(node.input) > 2 and node.input[2]
    value = float(_constant(graph, node.input[2])) if has_value else float(attrs.get("value", 0.0))
    if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or value != 0.0:
        raise refuse(node, f"only zero padding of height and width is supported, got pads {pads}, value {value}")


def inspect(data: bytes) -> ModelInfo:
    """Check a model's bytes and describe it (raises EncodingError saying why it is refused)."""
    model = load(data)
    graph = model.graph
    consts = {t.name for t in graph.initializer}
    inp = next(i for i in graph.input if i.name not in consts)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return ModelInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        operators=dict(sorted(Counter(n.op_type for n in graph.node).items())),
        input_name=inp.name,
        input_shape=dims(inp) or (),
        output_name=graph.output[0].name,
        opset=opset,
        nodes=len(graph.node),
    )


# --- the content-addressed folder ------------------------------------------------------------------


def model_path(sha256: str, folder: Path | None = None) -> Path:
    return (folder or model_dir()) / f"{sha256}.onnx"


def store(data: bytes, folder: Path | None = None) -> ModelInfo:
    """Check a model and keep it under its sha256 (written once, atomically); its description."""
    info = inspect(data)
    path = model_path(info.sha256, folder)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return info


def read(sha256: str, folder: Path | None = None) -> bytes:
    """The bytes of a kept model (raises EncodingError when there is none or it changed)."""
    path = model_path(sha256, folder)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise EncodingError(
            f"no ONNX model with sha256 {sha256} is stored in {path.parent}; give its file or upload it first"
        ) from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise EncodingError(f"the stored model {path} does not match its sha256")
    return data


def read_file(path: str | os.PathLike[str]) -> bytes:
    """A model file's bytes, its size checked before reading (raises EncodingError)."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise EncodingError(f"cannot read ONNX model file {str(path)[:200]!r}: {exc.strerror}") from None
    limit = max_model_bytes()
    if size > limit:
        raise EncodingError(f"the model {p.name} is {size} bytes, over the {limit}-byte bound ({MAX_MODEL_BYTES_ENV})")
    return p.read_bytes()
