"""NAS-Bench-101's shipped table: 500 rows of NASLib's NAS-Bench-Suite-Zero data (validation accuracy
and published proxy scores; see estimators/data/README.md), keyed by module hash.

The 500 rows are unpruned specs of 292 distinct modules: many prune to the same graph (55 to the
input->output cell alone), and NASLib labelled each row with one randomly chosen training repeat.
A module's ground truth and published scores here are the means over its rows.
"""

from __future__ import annotations

import functools
import json
import math
from collections import defaultdict

from archscore.estimators.spaces.nb101.encoding import module_hash, spec_to_cell
from archscore.estimators.spaces.tables import SUITEZERO_ESTIMATORS, read_embedded_csv

TABLE = "nb101_suitezero_cifar10.csv.gz"
GROUND_TRUTH_COLUMNS = ("val_accuracy",)


@functools.lru_cache(maxsize=1)
def _modules() -> tuple[dict, dict[str, list[dict[str, str]]]]:
    """(module hash -> pruned cell, module hash -> its rows), in order of first appearance."""
    cells: dict = {}
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in read_embedded_csv(TABLE):
        cell = spec_to_cell({"matrix": json.loads(r["matrix"]), "ops": json.loads(r["ops"])})
        key = module_hash(cell)
        cells.setdefault(key, cell)
        rows[key].append(r)
    return cells, dict(rows)


def _mean(values: list[float]) -> float:
    """The mean; exactly the value when all are equal (params, flops), so ties stay ties."""
    return values[0] if len(set(values)) == 1 else math.fsum(values) / len(values)


def _mean_column(column: str) -> dict[str, float]:
    return {k: _mean([float(r[column]) for r in rs]) for k, rs in _modules()[1].items()}


def cells_by_hash() -> dict:
    """Module hash -> pruned cell of every module in the table."""
    return _modules()[0]


@functools.lru_cache(maxsize=len(GROUND_TRUTH_COLUMNS))
def ground_truth(column: str) -> dict[str, float]:
    return _mean_column(column)


@functools.lru_cache(maxsize=1)
def published_proxies() -> dict[str, dict[str, float]]:
    """Estimator -> {module hash: mean published score over the module's rows}."""
    header = next(iter(_modules()[1].values()))[0]
    return {est: _mean_column(col) for col, est in SUITEZERO_ESTIMATORS.items() if col in header}
