"""``az_expressivity``, ``az_progressivity``, ``az_trainability``: three of AZ-NAS's four proxies (Lee & Ham,
CVPR 2024; the fourth, complexity, is ``flops``; the rank aggregation over a population is the ``az_nas``
population estimator's).

All three read the ``cell_features`` pass: the features of the stem and of each cell (the modules the network's
space declares, ``SearchSpace.cell_outputs``) of a copy of the network re-initialised from the protocol's seed
(Kaiming normal fan-in), in train mode, on the first 64 images of the Gaussian batch. Expressivity: the sum over
the features of the entropy of their channel covariance's normalised eigenvalues; progressivity: the smallest
increase of that entropy from one feature to the next; trainability: the mean over cells of
-σ - 1/(σ + 1e-6) + 2, σ the largest singular value of the cell's gradient map under a Rademacher cotangent.
They follow cvlab-yonsei/AZ-NAS ``NB201/ZeroShotProxy/compute_az_nas_score.py`` (``compute_nas_score``) as its
NAS-Bench-201 notebook runs it (``NB201/tss_general.ipynb``: Gaussian inputs, batch 64, train mode, cells from
``custom/tss_model.py``: ``extract_cell_features``); VKDNW's re-run (ondratybl/VKDNW, same file) is identical.
Differences: where the authors give -inf (a NaN score, an identity cell) these are Undefined with the reason;
the entropies are computed in float64, negative round-off eigenvalues set to 0 (the authors' float32 gives NaN
for DARTS's wide stem); the cotangents come from a generator seeded with the protocol's seed, not the global RNG;
a network outside a space declares no cells, and the three are Undefined.
"""

from __future__ import annotations

from archscore.estimators.zero_shot.passes.cell_features import CellFeatures
from archscore.estimators.zero_shot.proxies import ProxyInput, Undefined, _finite, _shared, register_proxy


def _cells(inp: ProxyInput) -> CellFeatures:
    cells: CellFeatures = _shared(inp).own["cell_features"]
    if not cells.entropies:
        raise Undefined(cells.reason or "no cell features")
    return cells


def _entropies(inp: ProxyInput, what: str) -> list[float]:
    entropies = _cells(inp).entropies
    if any(e != e for e in entropies):  # NaN: the authors' -inf
        raise Undefined(f"{what}: a cell's features have no variance (their covariance's eigenvalues sum to 0)")
    return entropies


@register_proxy("az_expressivity", {"cell_features"})
def az_expressivity(inp: ProxyInput) -> float:
    return _finite(sum(_entropies(inp, "az_expressivity")), "az_expressivity")


@register_proxy("az_progressivity", {"cell_features"})
def az_progressivity(inp: ProxyInput) -> float:
    entropies = _entropies(inp, "az_progressivity")
    if len(entropies) < 2:
        raise Undefined("az_progressivity needs the stem's and at least one cell's features")
    return _finite(min(b - a for a, b in zip(entropies, entropies[1:])), "az_progressivity")


@register_proxy("az_trainability", {"cell_features"})
def az_trainability(inp: ProxyInput) -> float:
    cells = _cells(inp)
    if cells.reason is not None:
        raise Undefined(cells.reason)
    if not cells.trainability:
        raise Undefined("az_trainability needs the stem's and at least one cell's features")
    if any(t == float("-inf") for t in cells.trainability):
        raise Undefined("a cell passes its input's gradient unchanged (an identity cell: the authors score -inf)")
    return _finite(sum(cells.trainability) / len(cells.trainability), "az_trainability")
