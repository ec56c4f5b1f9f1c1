"""archscore: score neural architectures with efficient performance estimators and measure how well
they rank.

The public face of the library::

    import archscore
    records = archscore.score([[0, 1, 2, 3, 4, 0], 1234], space="nb201", estimators=["synflow", "params"])
    report = archscore.evaluate(archscore.get_space("nb201").sample(50, seed=0), space="nb201")
    archscore.list_estimators()

Everything here is imported on first use, so ``import archscore`` is cheap and does not load torch
(the HTTP API, ``archscore.service``, never does).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# name -> the module that defines it
_EXPORTS = {
    "score": "archscore.library",
    "evaluate": "archscore.library",
    "get_space": "archscore.library",
    "list_spaces": "archscore.library",
    "list_estimators": "archscore.library",
    "ArchScore": "archscore.library",
    "Predictor": "archscore.predictors",
    "Protocol": "archscore.estimators.protocol",
    "EstimatorInfo": "archscore.estimators.catalog",
    "SearchSpace": "archscore.estimators.spaces.base",
    "EncodingError": "archscore.estimators.spaces.base",
    "DeviceError": "archscore.estimators.device",
}

__all__ = sorted(_EXPORTS) + ["__version__"]

if TYPE_CHECKING:
    from archscore.estimators.catalog import EstimatorInfo
    from archscore.estimators.device import DeviceError
    from archscore.estimators.protocol import Protocol
    from archscore.estimators.spaces.base import EncodingError, SearchSpace
    from archscore.library import ArchScore, evaluate, get_space, list_estimators, list_spaces, score
    from archscore.predictors import Predictor


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'archscore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
