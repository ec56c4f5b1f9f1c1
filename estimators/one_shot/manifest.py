"""Torch-free manifest of the one-shot estimators (see ``archscore.estimators.one_shot.evaluation``)."""

from __future__ import annotations

from archscore.estimators.zero_shot.manifest import EstimatorInfo

ONE_SHOT: dict[str, EstimatorInfo] = {
    info.name: info
    for info in (
        EstimatorInfo("oneshot_acc", "one_shot", "higher", True, "1", "",
                      "top-1 accuracy of the architecture in a trained supernet of its space on the validation split"),
        EstimatorInfo("oneshot_loss", "one_shot", "higher", True, "1", "",
                      "negated mean cross-entropy of the architecture in a trained supernet of its space on the validation split"),
    )
}
