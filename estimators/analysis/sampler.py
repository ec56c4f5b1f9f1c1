"""Supernet sampler: the one-shot estimators' criteria with checkpoints trained with
different samplers (uniform, deiso, fair) on the same architectures, and how their rankings agree.
Name the checkpoints in options.supernets (CLI --supernets)."""

from __future__ import annotations

from archscore.estimators.analysis.checkpoint_comparison import make_study
from archscore.estimators.analysis.registry import register_study

register_study(
    make_study(
        "sampler",
        __doc__.split("\n\n")[0].replace("\n", " "),
        lambda c: str(c.get("sampler")),
        "sampler of the supernet's training",
    )
)
