"""Command-line options derived from the library's models, and the options several commands share.

A model field becomes an option of the same name (``batch_size``: ``--batch-size``) with the field's type,
default and description as its help; the model checks the value (its bounds, its choices), so an option
can neither drift from the library nor from the HTTP API that extends the same model. A command gets
the values of its model's options in one parameter (:class:`OptionValues`) and builds the model when it
knows the rest (a resolved checkpoint, say); a value the model refuses exits with status 2 and one line
naming the option.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from archscore.estimators.cli.console import UsageError, fail
from archscore.estimators.device import DEVICE_HELP
from archscore.estimators.one_shot.config import TrainSettings
from archscore.estimators.protocol import OneShotEvaluation, Protocol, ProtocolFields

LOWER = {"greater_than_equal": "ge", "greater_than": "gt"}
UPPER = {"less_than_equal": ("le", "at most"), "less_than": ("lt", "less than")}


def choices(info: FieldInfo) -> tuple[str, ...] | None:
    """The values a Literal field takes (None: not a Literal)."""
    annotation = info.annotation
    return typing.get_args(annotation) if typing.get_origin(annotation) is Literal else None


def _option_type(info: FieldInfo) -> Any:
    """The Python type typer parses the option's text as (Literals as text: the model checks them)."""
    annotation = info.annotation
    if choices(info) is not None:
        return str
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0] | None
    return annotation


@dataclass(frozen=True)
class ModelOptions:
    """Options for fields of ``model``, handed to a command as its parameter ``into``.

    ``fields``: the fields, in order (default: all). ``names``: a field's option where it cannot be named
    after the field (another option holds that name). ``aliases``: further names an option keeps working
    under. ``defaults``: a command's own default for a field (said in ``overrides`` and checked by
    tests/test_contract_surfaces.py). ``prefix``: put before every derived name (``--oneshot-...``).
    ``literal_message``: how a value outside a field's choices is reported."""

    model: type[BaseModel]
    into: str
    fields: tuple[str, ...] = ()
    names: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    prefix: str = ""
    literal_message: str = "use one of {choices}, not {value!r}"

    def __post_init__(self):
        if not self.fields:
            object.__setattr__(self, "fields", tuple(self.model.model_fields))

    def option_name(self, name: str) -> str:
        return self.names.get(name) or f"--{self.prefix}{name.replace('_', '-')}"

    def default(self, name: str) -> Any:
        if name in self.defaults:
            return self.defaults[name]
        return self.model.model_fields[name].get_default(call_default_factory=True)

    def parameter(self, name: str) -> inspect.Parameter:
        info = self.model.model_fields[name]
        option = self.option_name(name)
        decls = [option, *self.aliases.get(name, ())]
        if info.annotation is bool:
            decls = [f"{option}/--no-{option[2:]}", *self.aliases.get(name, ())]
        found = choices(info)
        metavar = f"[{'|'.join(found)}]" if found else None
        return inspect.Parameter(
            f"{self.into}__{name}",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=_option_type(info),
            default=typer.Option(self.default(name), *decls, help=info.description, metavar=metavar, show_default=True),
        )

    def values(self, **given) -> OptionValues:
        """The options' values: ``given``, the defaults for the rest."""
        return OptionValues({name: given.get(name, self.default(name)) for name in self.fields}, self)

    def __call__(self, func):
        """Decorate a command: its parameter ``into`` is replaced by the options (where it stood) and
        receives their values."""
        signature = inspect.signature(func, eval_str=True)
        params = []
        for p in signature.parameters.values():
            params += [self.parameter(name) for name in self.fields] if p.name == self.into else [p]

        def run(*args, **kwargs):
            if self.into not in kwargs:
                kwargs[self.into] = OptionValues(
                    {name: kwargs.pop(f"{self.into}__{name}") for name in self.fields}, self
                )
            return func(*args, **kwargs)

        command: Any = functools.wraps(func)(run)  # Any: typer reads the attributes set on it below
        command.__signature__ = signature.replace(parameters=params)
        command.__annotations__ = {p.name: p.annotation for p in params}
        del command.__wrapped__  # typer reads the new signature, not func's
        command.model_options = getattr(func, "model_options", ()) + (self,)
        return command

    def message(self, error: Mapping[str, Any], options: dict[str, str]) -> str:
        """One line for a pydantic error, naming the option (or ``options[field]`` for other fields)."""
        loc = error["loc"]
        if not loc:
            return error["msg"].removeprefix("Value error, ")
        name = str(loc[0])
        option = options.get(name) or (self.option_name(name) if name in self.fields else name)
        info = self.model.model_fields.get(name)
        kind = error["type"]
        found = choices(info) if info is not None else None
        if kind == "literal_error" and found:
            text = self.literal_message.format(
                name=name.replace("_", " "), value=error["input"], choices=", ".join(found)
            )
        elif kind in LOWER:
            limit = error["ctx"][LOWER[kind]]
            positive = (kind == "greater_than_equal" and limit == 1) or (kind == "greater_than" and limit == 0)
            words = "at least" if kind == "greater_than_equal" else "more than"
            text = "must be positive" if positive else f"must be {words} {limit}"
        elif kind in UPPER:
            key, words = UPPER[kind]
            text = f"must be {words} {error['ctx'][key]}"
        else:
            text = error["msg"].removeprefix("Value error, ")
        return f"{option}: {text}"


def given(values: OptionValues | None) -> OptionValues:
    """A command's option values: its ModelOptions decorator always passes them (None is only the
    parameter's Python default, which the decorator replaces)."""
    if values is None:
        raise TypeError("option values missing: call the command through its ModelOptions decorator")
    return values


class OptionValues(dict):
    """The values of a command's derived options, field by field; ``build`` makes the model of them."""

    def __init__(self, values: dict, spec: ModelOptions):
        super().__init__(values)
        self.spec = spec

    def build(self, model: type[BaseModel] | None = None, options: dict[str, str] | None = None, **extra):
        """``model`` (default: the options' own) of these values (those that are its fields) and ``extra``;
        a refused value raises UsageError naming its option (``options``: the option of an ``extra`` field)."""
        model = model or self.spec.model
        data = {k: v for k, v in self.items() if k in model.model_fields}
        try:
            return model(**{**data, **extra})
        except ValidationError as exc:
            raise UsageError(self.spec.message(exc.errors()[0], options or {})) from None

    def build_or_exit(self, model: type[BaseModel] | None = None, **extra):
        try:
            return self.build(model, **extra)
        except UsageError as exc:
            fail(str(exc))


# the protocol's options: the fields every surface shares, and the data's folder; the network's seed is
# --init-seed, as --seed chooses the architectures sampled
# protocol fields the command line does not set (the HTTP API and the library do): init only matters with
# --weights and per_member with the service's score cache
PROTOCOL_NOT_ON_CLI = ("init", "per_member")
protocol_options = ModelOptions(
    Protocol,
    "protocol",
    fields=tuple(f for f in ProtocolFields.model_fields if f not in PROTOCOL_NOT_ON_CLI) + ("data_root",),
    names={"seed": "--init-seed"},
    aliases={"num_batches": ("--batches",)},
)
# how one-shot estimators are taken (a study's): --images as it was, the others prefixed by the protocol's
oneshot_options = ModelOptions(OneShotEvaluation, "oneshot", prefix="oneshot-", names={"images": "--images"})
# `supernet eval`: averaging over the class is asked for with --post-deiso, as it always was
SUPERNET_EVAL_OVERRIDES = {"post_deiso": False}
supernet_eval_options = ModelOptions(
    OneShotEvaluation, "evaluation", aliases={"num_batches": ("--batches",)}, defaults=SUPERNET_EVAL_OVERRIDES
)
# `supernet train`: the training settings (--network KEY=VALUE is the command's own) and the data's folder
TRAIN_OWN = ("network",)
train_options = ModelOptions(
    TrainSettings,
    "settings",
    fields=tuple(f for f in TrainSettings.model_fields if f not in TRAIN_OWN),
    literal_message="unknown {name} {value!r}; available: {choices}",
)


# Options shared by `score`, `evaluate` and `study`.
SpaceOpt = Annotated[str, typer.Option("--space", help="search space")]
EstOpt = Annotated[str, typer.Option("--estimators", "-e", help="comma-separated names, or 'all'")]
FileOpt = Annotated[Path | None, typer.Option("--file", "-f", help="encodings, one per line ('-' = stdin)")]
SampleOpt = Annotated[int | None, typer.Option("--sample", help="score N architectures sampled from the space")]
SeedOpt = Annotated[int, typer.Option("--seed", help="seed of --sample")]
DeisoOpt = Annotated[bool, typer.Option("--deiso", help="sample uniformly over isomorphism classes")]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", help="worker processes (0: automatic)")]
DeviceOpt = Annotated[str, typer.Option("--device", help=DEVICE_HELP)]
SupernetOpt = Annotated[
    str | None,
    typer.Option(
        "--supernet",
        help="checkpoint (name or sha256 prefix, in ARCHSCORE_SUPERNET_DIR or built in) for oneshot_acc / "
        "oneshot_loss; default: the newest complete one there, else the built-in one of the space",
    ),
]
WeightsOpt = Annotated[
    str | None,
    typer.Option(
        "--weights",
        help="a supernet checkpoint (name or sha256 prefix, in "
        "ARCHSCORE_SUPERNET_DIR): each network takes its path's weights "
        "from it instead of a random init",
    ),
]
