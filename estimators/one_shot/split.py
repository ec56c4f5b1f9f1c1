"""The fixed train/validation split of the training images used for supernets, and the held-out
images one-shot scores may be taken on (the validation split plus the dataset's test images: none
of them is ever used to train a supernet)."""

from __future__ import annotations

import numpy as np

from archscore.estimators.datasets import ImageSet, load_dataset

VALIDATION_IMAGES = 500


def split(images: ImageSet) -> tuple[ImageSet, ImageSet]:
    """The last VALIDATION_IMAGES of a seed-0 permutation validate; the rest train."""
    order = np.random.default_rng(0).permutation(len(images))
    val, train = order[-VALIDATION_IMAGES:], order[:-VALIDATION_IMAGES]

    def part(idx: np.ndarray, tag: str) -> ImageSet:
        return ImageSet(images.x[idx], images.y[idx], images.num_classes, images.name, f"{images.source} ({tag})")

    return part(train, "train split"), part(val, "validation split")


def held_out(dataset: str, data_root=None) -> ImageSet:
    """The validation split followed by the test split (1,500 images for the embedded subset)."""
    _, val = split(load_dataset(dataset, "train", data_root))
    test = load_dataset(dataset, "test", data_root)
    return ImageSet(
        np.concatenate([val.x, test.x]),
        np.concatenate([val.y, test.y]),
        val.num_classes,
        val.name,
        f"{val.source} + {test.source}",
    )
