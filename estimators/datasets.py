"""Image data for zero-shot proxies: the embedded CIFAR-10 subset and full CIFAR folders.

The embedded subset (``estimators/data/cifar10_subset.npz``) holds CIFAR-10 training
images 0..3999 and test images 0..999; see ``estimators/data/README.md``. Full data
can be read from the standard ``cifar-10-batches-py`` / ``cifar-100-python`` folders,
whose pickles are loaded with a restricted unpickler (no arbitrary code execution).

``torch`` is imported only inside :func:`fixed_batches`.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "DATASETS",
    "SPLITS",
    "DatasetError",
    "ImageSet",
    "fixed_batches",
    "load_cifar_folder",
    "load_dataset",
    "load_embedded_cifar10",
]

# NAS-Bench-201 normalisation, on the 0-255 scale (divide by 255 for [0, 1] inputs).
CIFAR10_MEAN = (125.3, 123.0, 113.9)
CIFAR10_STD = (63.0, 62.1, 66.7)
CIFAR100_MEAN = (129.3, 124.1, 112.4)
CIFAR100_STD = (68.2, 65.4, 70.4)

DATASETS = ("cifar10", "cifar100")
SPLITS = ("train", "test")

_NUM_CLASSES = {"cifar10": 10, "cifar100": 100}
_NORMALISATION = {
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": (CIFAR100_MEAN, CIFAR100_STD),
}
# Folder name, files per split, and the label key inside each pickle.
_LAYOUT: dict[str, tuple[str, dict[str, tuple[str, ...]], str]] = {
    "cifar10": (
        "cifar-10-batches-py",
        {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)},
        "labels",
    ),
    "cifar100": ("cifar-100-python", {"train": ("train",), "test": ("test",)}, "fine_labels"),
}
_EMBEDDED_FILE = "cifar10_subset.npz"
_IMAGE_SHAPE = (32, 32, 3)


class DatasetError(ValueError):
    """A dataset could not be found, read or validated."""


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Images ``x`` (N, 32, 32, 3) uint8 HWC with labels ``y`` (N,) int64.

    Arrays are made read-only (instances may be shared through caches).
    """

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    name: str
    source: str

    def __post_init__(self) -> None:
        x = np.asarray(self.x)
        y = np.asarray(self.y)
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != _IMAGE_SHAPE:
            raise DatasetError(f"{self.source}: images must be uint8 of shape (N, 32, 32, 3), got {x.dtype} {x.shape}")
        if y.ndim != 1 or y.shape[0] != x.shape[0] or not np.issubdtype(y.dtype, np.integer):
            raise DatasetError(
                f"{self.source}: labels must be an integer vector of length {x.shape[0]}, got {y.dtype} {y.shape}"
            )
        if self.num_classes < 1:
            raise DatasetError(f"{self.source}: num_classes must be >= 1, got {self.num_classes}")
        y64 = y.astype(np.int64, copy=False)
        if y64.size and (y64.min() < 0 or y64.max() >= self.num_classes):
            raise DatasetError(
                f"{self.source}: labels out of range 0..{self.num_classes - 1} "
                f"(found {int(y64.min())}..{int(y64.max())})"
            )
        object.__setattr__(self, "x", _read_only(x, owned=False))
        object.__setattr__(self, "y", _read_only(y64, owned=y64 is not y))

    def __len__(self) -> int:
        return int(self.x.shape[0])


def _read_only(arr: np.ndarray, owned: bool) -> np.ndarray:
    """Return ``arr`` read-only, copying it first unless we own it."""
    if arr.flags.writeable:
        if not owned:
            arr = arr.copy()
        arr.setflags(write=False)
    return arr


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> None:
    if value not in choices:
        raise DatasetError(f"unknown {what} {value!r}; expected one of {', '.join(choices)}")


@functools.cache
def load_embedded_cifar10(split: str = "train") -> ImageSet:
    """Embedded CIFAR-10 subset: ``"train"`` = images 0..3999, ``"test"`` = images 0..999."""
    _check_choice(split, SPLITS, "split")
    resource = importlib.resources.files("archscore.estimators.data") / _EMBEDDED_FILE
    try:
        with resource.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
            x = _read_only(npz[f"x_{split}"], owned=True)
            y = npz[f"y_{split}"]
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetError(f"{resource}: cannot read embedded CIFAR-10 subset: {exc}") from exc
    return ImageSet(
        x=x,
        y=y,
        num_classes=10,
        name="cifar10",
        source=f"embedded CIFAR-10 subset ({split} images 0..{len(y) - 1})",
    )


# --------------------------------------------------------------------------- pickles


def _allowed_globals() -> dict[tuple[str, str], Any]:
    try:  # numpy >= 2
        from numpy._core import multiarray, numeric
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    reconstruct = multiarray._reconstruct
    frombuffer = getattr(numeric, "_frombuffer", None)
    allowed: dict[tuple[str, str], Any] = {
        # The original (Python 2) CIFAR pickles reference exactly these three.
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    if frombuffer is not None:  # arrays re-pickled with protocol 5 by numpy
        allowed[("numpy.core.numeric", "_frombuffer")] = frombuffer
        allowed[("numpy._core.numeric", "_frombuffer")] = frombuffer
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy's array-reconstruction globals."""

    _allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}") from None


def _load_pickle(path: Path) -> Any:
    try:
        with open(path, "rb") as fh:
            return _RestrictedUnpickler(fh, encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise DatasetError(f"{path}: not a CIFAR pickle ({exc})") from exc
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read file ({exc})") from exc
    except Exception as exc:  # truncated/garbage data raises many different types
        raise DatasetError(f"{path}: not a CIFAR pickle ({type(exc).__name__}: {exc})") from exc


def _get(d: dict, key: str) -> Any:
    for k in (key.encode("ascii"), key):
        if k in d:
            return d[k]
    raise KeyError(key)


def _read_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    obj = _load_pickle(path)
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: not a CIFAR pickle (top level is {type(obj).__name__}, not dict)")
    try:
        data = _get(obj, "data")
        labels = _get(obj, label_key)
    except KeyError as exc:
        raise DatasetError(f"{path}: not a CIFAR pickle (missing key {exc.args[0]!r})") from None
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DatasetError(f"{path}: 'data' must be a uint8 array of shape (N, 3072), got {desc}")
    if not isinstance(labels, (list, tuple, np.ndarray)) or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels
    ):
        raise DatasetError(f"{path}: {label_key!r} must be a list of integers")
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    if y.shape[0] != data.shape[0]:
        raise DatasetError(f"{path}: {data.shape[0]} images but {y.shape[0]} labels")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise DatasetError(f"{path}: labels out of range 0..{num_classes - 1} (found {int(y.min())}..{int(y.max())})")
    # Rows are R(1024) G(1024) B(1024), each plane row-major: CHW -> HWC.
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), y


def _resolve_folder(path: Path, dataset: str, first_file: str) -> Path:
    folder_name = _LAYOUT[dataset][0]
    if not path.exists():
        raise DatasetError(f"{path}: {dataset} folder not found")
    if not path.is_dir():
        raise DatasetError(f"{path}: not a folder (expected a {folder_name!r} folder)")
    if not (path / first_file).exists() and (path / folder_name).is_dir():
        return path / folder_name  # the parent of the standard folder was given
    return path


def load_cifar_folder(path: str | os.PathLike[str], dataset: str = "cifar10", split: str = "train") -> ImageSet:
    """Load a standard ``cifar-10-batches-py`` or ``cifar-100-python`` folder (or its parent).

    CIFAR-10 train = ``data_batch_1..5`` concatenated in order, test = ``test_batch``;
    CIFAR-100 train/test = ``train``/``test`` with the fine labels.
    """
    _check_choice(dataset, DATASETS, "dataset")
    _check_choice(split, SPLITS, "split")
    folder_name, files, label_key = _LAYOUT[dataset]
    names = files[split]
    folder = _resolve_folder(Path(path), dataset, names[0])
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DatasetError(
            f"{folder}: expected {dataset} file(s) missing: {', '.join(missing)} (is this a {folder_name!r} folder?)"
        )
    num_classes = _NUM_CLASSES[dataset]
    parts = [_read_batch(folder / n, label_key, num_classes) for n in names]
    x = parts[0][0] if len(parts) == 1 else np.concatenate([p[0] for p in parts])
    y = parts[0][1] if len(parts) == 1 else np.concatenate([p[1] for p in parts])
    return ImageSet(
        x=_read_only(x, owned=True),
        y=y,
        num_classes=num_classes,
        name=dataset,
        source=f"{folder} ({split})",
    )


EMBEDDED_TRAIN_IMAGES = 4000
FULL_TRAIN_IMAGES = 50_000  # the CIFAR-10 and CIFAR-100 training sets


def training_images_available(root: str | os.PathLike[str] | None) -> dict[str, int]:
    """Datasets a protocol can draw its batches from, with their number of training images: the
    embedded CIFAR-10 subset without a root, else the standard folders present under ``root``."""
    if root is None:
        return {"cifar10": EMBEDDED_TRAIN_IMAGES}
    return {d: FULL_TRAIN_IMAGES for d in DATASETS if (Path(root) / _LAYOUT[d][0]).is_dir()}


def load_dataset(
    dataset: str = "cifar10", split: str = "train", root: str | os.PathLike[str] | None = None
) -> ImageSet:
    """``root=None``: embedded CIFAR-10 subset; otherwise :func:`load_cifar_folder` on ``root``."""
    _check_choice(dataset, DATASETS, "dataset")
    _check_choice(split, SPLITS, "split")
    if root is not None:
        return load_cifar_folder(root, dataset, split)
    if dataset != "cifar10":
        raise DatasetError(f"{dataset} is not embedded; pass root= pointing to a {_LAYOUT[dataset][0]!r} folder")
    return load_embedded_cifar10(split)


def fixed_batches(
    images: ImageSet, batch_size: int, num_batches: int, seed: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Reproducible normalised batches ``(x float32 NCHW, y int64)``.

    Indices are ``default_rng(seed).permutation(len(images))[:batch_size * num_batches]``
    split in order, so the first ``b`` batches do not depend on ``num_batches >= b``.
    """
    import torch

    for label, value in (("batch_size", batch_size), ("num_batches", num_batches)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise DatasetError(f"{label} must be an integer >= 1, got {value!r}")
    batch_size, num_batches = int(batch_size), int(num_batches)
    total = batch_size * num_batches
    if total > len(images):
        raise DatasetError(
            f"{images.source}: {num_batches} batches of {batch_size} need {total} images, only {len(images)} available"
        )
    if images.name not in _NORMALISATION:
        raise DatasetError(f"no normalisation known for dataset {images.name!r}")
    mean, std = (np.asarray(v, dtype=np.float32) / np.float32(255.0) for v in _NORMALISATION[images.name])

    idx = np.random.default_rng(seed).permutation(len(images))[:total]
    x = images.x[idx].astype(np.float32) / np.float32(255.0)
    x = (x - mean) / std
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(images.y[idx].astype(np.int64, copy=False))
    return [
        (xt[i * batch_size : (i + 1) * batch_size], yt[i * batch_size : (i + 1) * batch_size])
        for i in range(num_batches)
    ]
