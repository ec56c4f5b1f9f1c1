"""NAS-Bench-301's shipped table: 725 DARTS genotypes of NASLib's NAS-Bench-Suite-Zero data with
NASLib's validation-accuracy label (the NB301 v1.0 surrogate's prediction) and the published proxy
scores (see estimators/data/README.md), keyed by canonical key.

The 725 genotypes have 725 distinct canonical keys. Should a table hold two rows with one key, the
first row is kept (ground truth, published scores and architectures alike).
"""

from __future__ import annotations

import functools
import json

from archscore.estimators.spaces.nb301.encoding import canonical_key, genotype_from_json
from archscore.estimators.spaces.tables import read_embedded_csv, suitezero_proxies

TABLE = "nb301_suitezero_cifar10.csv.gz"
GROUND_TRUTH_COLUMNS = ("val_accuracy",)


@functools.lru_cache(maxsize=1)
def _table() -> tuple[tuple, tuple[str, ...], tuple[dict[str, str], ...]]:
    """(genotypes, canonical keys, rows) in table order, the first row of each key only."""
    archs, keys, rows = [], [], []
    seen: set[str] = set()
    for r in read_embedded_csv(TABLE):
        arch = genotype_from_json(json.loads(r["genotype"]))
        key = canonical_key(arch)
        if key in seen:
            continue  # keep the first row of a key (does not happen in the shipped table)
        seen.add(key)
        archs.append(arch)
        keys.append(key)
        rows.append(r)
    return tuple(archs), tuple(keys), tuple(rows)


def published_archs() -> list:
    """The genotypes of the table, in table order."""
    return list(_table()[0])


@functools.lru_cache(maxsize=len(GROUND_TRUTH_COLUMNS))
def ground_truth(column: str) -> dict[str, float]:
    """Canonical key -> value of one column."""
    if column not in GROUND_TRUTH_COLUMNS:
        raise KeyError(f"unknown nb301 ground-truth column {column!r}; available: {', '.join(GROUND_TRUTH_COLUMNS)}")
    _, keys, rows = _table()
    return {k: float(r[column]) for k, r in zip(keys, rows) if r[column] not in ("", "nan")}


@functools.lru_cache(maxsize=1)
def published_proxies() -> dict[str, dict[str, float]]:
    """Estimator -> {canonical key: published score}."""
    _, keys, rows = _table()
    return suitezero_proxies(list(rows), list(keys))
