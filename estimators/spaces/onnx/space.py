"""The ``onnx`` space: an architecture is a stored ONNX model, written as the sha256 of its bytes.

A NAS loop in any framework exports its candidate to ONNX and scores it here with the estimators that
need only a network and an input shape (docs/guides/onnx.md). ``parse`` accepts the sha256 of a stored
model, or (the library, the command line) a path to a ``.onnx`` file or a model's bytes, which it checks
and stores under its sha256 (``model.model_dir()``). Torch-free; the network is built by
``archscore.estimators.spaces.onnx.network``.

There is nothing to enumerate or sample: the space holds the models given to it, so ``sample`` refuses
(n is more than it holds), and it has no cost model: params and flops are counted on the converted network.
"""

from __future__ import annotations

import os
from typing import Any

from archscore.estimators.spaces.base import NETWORK, UPLOADED, EncodingError, SearchSpace, register_space
from archscore.estimators.spaces.onnx import model as onnx_model


@register_space("onnx-model")
class OnnxSpace(SearchSpace):
    name = "onnx"
    description = (
        "any network exported to ONNX (from PyTorch, TensorFlow, JAX...) with one float input (N, 3, 32, 32) and "
        "the logits as its one output, converted into torch layers from its weights; an architecture is the "
        "sha256 of the model's bytes"
    )
    encodings = {
        "sha256": "the sha256 of a stored model (64 hex digits), as POST /v1/models answers",
        "path": "a path to a .onnx file (library and command line): checked, stored, scored by its sha256",
        "bytes": "a model's bytes (library): checked, stored, scored by its sha256",
    }
    capabilities = frozenset({NETWORK, UPLOADED})
    samples = False
    default_network = {"num_classes": 10}

    def parse(self, encoding: Any) -> str:
        """The sha256 of a model (the service's only encoding: it never reads a path of its host)."""
        if not isinstance(encoding, str) or not onnx_model.SHA256.match(encoding.strip().lower()):
            shown = repr(encoding)[:80] if isinstance(encoding, str) else f"a {type(encoding).__name__}"
            raise EncodingError(
                f"{shown} is not the sha256 of a stored model (64 hex digits); upload the model (POST /v1/models) "
                "or, in the library and on the command line, give the path to its .onnx file"
            )
        return encoding.strip().lower()

    def parse_local(self, encoding: Any) -> str:
        """A sha256, a path to a .onnx file or a model's bytes: a file or bytes are checked and stored in
        ``model.model_dir()`` under their sha256, which is returned."""
        if isinstance(encoding, (bytes, bytearray, memoryview)):
            return onnx_model.store(bytes(encoding)).sha256
        if isinstance(encoding, os.PathLike):
            return onnx_model.store(onnx_model.read_file(encoding)).sha256
        if isinstance(encoding, str):
            text = encoding.strip()
            if not onnx_model.SHA256.match(text.lower()) and (text.lower().endswith(".onnx") or os.path.isfile(text)):
                return onnx_model.store(onnx_model.read_file(text)).sha256
        return self.parse(encoding)

    def to_string(self, arch: str) -> str:
        return arch

    def to_json(self, arch: str) -> str:
        return arch

    def canonical_key(self, arch: str) -> str:
        return arch

    def sample(self, n: int, seed: int, deisomorphic: bool = False) -> list[str]:
        if n == 0:
            return []
        raise ValueError(
            "the onnx space holds only the models given to it: it cannot sample; export your candidates and "
            "give their files or sha256s"
        )

    def build_network(self, arch: str, **config: Any):
        """The converted network of a stored model; ``num_classes`` (the protocol's) must not exceed the
        model's outputs when its output shape is declared."""
        from archscore.estimators.spaces.onnx.network import convert

        config = {**self.default_network, **config}
        unknown = sorted(set(config) - {"num_classes"})
        if unknown:
            raise ValueError(
                f"the onnx space takes no network settings ({', '.join(unknown)}): the model is the network"
            )
        net = convert(onnx_model.read(arch))
        outputs = net.declared_outputs
        if isinstance(outputs, int) and outputs < config["num_classes"]:
            classes = config["num_classes"]
            raise EncodingError(f"the model has {outputs} outputs, fewer than the {classes} classes of the dataset")
        return net

    def model_info(self, arch: str) -> onnx_model.ModelInfo:
        """What the stored model ``arch`` is (sha256, operators, input shape)."""
        return onnx_model.inspect(onnx_model.read(arch))
