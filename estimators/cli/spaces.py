"""`archscore spaces` and `archscore estimators`: what there is to score with."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Column, Table

from archscore.estimators.cli.console import out
from archscore.estimators.spaces import get_space, list_spaces


def spaces(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the search spaces, their encodings and ground-truth columns."""
    info = [get_space(n).describe() for n in list_spaces()]
    if as_json:
        out.print_json(json.dumps(info))
        return
    table = Table("space", "size", "encodings", "ground truth")
    for s in info:
        table.add_row(
            s["name"],
            "-" if s["size"] is None else f"{s['size']:,}",
            ", ".join(s["encodings"]),
            ", ".join(s["ground_truth_columns"]),
        )
    out.print(table)


def estimators(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the estimators (name, kind, whether they need data, version), the installed plugins' after the
    built-in ones with their module. One-shot estimators are scored with `archscore supernet eval` or
    through the service."""
    from archscore.estimators.catalog import ESTIMATORS

    if as_json:
        out.print_json(json.dumps([e.to_dict() for e in ESTIMATORS.values()]))
        return
    table = Table(Column("name", no_wrap=True), Column("kind", no_wrap=True), "data", "version", "unit", "definition")
    for e in ESTIMATORS.values():
        kind = e.kind if e.module is None else f"{e.kind}, plugin {e.module}"
        table.add_row(e.name, kind, "yes" if e.needs_data else "no", e.version, e.unit, e.description)
    out.print(table)
