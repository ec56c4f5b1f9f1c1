"""NAS-Bench-201's shipped tables: all 15,625 cells with their ground truth, and the published
NAS-Bench-Suite-Zero proxy scores of 9,445 cells (see estimators/data/README.md)."""

from __future__ import annotations

import functools

from archscore.estimators.spaces.tables import read_embedded_csv, suitezero_proxies

GROUND_TRUTH_TABLE = "nb201_ground_truth.csv.gz"
PUBLISHED_TABLE = "nb201_suitezero_proxies_cifar10.csv.gz"
GROUND_TRUTH_COLUMNS = (
    "cifar10_test",
    "cifar100_test",
    "imagenet16_120_test",
    "cifar10valid_valid",
    "cifar10valid_test",
    "cifar10_val_suitezero",
)


@functools.lru_cache(maxsize=1)
def ground_truth_rows() -> tuple[dict[str, str], ...]:
    return tuple(read_embedded_csv(GROUND_TRUTH_TABLE))


@functools.lru_cache(maxsize=1)
def index_table() -> tuple[str, ...]:
    """NAS-Bench-201 index -> architecture string."""
    rows = ground_truth_rows()
    assert all(int(r["index"]) == i for i, r in enumerate(rows)), "embedded table out of index order"
    return tuple(r["arch"] for r in rows)


@functools.lru_cache(maxsize=len(GROUND_TRUTH_COLUMNS))
def ground_truth(column: str) -> dict[str, float]:
    """Architecture string -> value of one column."""
    return {r["arch"]: float(r[column]) for r in ground_truth_rows() if r[column] not in ("", "nan")}


@functools.lru_cache(maxsize=1)
def published_proxies() -> dict[str, dict[str, float]]:
    """Estimator -> {architecture string: published score}."""
    rows = read_embedded_csv(PUBLISHED_TABLE)
    return suitezero_proxies(rows, [r["arch"] for r in rows])
