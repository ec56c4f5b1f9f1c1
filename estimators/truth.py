"""Ground truth: the embedded NAS-Bench-201 table and user tables (CSV/JSON of encoding -> value).

Values are looked up by architecture (any encoding the space accepts), not by isomorphism class:
isomorphic cells were trained separately and their accuracies differ. Torch-free.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from estimators.spaces.base import Arch, EncodingError, SearchSpace, decode_text_encoding, get_space

NB201_TABLE = "nb201_ground_truth.csv.gz"
NB201_PUBLISHED_PROXIES = "nb201_suitezero_proxies_cifar10.csv.gz"
MAX_USER_TABLE_ROWS = 1_000_000


class TruthError(ValueError):
    """A ground-truth table or column that cannot be used; the message says why."""


@dataclass(frozen=True)
class GroundTruth:
    """One column of ground truth for one space: architecture -> value (higher is better)."""

    space: str
    column: str
    values: dict[Arch, float] = field(repr=False)
    source: str = "embedded"

    def __len__(self) -> int:
        return len(self.values)

    def get(self, arch: Arch) -> float | None:
        return self.values.get(tuple(arch))

    def lookup(self, encoding: Any) -> float | None:
        """Value for any accepted encoding, None when the table has no entry for it."""
        return self.get(get_space(self.space).parse(encoding))


def _read_embedded_csv(name: str) -> list[dict[str, str]]:
    raw = (resources.files("estimators.data") / name).read_bytes()
    with gzip.open(io.BytesIO(raw), "rt", newline="") as fh:
        return list(csv.DictReader(fh))


@functools.lru_cache(maxsize=1)
def _nb201_rows() -> tuple[dict[str, str], ...]:
    return tuple(_read_embedded_csv(NB201_TABLE))


@functools.lru_cache(maxsize=1)
def nb201_index_table() -> tuple[str, ...]:
    """NAS-Bench-201 index -> architecture string."""
    rows = _nb201_rows()
    assert all(int(r["index"]) == i for i, r in enumerate(rows)), "embedded table out of index order"
    return tuple(r["arch"] for r in rows)


def builtin_columns(space: str) -> tuple[str, ...]:
    return get_space(space).ground_truth_columns


@functools.lru_cache(maxsize=16)
def load_builtin(space: str = "nb201", column: str = "cifar10_test") -> GroundTruth:
    sp = get_space(space)
    if column not in sp.ground_truth_columns:
        raise TruthError(
            f"unknown ground-truth column {column!r} for {sp.name}; available: {', '.join(sp.ground_truth_columns)}"
        )
    from estimators.spaces.nb201 import string_to_arch

    values = {string_to_arch(r["arch"]): float(r[column]) for r in _nb201_rows() if r[column] not in ("", "nan")}
    return GroundTruth(sp.name, column, values)


@functools.lru_cache(maxsize=1)
def nb201_published_proxies() -> dict[str, dict[Arch, float]]:
    """NAS-Bench-Suite-Zero's published proxy scores (9,445 cells): column -> {arch: value}."""
    from estimators.spaces.nb201 import string_to_arch

    rows = _read_embedded_csv(NB201_PUBLISHED_PROXIES)
    columns = [c for c in rows[0] if c != "arch"]
    table: dict[str, dict[Arch, float]] = {c: {} for c in columns}
    for r in rows:
        arch = string_to_arch(r["arch"])
        for c in columns:
            table[c][arch] = float(r[c])
    return table


def _coerce_value(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise TruthError(f"{where}: value {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TruthError(f"{where}: value {value!r} is not a number") from None
    if not math.isfinite(number):
        raise TruthError(f"{where}: value {value!r} is not finite")
    return number


def table_from_pairs(space: SearchSpace, column: str, pairs: list[tuple[Any, Any]], source: str) -> GroundTruth:
    """Validate (encoding, value) pairs; errors name the entry. Duplicate architectures are refused."""
    if not pairs:
        raise TruthError(f"{source}: the table is empty")
    if len(pairs) > MAX_USER_TABLE_ROWS:
        raise TruthError(f"{source}: {len(pairs)} entries exceed the limit of {MAX_USER_TABLE_ROWS}")
    values: dict[Arch, float] = {}
    for i, (encoding, value) in enumerate(pairs):
        where = f"{source}: entry {i}"
        try:
            arch = space.parse(encoding)
        except EncodingError as exc:
            raise TruthError(f"{where}: {exc}") from None
        if arch in values:
            raise TruthError(f"{where}: architecture {space.to_string(arch)} appears twice")
        values[arch] = _coerce_value(value, where)
    return GroundTruth(space.name, column, values, source)


def parse_table(text: str, space: str, column: str | None = None, fmt: str | None = None, source: str = "table") -> GroundTruth:
    """Parse a user table. JSON: {encoding: value} or [{"arch": encoding, "value": v}, ...].
    CSV: a header with an ``arch`` column and the value column (``column``, or the only other one)."""
    sp = get_space(space)
    fmt = fmt or ("json" if text.lstrip()[:1] in "{[" else "csv")
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TruthError(f"{source}: invalid JSON ({exc})") from None
        if isinstance(data, dict):
            pairs = [(decode_text_encoding(k), v) for k, v in data.items()]
        elif isinstance(data, list) and all(isinstance(r, dict) and "arch" in r and "value" in r for r in data):
            pairs = [(r["arch"], r["value"]) for r in data]
        else:
            raise TruthError(f"{source}: JSON must be {{encoding: value}} or a list of {{\"arch\", \"value\"}} objects")
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
    pairs = [(decode_text_encoding(r["arch"] or ""), r[column]) for r in reader]
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
