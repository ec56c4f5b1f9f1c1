"""An ONNX model converted into a torch module of real layers (``nn.Conv2d``, ``nn.Linear``,
``nn.BatchNorm2d``, ``nn.ReLU``, the pools, ...) whose weights are the model's initializers, so that the
proxies, which find layers by their module type, see the network as they would see it written in torch.

One small function per operator (``CONVERTERS``) turns a node into a module and names the node inputs
that module takes at run time; ``OnnxNetwork.forward`` replays the nodes in the graph's (topological)
order. Constants that are not a layer's weights (a Mul's factor, ...) are buffers. The model was
checked torch-free first (``archscore.estimators.spaces.onnx.model``), so every node here converts;
what only the values can tell (a Pad's value) is checked here and refused the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from archscore.estimators.spaces.onnx import model as onnx_model

Const = Callable[[str], np.ndarray]  # the value of a constant tensor, by name
Converted = tuple[nn.Module, list[str]]  # the node's module and the node inputs it takes at run time


def _tensor(value: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(value, copy=True))


def _copy(param: torch.Tensor, value: np.ndarray) -> None:
    with torch.no_grad():
        param.copy_(_tensor(value).reshape(param.shape))


# --- the modules of the operators that have none in torch ---


class Add(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Mul(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b


class Concat(nn.Module):
    def __init__(self, axis: int):
        super().__init__()
        self.axis = axis

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return torch.cat(tensors, dim=self.axis)


# --- one converter per operator ---


def _conv(node, attrs: dict, const: Const) -> Converted:
    weight = const(node.input[1])
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
    groups = int(attrs.get("group", 1))
    out_channels, per_group, kh, kw = weight.shape
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    conv = nn.Conv2d(
        per_group * groups,
        out_channels,
        (kh, kw),
        stride=tuple(attrs.get("strides", [1, 1])),
        padding=(pads[0], pads[1]),
        dilation=tuple(attrs.get("dilations", [1, 1])),
        groups=groups,
        bias=bias is not None,
    )
    _copy(conv.weight, weight)
    if bias is not None:
        _copy(conv.bias, const(bias))
    return conv, [node.input[0]]


def _batchnorm(node, attrs: dict, const: Const) -> Converted:
    scale, bias, mean, var = (const(name) for name in node.input[1:5])
    bn = nn.BatchNorm2d(
        len(scale), eps=float(attrs.get("epsilon", 1e-5)), momentum=1 - float(attrs.get("momentum", 0.9))
    )
    _copy(bn.weight, scale)
    _copy(bn.bias, bias)
    _copy(bn.running_mean, mean)
    _copy(bn.running_var, var)
    return bn, [node.input[0]]


def _pool_args(attrs: dict) -> dict[str, Any]:
    kernel = tuple(attrs["kernel_shape"])
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    return {
        "kernel_size": kernel,
        "stride": tuple(attrs.get("strides", [1, 1])),
        "padding": (pads[0], pads[1]),
        "ceil_mode": bool(attrs.get("ceil_mode", 0)),
    }


def _maxpool(node, attrs: dict, const: Const) -> Converted:
    return nn.MaxPool2d(**_pool_args(attrs)), [node.input[0]]


def _averagepool(node, attrs: dict, const: Const) -> Converted:
    return nn.AvgPool2d(**_pool_args(attrs), count_include_pad=bool(attrs.get("count_include_pad", 0))), [node.input[0]]


def _gemm(node, attrs: dict, const: Const) -> Converted:
    b = const(node.input[1])
    weight = b if attrs.get("transB", 0) else b.T  # nn.Linear keeps (out, in)
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    _copy(linear.weight, weight)
    if bias is not None:
        value = const(bias)
        if value.size != weight.shape[0]:
            raise onnx_model.refuse(node, f"C of shape {list(value.shape)} is not one bias per output")
        _copy(linear.bias, value)
    return linear, [node.input[0]]


def _matmul(node, attrs: dict, const: Const) -> Converted:
    b = const(node.input[1])
    if b.ndim != 2:
        raise onnx_model.refuse(node, f"the second input must have rank 2, it has rank {b.ndim}")
    linear = nn.Linear(b.shape[0], b.shape[1], bias=False)
    _copy(linear.weight, b.T)
    return linear, [node.input[0]]


def _clip(node, attrs: dict, const: Const) -> Converted:
    def bound(position: int, name: str, default: float) -> float:
        if len(node.input) > position and node.input[position]:
            return float(const(node.input[position]))
        return float(attrs.get(name, default))

    low, high = bound(1, "min", -np.inf), bound(2, "max", np.inf)
    return (nn.ReLU6() if (low, high) == (0.0, 6.0) else nn.Hardtanh(low, high)), [node.input[0]]


def _pad(node, attrs: dict, const: Const) -> Converted:
    pads = [int(p) for p in (const(node.input[1]) if len(node.input) > 1 else attrs.get("pads", []))]
    return nn.ZeroPad2d((pads[3], pads[7], pads[2], pads[6])), [node.input[0]]


def _simple(make: Callable[[dict], nn.Module], arity: int = 1) -> Callable[[Any, dict, Const], Converted]:
    """A converter for an operator that maps to one module taking the node's first ``arity`` inputs
    (0: all of them)."""

    def convert(node, attrs: dict, const: Const) -> Converted:
        return make(attrs), list(node.input[:arity] if arity else node.input)

    return convert


CONVERTERS: dict[str, Callable[[Any, dict, Const], Converted]] = {
    "Conv": _conv,
    "BatchNormalization": _batchnorm,
    "Relu": _simple(lambda a: nn.ReLU()),
    "LeakyRelu": _simple(lambda a: nn.LeakyReLU(float(a.get("alpha", 0.01)))),
    "Sigmoid": _simple(lambda a: nn.Sigmoid()),
    "Tanh": _simple(lambda a: nn.Tanh()),
    "Clip": _clip,
    "Add": _simple(lambda a: Add(), 2),
    "Mul": _simple(lambda a: Mul(), 2),
    "Concat": _simple(lambda a: Concat(int(a["axis"])), 0),
    "MaxPool": _maxpool,
    "AveragePool": _averagepool,
    "GlobalAveragePool": _simple(lambda a: nn.AdaptiveAvgPool2d(1)),
    "GlobalMaxPool": _simple(lambda a: nn.AdaptiveMaxPool2d(1)),
    "Flatten": _simple(lambda a: nn.Flatten(1)),
    "Reshape": _simple(lambda a: nn.Flatten(1)),  # checked: only the reshapes that flatten
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Identity": _simple(lambda a: nn.Identity()),
    "Dropout": _simple(lambda a: nn.Identity()),  # as at inference
    "Pad": _pad,  # checked: zero padding of height and width only
}
FOLDED = frozenset({"Constant"})  # constants: read by the converters, never run
assert set(CONVERTERS) | FOLDED == set(onnx_model.CHECKS), "every checked operator converts"


class OnnxNetwork(nn.Module):
    """The converted model: ``layers[i]`` is node i's module (constant nodes left out), ``steps[i]`` the
    names of the values it reads and the name of the value it writes; forward replays them in order."""

    def __init__(self, model: Any):
        super().__init__()
        import onnx

        graph = model.graph
        values: dict[str, np.ndarray] = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
        self.input_name = next(i.name for i in graph.input if i.name not in values)
        self.output_name = graph.output[0].name
        dims = onnx_model.dims(graph.output[0])
        self.declared_outputs = dims[-1] if dims and len(dims) == 2 else None  # the classes, where declared
        self.layers = nn.ModuleList()
        self.steps: list[tuple[list[str], str]] = []
        self._constants: dict[str, str] = {}  # value name -> buffer name
        for node in graph.node:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            if node.op_type == "Constant":
                values[node.output[0]] = onnx_model.constant_value(attrs)
                continue
            if node.op_type == "Identity" and node.input[0] in values:
                values[node.output[0]] = values[node.input[0]]
                continue
            module, inputs = CONVERTERS[node.op_type](node, attrs, values.__getitem__)
            for name in inputs:
                if name in values and name not in self._constants:
                    self._constants[name] = f"constant_{len(self._constants)}"
                    self.register_buffer(self._constants[name], _tensor(values[name]))
            self.layers.append(module)
            self.steps.append((inputs, node.output[0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {name: getattr(self, buffer) for name, buffer in self._constants.items()}
        values[self.input_name] = x
        for layer, (inputs, output) in zip(self.layers, self.steps):
            values[output] = layer(*(values[name] for name in inputs))
        return values[self.output_name]


def convert(data: bytes) -> OnnxNetwork:
    """The torch network of a model's bytes (checked first: raises EncodingError naming what is refused)."""
    return OnnxNetwork(onnx_model.load(data))
