"""Each contract is declared once, in the library: every field of the scoring protocol, the one-shot
evaluation and the supernet training settings has the same default, bounds and description as a
command-line option (typer's click params) and in the HTTP API (its JSON schema) as in the library's
model. The test walks the models' fields, so a field added to the library shows up everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from archscore.estimators.cli.options import (
    PROTOCOL_NOT_ON_CLI,
    SUPERNET_EVAL_OVERRIDES,
    TRAIN_OWN,
    oneshot_options,
    protocol_options,
    supernet_eval_options,
    train_options,
)
from archscore.estimators.one_shot.config import TrainSettings
from archscore.estimators.one_shot.training import TrainConfig
from archscore.estimators.protocol import OneShotEvaluation, Protocol, ProtocolFields
from archscore.service.cli import app
from archscore.service.schemas import ApiOneShot, ApiProtocol, TrainRequest

ROOT = Path(__file__).resolve().parents[1]
BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def _command(*path: str):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def _option(command, name: str):
    found = [p for p in command.params if name in p.opts]
    assert found, f"{command.name}: no option {name}"
    return found[0]


def _bounds(model, name: str) -> dict:
    info = model.model_fields[name]
    return {key: getattr(m, key) for m in info.metadata for key in BOUNDS if getattr(m, key, None) is not None}


def _schema_field(schema: dict, name: str) -> dict:
    field = schema["properties"][name]
    if "anyOf" in field:  # optional: the bounds sit on the non-null branch
        field = {**next(b for b in field["anyOf"] if b.get("type") != "null"), **field}
    return field


# (library model, the models that extend it, the HTTP model, the command-line options and their command)
SURFACES = [
    (ProtocolFields, [Protocol], ApiProtocol, protocol_options, [("score",), ("evaluate",), ("study",)]),
    (OneShotEvaluation, [], ApiOneShot, oneshot_options, [("study",)]),
    (OneShotEvaluation, [], ApiOneShot, supernet_eval_options, [("supernet", "eval")]),
    (TrainSettings, [TrainConfig], TrainRequest, train_options, [("supernet", "train")]),
]
CASES = [(model, name, surface) for surface in SURFACES for model in [surface[0]] for name in model.model_fields]


def _id(case) -> str:
    model, name, surface = case
    return f"{model.__name__}.{name}-{surface[3].into}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_every_field_agrees_on_every_surface(case):
    model, name, (_, extending, http, options, commands) = case
    info = model.model_fields[name]
    default = info.get_default(call_default_factory=True)
    bounds = _bounds(model, name)
    assert info.description, f"{model.__name__}.{name} has no description (the option's help, the API's docs)"
    # the library's models that extend it and the HTTP model take the field as declared
    for other in (*extending, http):
        assert other.model_fields[name].get_default(call_default_factory=True) == default, other
        assert _bounds(other, name) == bounds, other
        assert other.model_fields[name].annotation == info.annotation, other
    schema = _schema_field(http.model_json_schema(), name)
    assert schema.get("default", default) == default
    assert {key: schema[BOUNDS[key]] for key in bounds} == bounds
    assert schema["description"].startswith(info.description)  # the API may say more, after the library
    # the command line: every field an option of its name (or a declared exception), default and help its own
    if (name in PROTOCOL_NOT_ON_CLI and model is ProtocolFields) or (name in TRAIN_OWN and model is TrainSettings):
        for path in commands:  # the command takes it its own way, or not at all: declared in options.py
            assert name not in options.fields
        return
    for path in commands:
        option = _option(_command(*path), options.option_name(name))
        expected = SUPERNET_EVAL_OVERRIDES.get(name, default) if options is supernet_eval_options else default
        assert option.default == expected, (path, name)
        assert option.help == info.description, (path, name)


def test_a_command_refuses_values_outside_the_bounds_in_one_line_naming_the_option():
    from typer.testing import CliRunner

    runner = CliRunner()
    for name in ("batch_size", "num_batches", "seed", "data_seed"):
        option = protocol_options.option_name(name)
        for key, limit in _bounds(ProtocolFields, name).items():
            value = limit - 1 if key == "ge" else limit + 1
            result = runner.invoke(app, ["score", "--sample", "1", option, str(value)])
            assert result.exit_code == 2, (option, value, result.output)
            assert result.stderr.strip().startswith(f"error: {option}: ") and len(result.stderr.splitlines()) == 1


def test_renamed_options_keep_their_old_names():
    score = _command("score")
    assert {"--num-batches", "--batches"} <= set(_option(score, "--num-batches").opts)
    assert "--init-seed" in _option(score, "--init-seed").opts
    assert {"--num-batches", "--batches"} <= set(_option(_command("supernet", "eval"), "--num-batches").opts)


def test_the_published_openapi_has_the_library_descriptions():
    schemas = json.loads((ROOT / "openapi.json").read_text())["components"]["schemas"]
    for model, http in (
        (ProtocolFields, "ApiProtocol"),
        (OneShotEvaluation, "ApiOneShot"),
        (TrainSettings, "TrainRequest"),
    ):
        for name, info in model.model_fields.items():
            assert _schema_field(schemas[http], name)["description"].startswith(info.description), (http, name)


def test_the_training_settings_name_the_registered_samplers():
    from typing import get_args

    from archscore.estimators.one_shot.config import Sampler
    from archscore.estimators.one_shot.samplers import SAMPLERS

    assert set(get_args(Sampler)) == set(SAMPLERS)
