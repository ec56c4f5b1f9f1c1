"""Ground truth: each space's built-in columns and user tables (CSV/JSON of encoding -> value).

Values are looked up by the space's ``truth_key``: per cell in NAS-Bench-201 (isomorphic cells were
trained separately and their accuracies differ), per canonical key in benchmarks that hold one entry
per class (NAS-Bench-101's module hash). Torch-free.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archscore.estimators.spaces.base import (
    GROUND_TRUTH,
    Arch,
    EncodingError,
    ForeignEncoding,
    SearchSpace,
    decode_text_encoding,
    get_space,
)

MAX_USER_TABLE_ROWS = 1_000_000
# NDS records (facebookresearch/nds data) hold top-1 errors in percent; accuracy = 100 - error of:
NDS_COLUMNS = {
    "min_test_top1": "the lowest test error over the epochs (NDS's own choice; the default)",
    "test_ep_top1": "the test error of the last epoch, test_ep_top1[-1] (NASWOT's choice)",
}


class TruthError(ValueError):
    """A ground-truth table or column that cannot be used; the message says why."""


@dataclass(frozen=True)
class GroundTruth:
    """One column of ground truth for one space: truth key -> value (higher is better)."""

    space: str
    column: str
    values: dict[str, float] = field(repr=False)
    source: str = "embedded"
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> entries of another space left out

    def __len__(self) -> int:
        return len(self.values)

    def get(self, arch: Arch) -> float | None:
        return self.values.get(get_space(self.space).truth_key(arch))

    def lookup(self, encoding: Any) -> float | None:
        """Value for any accepted encoding, None when the table has no entry for it."""
        return self.get(get_space(self.space).parse(encoding))


def builtin_columns(space: str) -> tuple[str, ...]:
    return get_space(space).ground_truth_columns


@functools.lru_cache(maxsize=16)
def load_builtin(space: str, column: str) -> GroundTruth:
    sp = get_space(space)
    if column not in sp.ground_truth_columns or not sp.has(GROUND_TRUTH):
        available = ", ".join(sp.ground_truth_columns) or "none"
        raise TruthError(f"unknown ground-truth column {column!r} for {sp.name}; available: {available}")
    return GroundTruth(sp.name, column, dict(sp.ground_truth(column)))


def _coerce_value(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise TruthError(f"{where}: value {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TruthError(f"{where}: value {str(value)[:40]!r} is not a number") from None
    except OverflowError:
        raise TruthError(f"{where}: value {str(value)[:40]!r}... is too large") from None
    if not math.isfinite(number):
        raise TruthError(f"{where}: value {value!r} is not finite")
    return number


def table_from_pairs(space: SearchSpace, column: str, pairs: list[tuple[Any, Any]], source: str) -> GroundTruth:
    """Validate (encoding, value) pairs; errors name the entry. Duplicate architectures are refused;
    entries that are encodings of another space (``ForeignEncoding``) are left out and counted."""
    if not pairs:
        raise TruthError(f"{source}: the table is empty")
    if len(pairs) > MAX_USER_TABLE_ROWS:
        raise TruthError(f"{source}: {len(pairs)} entries exceed the limit of {MAX_USER_TABLE_ROWS}")
    values: dict[str, float] = {}
    skipped: dict[str, int] = {}
    for i, (encoding, value) in enumerate(pairs):
        where = f"{source}: entry {i}"
        try:
            arch = space.parse(encoding)
        except ForeignEncoding as exc:
            skipped[str(exc)] = skipped.get(str(exc), 0) + 1
            continue
        except EncodingError as exc:
            raise TruthError(f"{where}: {exc}") from None
        key = space.truth_key(arch)
        if key in values:
            raise TruthError(f"{where}: architecture {space.to_string(arch)} appears twice (key {key})")
        values[key] = _coerce_value(value, where)
    if not values:
        reasons = "; ".join(f"{n} x {reason}" for reason, n in skipped.items())
        raise TruthError(f"{source}: no entry is an architecture of {space.name} ({reasons})")
    return GroundTruth(space.name, column, values, source, skipped)


def _nds_records(data: Any) -> list[dict] | None:
    """The records of the published NDS format (a list of records holding ``net``, or
    ``{"top": [...], "mid": [...]}``), None when ``data`` is not in that format."""
    lists = list(data.values()) if isinstance(data, dict) and data else [data]
    if not all(isinstance(x, list) and all(isinstance(r, dict) and "net" in r for r in x) for x in lists):
        return None
    return [record for records in lists for record in records] or None


def _nds_pairs(records: list[dict], column: str, source: str) -> list[tuple[Any, float]]:
    """(record, accuracy in percent) of each record: 100 - the chosen top-1 error."""
    if column not in NDS_COLUMNS:
        choices = "; ".join(f"{k}: {v}" for k, v in NDS_COLUMNS.items())
        raise TruthError(f"{source}: NDS records have no column {column!r}; use {choices}")
    pairs = []
    for i, record in enumerate(records):
        error = record.get(column)
        if column == "test_ep_top1":
            error = error[-1] if isinstance(error, list) and error else None
        if error is None:
            raise TruthError(f"{source}: record {i} has no {column}" + (" epochs" if column == "test_ep_top1" else ""))
        where = f"{source}: record {i}: {column}"
        error = _coerce_value(error, where)
        if not 0.0 <= error <= 100.0:
            raise TruthError(f"{where}: a top-1 error of {error:g} is not a percentage (0..100)")
        pairs.append((record, 100.0 - error))
    return pairs


def parse_table(
    text: str, space: str, column: str | None = None, fmt: str | None = None, source: str = "table"
) -> GroundTruth:
    """Parse a user table. JSON: {encoding: value}, [{"arch": encoding, "value": v}, ...], or NDS
    records (``column``: one of NDS_COLUMNS, default min_test_top1).
    CSV: a header with an ``arch`` column and the value column (``column``, or the only other one)."""
    sp = get_space(space)
    fmt = fmt or ("json" if text.lstrip()[:1] in "{[" else "csv")
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TruthError(f"{source}: invalid JSON ({exc})") from None
        except (RecursionError, ValueError) as exc:  # nested too deeply; an integer of too many digits
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]
            raise TruthError(f"{source}: JSON cannot be read ({reason})") from None
        records = _nds_records(data)
        if records is not None:
            column = column or "min_test_top1"
            return table_from_pairs(sp, column, _nds_pairs(records, column, source), source)
        if isinstance(data, dict):
            pairs = [(decode_text_encoding(k), v) for k, v in data.items()]
        elif isinstance(data, list) and all(isinstance(r, dict) and "arch" in r and "value" in r for r in data):
            pairs = [(r["arch"], r["value"]) for r in data]
        else:
            raise TruthError(
                f'{source}: JSON must be {{encoding: value}}, a list of {{"arch", "value"}} objects, or NDS records '
                '(a list of records holding "net", or {"top": [...], "mid": [...]})'
            )
        return table_from_pairs(sp, column or "value", pairs, source)
    if fmt != "csv":
        raise TruthError(f"{source}: unknown format {fmt!r}; use csv or json")
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    if "arch" not in header:
        raise TruthError(f"{source}: CSV needs an 'arch' column; header is {header}")
    others = [h for h in header if h != "arch"]
    if column is None:
        if len(others) != 1:
            raise TruthError(f"{source}: CSV has value columns {others}; name the one to use")
        column = others[0]
    elif column not in others:
        raise TruthError(f"{source}: CSV has no column {column!r}; it has {others}")
    try:
        pairs = [(decode_text_encoding(r["arch"] or ""), r[column]) for r in reader]
    except csv.Error as exc:  # e.g. a field over the csv module's size limit
        raise TruthError(f"{source}: CSV cannot be read (line {reader.line_num}: {exc})") from None
    return table_from_pairs(sp, column, pairs, source)


def load_table(path: str | Path, space: str, column: str | None = None) -> GroundTruth:
    path = Path(path)
    if not path.is_file():
        raise TruthError(f"{path}: no such file")
    fmt = "json" if path.suffix.lower() == ".json" else "csv" if path.suffix.lower() == ".csv" else None
    try:
        text = path.read_text()
    except (UnicodeDecodeError, OSError) as exc:
        raise TruthError(f"{path}: cannot be read as text ({exc.__class__.__name__})") from None
    return parse_table(text, space, column, fmt, source=str(path))


def resolve_truth(space: str, spec: str) -> GroundTruth:
    """A built-in column name, or ``path[:column]`` of a user table."""
    if spec in builtin_columns(space):
        return load_builtin(space, spec)
    path, _, column = spec.partition(":") if not Path(spec).exists() else (spec, "", "")
    if Path(path).exists():
        return load_table(path, space, column or None)
    raise TruthError(
        f"ground truth {spec!r} is neither a built-in column of {space} ({', '.join(builtin_columns(space))}) "
        "nor an existing file"
    )
