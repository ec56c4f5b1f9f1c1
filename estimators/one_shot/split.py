"""The fixed train/validation split of the training images used for supernets."""

from __future__ import annotations

import numpy as np

from estimators.datasets import ImageSet

VALIDATION_IMAGES = 500


def split(images: ImageSet) -> tuple[ImageSet, ImageSet]:
    """The last VALIDATION_IMAGES of a seed-0 permutation validate; the rest train."""
    order = np.random.default_rng(0).permutation(len(images))
    val, train = order[-VALIDATION_IMAGES:], order[:-VALIDATION_IMAGES]

    def part(idx: np.ndarray, tag: str) -> ImageSet:
        return ImageSet(images.x[idx], images.y[idx], images.num_classes, images.name, f"{images.source} ({tag})")

    return part(train, "train split"), part(val, "validation split")
