"""Reading the tables that ship in ``estimators/data`` (torch-free), shared by the spaces' data modules."""

from __future__ import annotations

import csv
import gzip
import io
from importlib import resources

# NAS-Bench-Suite-Zero column -> the estimator it publishes (the other columns have no estimator here)
SUITEZERO_ESTIMATORS = {
    "grad_norm": "grad_norm",
    "snip": "snip",
    "grasp": "grasp",
    "fisher": "fisher",
    "jacov": "jacob_cov",
    "synflow": "synflow",
    "nwot": "relu_logdet",
    "params": "params",
    "flops": "flops",
}


def read_embedded_csv(name: str) -> list[dict[str, str]]:
    """Rows of a gzipped CSV file of ``estimators/data``."""
    raw = (resources.files("archscore.estimators.data") / name).read_bytes()
    with gzip.open(io.BytesIO(raw), "rt", newline="") as fh:
        return list(csv.DictReader(fh))


def suitezero_proxies(rows: list[dict[str, str]], keys: list[str]) -> dict[str, dict[str, float]]:
    """Published scores of a NAS-Bench-Suite-Zero table: estimator -> {key of the row: value}."""
    table: dict[str, dict[str, float]] = {}
    for column, estimator in SUITEZERO_ESTIMATORS.items():
        if rows and column in rows[0]:
            table[estimator] = {k: float(r[column]) for k, r in zip(keys, rows) if r[column] not in ("", "nan")}
    return table
