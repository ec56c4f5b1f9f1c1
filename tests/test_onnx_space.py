"""The onnx space: torch networks exported to ONNX score as the same networks written in torch (every
zero-shot estimator that applies, params and flops), unsupported models are refused naming the operator,
the size bound holds; through the library and the command line."""

from __future__ import annotations

import io
import json
import math
import warnings

import onnx
import pytest
import torch
from helpers.cli import run
from helpers.http import error_fields
from onnx import TensorProto, helper
from torch import nn

import archscore
from archscore.estimators.catalog import ZERO_SHOT, batch_free
from archscore.estimators.protocol import Protocol
from archscore.estimators.spaces import EncodingError, get_space
from archscore.estimators.spaces.nb201.network import AvgPool3x3
from archscore.estimators.spaces.onnx import MAX_MODEL_BYTES_ENV, MODEL_DIR_ENV
from archscore.estimators.spaces.onnx.network import OnnxNetwork
from archscore.estimators.zero_shot.engine import altered_inputs, score_architecture, score_module

# Estimators whose value depends on how a network is cut into modules, not only on what it computes:
# MeCo hooks every module, containers included (a converted model is one flat list of layers).
STRUCTURAL = {"meco"}
# Re-initialise the layers in module order (VKDNW, Zen-NAS): equal where the torch network registers its
# layers in the order it runs them (the converted one runs them in graph order); NB201's residual blocks
# register their shortcut last but run it first.
ORDERED = {"vkdnw", "vkdnw_single", "zen"}
# AZ-NAS reads the cells a space's network declares; a converted model declares none.
CELLS = {"az_expressivity", "az_progressivity", "az_trainability"}


@pytest.fixture(autouse=True)
def model_dir(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    monkeypatch.setenv(MODEL_DIR_ENV, str(folder))
    return folder


def export(net: nn.Module) -> bytes:
    """The ONNX bytes of a torch network as a user exports it (inference mode, batch dimension named)."""
    buf = io.BytesIO()
    net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.zeros(1, 3, 32, 32),),
            buf,
            dynamo=False,
            training=torch.onnx.TrainingMode.EVAL,
            do_constant_folding=False,  # keeps BatchNorm apart from the conv before it
            input_names=["images"],
            output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}},
        )
    return buf.getvalue()


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.AvgPool2d(2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class ResidualCNN(nn.Module):
    """A residual Add and a Concat of two branches."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
        self.relu = nn.ReLU()
        self.wide = nn.Sequential(nn.Conv2d(8, 8, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.relu(x + self.body(x))
        x = torch.cat([x, self.wide(x)], dim=1)
        return self.classifier(self.pool(x).reshape(-1, 16))


NB201_CELL = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"


def nb201_network() -> nn.Module:
    """A small NB201 network built by the project, its 3x3 average pools as the plain nn.AvgPool2d they
    equal (the project's box-filter form exports as a computed convolution, not as AveragePool)."""
    space = get_space("nb201")
    torch.manual_seed(0)
    net = space.build_network(space.parse(NB201_CELL), C=8, N=1)
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, AvgPool3x3):
                setattr(module, name, nn.AvgPool2d(3, 1, 1, count_include_pad=False))
    return net


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(16, 3, 32, 32, generator=generator), torch.randint(0, 10, (16,), generator=generator)


def torch_scores(net: nn.Module, x: torch.Tensor, y: torch.Tensor, names: list[str], protocol: Protocol) -> dict:
    """The torch network scored as ``score_architecture`` scores a space's network on one batch."""
    free = [n for n in names if batch_free(n)]
    data = [n for n in names if not batch_free(n)]
    noise = altered_inputs([(x, y)], "noise", protocol.data_seed)[0][0]
    scores = score_module(net, x, None, free, protocol.bn_mode)
    scores.update(score_module(net, x, y, data, protocol.bn_mode, noise=noise, seed=protocol.seed))
    return {n: scores[n] for n in names}


def _close(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= 1e-5 * max(abs(a), abs(b))


@pytest.mark.parametrize(
    ("make", "unequal"),
    [
        (SmallCNN, STRUCTURAL),
        (ResidualCNN, STRUCTURAL),
        pytest.param(nb201_network, STRUCTURAL | ORDERED, marks=pytest.mark.slow),
    ],
    ids=["cnn", "residual", "nb201"],
)
def test_converted_model_scores_as_the_torch_network(make, unequal):
    torch.manual_seed(0)
    net = make()
    sha = get_space("onnx").parse_local(export(net))
    x, y = _batch()
    protocol = Protocol(batch_size=16)
    names = list(ZERO_SHOT)
    converted = score_architecture(sha, "onnx", names, protocol, batches=[(x, y)]).scores
    original = torch_scores(net.train(), x, y, names, protocol)
    for name in names:
        if name in CELLS:
            assert converted[name].value is None and "cell outputs" in converted[name].reason
            continue
        a, b = original[name].value, converted[name].value
        assert (a is None) == (b is None), (name, original[name], converted[name])
        if name not in unequal and a is not None:
            assert _close(a, b), (name, a, b)
    assert converted["params"].value == sum(p.numel() for p in net.parameters()) / 1e6


def test_converted_network_is_made_of_torch_layers():
    space = get_space("onnx")
    sha = space.parse_local(export(ResidualCNN()))
    net = space.build_network(sha)
    assert isinstance(net, OnnxNetwork)
    kinds = {type(m) for m in net.modules()}
    assert {nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Linear, nn.AdaptiveAvgPool2d} <= kinds
    assert net(torch.zeros(3, 3, 32, 32)).shape == (3, 10)
    info = space.model_info(sha)
    assert info.input_shape == ("batch", 3, 32, 32) and {"Conv", "Add", "Concat", "Reshape"} <= set(info.operators)


def _graph_model(node: onnx.NodeProto, shape=(1, 3, 32, 32), out_shape=(1, 3, 32, 32)) -> bytes:
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_unsupported_operator_is_refused_naming_it(model_dir):
    data = _graph_model(helper.make_node("Softsign", ["x"], ["y"], name="odd_activation"))
    with pytest.raises(EncodingError, match=r"operator Softsign \(node 'odd_activation'\).*not supported"):
        get_space("onnx").parse_local(data)
    assert not model_dir.exists() or not list(model_dir.iterdir())  # nothing stored


def test_unsupported_attributes_are_refused_naming_the_operator():
    node = helper.make_node("MaxPool", ["x"], ["y"], name="asym", kernel_shape=[2, 2], pads=[0, 0, 1, 1])
    with pytest.raises(EncodingError, match=r"operator MaxPool \(node 'asym'\): pads"):
        get_space("onnx").parse_local(_graph_model(node, out_shape=(1, 3, 16, 16)))


@pytest.mark.parametrize(
    ("node", "needle"),
    [
        (
            helper.make_node("Pad", ["x", "p"], ["y"], name="mirror", mode="reflect"),
            r"operator Pad \(node 'mirror'\): only constant",
        ),
        (
            helper.make_node("Pad", ["x", "p", "v"], ["y"], name="ones"),
            r"operator Pad \(node 'ones'\): only zero padding",
        ),
        (
            helper.make_node("Conv", ["x", "w1d"], ["y"], name="c1"),
            r"operator Conv \(node 'c1'\): only 2-D convolutions",
        ),
        (
            helper.make_node("Conv", ["x", "x"], ["y"], name="dyn"),
            r"operator Conv \(node 'dyn'\): the weight must be an initializer",
        ),
    ],
    ids=["pad-mode", "pad-value", "conv1d", "conv-weight"],
)
def test_attribute_combinations_the_converter_does_not_take_are_refused(node, needle):
    initializers = [
        helper.make_tensor("p", TensorProto.INT64, [8], [0, 0, 1, 1, 0, 0, 1, 1]),
        helper.make_tensor("v", TensorProto.FLOAT, [], [1.0]),
        helper.make_tensor("w1d", TensorProto.FLOAT, [3, 3, 3], [0.0] * 27),
    ]
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 32, 32])],
        initializer=initializers,
    )
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    with pytest.raises(EncodingError, match=needle):
        get_space("onnx").parse_local(data)


def test_input_that_is_not_a_cifar_batch_is_refused():
    data = _graph_model(
        helper.make_node("Relu", ["x"], ["y"], name="r"), shape=(1, 3, 64, 64), out_shape=(1, 3, 64, 64)
    )
    with pytest.raises(EncodingError, match=r"shape 1x3x64x64.*\(N, 3, 32, 32\)"):
        get_space("onnx").parse_local(data)


@pytest.mark.parametrize("bad", [b"not a model", b"", "deadbeef", "missing.onnx", 12])
def test_bad_encodings_are_refused(bad):
    with pytest.raises(EncodingError):
        get_space("onnx").parse_local(bad)


def test_model_over_the_size_bound_is_refused(monkeypatch, tmp_path):
    data = export(SmallCNN())
    monkeypatch.setenv(MAX_MODEL_BYTES_ENV, str(len(data) - 1))
    with pytest.raises(EncodingError, match=f"{len(data)} bytes, over the {len(data) - 1}-byte bound"):
        get_space("onnx").parse_local(data)
    path = tmp_path / "big.onnx"
    path.write_bytes(data)
    with pytest.raises(EncodingError, match="over the"):
        get_space("onnx").parse_local(str(path))


def test_the_service_form_is_the_sha256_only(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(export(SmallCNN()))
    for given in (str(path), path.read_bytes()):
        with pytest.raises(EncodingError, match="not the sha256 of a stored model"):
            get_space("onnx").parse(given)


def test_an_unstored_sha256_is_refused_when_built():
    sha = "ab" * 32
    assert get_space("onnx").parse(sha.upper()) == sha
    with pytest.raises(EncodingError, match="no ONNX model with sha256"):
        get_space("onnx").build_network(sha)


def test_space_cannot_sample_and_says_so():
    space = get_space("onnx")
    with pytest.raises(ValueError, match="cannot sample"):
        space.sample(3, seed=0)
    assert space.describe()["capabilities"] == ["network", "uploaded"]


def test_library_scores_a_file_by_its_sha256(tmp_path, model_dir):
    data = export(SmallCNN())
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    (result,) = archscore.score(
        [str(path)], space="onnx", estimators=["params", "flops", "synflow", "snip"], protocol={"batch_size": 8}
    )
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    assert result.arch == sha and result.canonical_key == sha and (model_dir / f"{sha}.onnx").exists()
    assert result.scores["params"] == sum(p.numel() for p in SmallCNN().parameters()) / 1e6
    assert all(math.isfinite(v) for v in result.scores.values())
    again = archscore.score([sha], space="onnx", estimators=["params"], protocol={"batch_size": 8})
    assert again[0].scores["params"] == result.scores["params"]
    with pytest.raises(EncodingError, match=r"archs\[0\]: .*not a path|archs\[0\]"):
        archscore.score([str(tmp_path / "absent.onnx")], space="onnx", estimators=["params"])


def test_command_line_scores_a_list_of_files(tmp_path):
    first, second = tmp_path / "a.onnx", tmp_path / "b.onnx"
    torch.manual_seed(0)
    first.write_bytes(export(SmallCNN()))
    second.write_bytes(export(ResidualCNN()))
    listing = tmp_path / "list.txt"
    listing.write_text(f"{first}\n# a comment\n{second}\n")
    out = tmp_path / "scores.jsonl"
    result = run("score", "--space", "onnx", "-f", str(listing), "-e", "params,flops", "--out", str(out))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["space"] for r in records] == ["onnx", "onnx"] and all(len(r["arch"]) == 64 for r in records)
    assert [r["scores"]["params"] for r in records] == [
        sum(p.numel() for p in m().parameters()) / 1e6 for m in (SmallCNN, ResidualCNN)
    ]


def test_command_line_refuses_an_unsupported_model_with_exit_code_2(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(_graph_model(helper.make_node("Softsign", ["x"], ["y"], name="odd")))
    listing = tmp_path / "list.txt"
    listing.write_text(f"{bad}\n")
    result = run("score", "--space", "onnx", "-f", str(listing), "-e", "params")
    assert result.exit_code == 2
    assert "Softsign" in result.output and "line 1" in result.output


# --- the service: POST /v1/models, then POST /v1/scores with space "onnx" (a real worker on a real Redis) ---

OCTETS = {"content-type": "application/octet-stream"}


@pytest.fixture
def clean_models(r):
    from archscore.contract import store

    def drop() -> None:
        for sha in r.hkeys(store.models_key()):
            r.delete(store.model_key(sha))
        r.delete(store.models_key())

    drop()
    yield
    drop()


def test_service_uploads_a_model_and_scores_it_by_its_sha256(client, r, clean_models, tmp_path):
    import hashlib

    from archscore.contract import store

    torch.manual_seed(0)
    data = export(ResidualCNN())
    sha = hashlib.sha256(data).hexdigest()
    resp = client.post("/v1/models", content=data, headers=OCTETS)
    assert resp.status_code == 200, resp.text
    info = resp.json()
    assert info["sha256"] == sha and info["input_shape"] == ["batch", 3, 32, 32]
    assert {"Conv", "BatchNormalization", "Relu", "Add", "Concat"} <= set(info["operators"])
    assert r.exists(store.model_key(sha)) and client.get(f"/v1/models/{sha}").json() == info
    estimators = ["params", "flops", "synflow", "snip"]
    body = {"space": "onnx", "archs": [sha], "estimators": estimators, "protocol": {"batch_size": 4, "num_batches": 1}}
    job = client.post("/v1/scores?wait=120", json=body).json()
    assert job["status"] == "done", job
    (result,) = job["results"]
    assert result["arch"] == sha and result["error"] is None, result
    (local,) = archscore.score([sha], space="onnx", estimators=estimators, protocol=body["protocol"])
    assert result["scores"] == pytest.approx(local.scores, rel=1e-6)  # the worker fetched the model from Redis

    deleted = client.delete(f"/v1/models/{sha}")
    assert deleted.status_code == 200 and not r.exists(store.model_key(sha))
    again = client.post(
        "/v1/scores?wait=120", json={**body, "protocol": {"batch_size": 4, "num_batches": 1, "seed": 7}}
    )
    fields = error_fields(again, 422)
    assert "no uploaded model with sha256" in fields["archs[0]"]


def test_service_refuses_bad_models_naming_the_operator(client, r, clean_models, settings_env):
    from archscore.contract import store

    odd = _graph_model(helper.make_node("Softsign", ["x"], ["y"], name="odd_activation"))
    fields = error_fields(client.post("/v1/models", content=odd, headers=OCTETS), 422)
    assert "operator Softsign (node 'odd_activation')" in fields["body"]
    fields = error_fields(client.post("/v1/models", content=b"\x00garbage", headers=OCTETS), 422)
    assert "ONNX" in fields["body"]
    data = export(SmallCNN())
    settings_env(max_model_bytes=str(len(data) - 1))
    fields = error_fields(client.post("/v1/models", content=data, headers=OCTETS), 413)
    assert f"{len(data)} bytes" in fields["body"]
    settings_env(max_model_bytes=str(len(data)), max_models="0")
    fields = error_fields(client.post("/v1/models", content=data, headers=OCTETS), 507)
    assert "at most 0" in fields["body"]
    assert not r.hlen(store.models_key())
    path_given = {"space": "onnx", "archs": ["/etc/hostname.onnx"], "estimators": ["params"]}
    fields = error_fields(client.post("/v1/scores", json=path_given), 422)
    assert "not the sha256 of a stored model" in fields["archs[0]"]
