"""Every estimator the service offers, zero-shot and one-shot (torch-free)."""

from __future__ import annotations

from archscore.estimators.one_shot.manifest import ONE_SHOT
from archscore.estimators.zero_shot.manifest import ZERO_SHOT, EstimatorInfo

ESTIMATORS: dict[str, EstimatorInfo] = {**ZERO_SHOT, **ONE_SHOT}


def is_one_shot(name: str) -> bool:
    return name in ONE_SHOT
