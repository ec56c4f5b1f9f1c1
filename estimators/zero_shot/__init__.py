"""Zero-shot estimators. The manifest is torch-free; import ``engine`` for scoring (needs torch)."""

from archscore.estimators.zero_shot.manifest import ZERO_SHOT, EstimatorInfo, list_zero_shot

__all__ = ["ZERO_SHOT", "EstimatorInfo", "list_zero_shot"]
