"""Reduced sharing: the one-shot estimators' criteria with checkpoints of K = 1, 2, 5 ...
partitioned supernets (network.partitions: each part trained only on its own architectures, scoring
them) on the same architectures, and how their rankings agree. Name the checkpoints in
options.supernets (CLI --supernets)."""

from __future__ import annotations

from archscore.estimators.analysis.checkpoint_comparison import make_study
from archscore.estimators.analysis.registry import register_study

register_study(
    make_study(
        "reduced_sharing",
        __doc__.split("\n\n")[0].replace("\n", " "),
        lambda c: f"K={c.get('partitions') or 1}",
        "supernets sharing the space (K)",
    )
)
