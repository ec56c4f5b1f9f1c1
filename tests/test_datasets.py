"""Tests for archscore.estimators.datasets (embedded CIFAR-10 subset, CIFAR folders, fixed batches)."""

from __future__ import annotations

import importlib.resources
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from archscore.estimators.datasets import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    DatasetError,
    ImageSet,
    fixed_batches,
    load_cifar_folder,
    load_dataset,
    load_embedded_cifar10,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- helpers


def _py2_pickle(obj) -> bytes:
    """Serialise like Python 2 ``cPickle.dump(obj, f, 2)`` did for the CIFAR files.

    Supports dict, list, tuple, int, bool, None, bytes/str (py2 ``str``) and uint8 ndarrays
    (pickled through ``numpy.core.multiarray._reconstruct`` as numpy 1.x did).
    """
    out = bytearray(b"\x80\x02")

    def emit(o) -> None:
        nonlocal out
        if o is None:
            out += b"N"
        elif o is True or o is False:
            out += b"\x88" if o else b"\x89"
        elif isinstance(o, (int, np.integer)):
            out += b"J" + struct.pack("<i", int(o))
        elif isinstance(o, str):
            emit(o.encode("ascii"))
        elif isinstance(o, bytes):
            if len(o) < 256:
                out += b"U" + bytes([len(o)]) + o
            else:
                out += b"T" + struct.pack("<I", len(o)) + o
        elif isinstance(o, tuple):
            out += b"("
            for item in o:
                emit(item)
            out += b"t"
        elif isinstance(o, list):
            out += b"]"
            if o:
                out += b"("
                for item in o:
                    emit(item)
                out += b"e"
        elif isinstance(o, dict):
            out += b"}"
            for k, v in o.items():
                emit(k)
                emit(v)
                out += b"s"
        elif isinstance(o, np.ndarray):
            assert o.dtype == np.uint8
            out += b"cnumpy.core.multiarray\n_reconstruct\n"
            out += b"(cnumpy\nndarray\n"
            emit((0,))
            emit(b"b")
            out += b"tR"
            out += b"("
            emit(1)
            emit(tuple(o.shape))
            out += b"cnumpy\ndtype\n"
            emit((b"u1", 0, 1))
            out += b"R"
            emit((3, b"|", None, None, None, -1, -1, 0))
            out += b"b"
            emit(False)
            emit(np.ascontiguousarray(o).tobytes())
            out += b"tb"
        else:  # pragma: no cover - helper misuse
            raise TypeError(type(o))

    emit(obj)
    out += b"."
    return bytes(out)


def _images(n: int, seed: int) -> np.ndarray:
    """Random HWC uint8 images; image 0 has constant channels (10, 20, 30) and image 1
    a position-dependent red plane, to pin the CHW -> HWC conversion."""
    x = np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    x[0] = (10, 20, 30)
    rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    x[1, :, :, 0] = (rows * 7 + cols) % 256
    return x


def _to_rows(x_hwc: np.ndarray) -> np.ndarray:
    """HWC images -> CIFAR rows (N, 3072): R plane, G plane, B plane, each row-major."""
    return np.ascontiguousarray(x_hwc.transpose(0, 3, 1, 2)).reshape(len(x_hwc), 3072)


def _write(path: Path, obj, py2: bool = True) -> None:
    path.write_bytes(_py2_pickle(obj) if py2 else pickle.dumps(obj))


def _make_cifar10(root: Path, n: int = 20, py2: bool = True) -> dict[str, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    xs, ys = [], []
    for i in range(1, 6):
        x = _images(n, seed=i)
        y = [(i + j) % 10 for j in range(n)]
        _write(
            folder / f"data_batch_{i}",
            {
                b"batch_label": f"training batch {i} of 5".encode(),
                b"labels": y,
                b"data": _to_rows(x),
                b"filenames": [b"img_%d.png" % j for j in range(n)],
            },
            py2,
        )
        xs.append(x)
        ys.extend(y)
    x_test = _images(n, seed=99)
    y_test = [(3 * j) % 10 for j in range(n)]
    _write(
        folder / "test_batch",
        {b"batch_label": b"testing batch 1 of 1", b"labels": y_test, b"data": _to_rows(x_test)},
        py2,
    )
    _write(folder / "batches.meta", {b"label_names": [b"airplane"] * 10, b"num_vis": 3072}, py2)
    return {
        "folder": folder,
        "x_train": np.concatenate(xs),
        "y_train": np.array(ys),
        "x_test": x_test,
        "y_test": np.array(y_test),
    }


def _make_cifar100(root: Path, n_train: int = 40, n_test: int = 20) -> dict[str, np.ndarray]:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    out = {"folder": folder}
    for split, n, seed in (("train", n_train, 5), ("test", n_test, 6)):
        x = _images(n, seed=seed)
        fine = [(99 - 2 * j) % 100 for j in range(n)]
        _write(
            folder / split,
            {
                b"filenames": [b"f"] * n,
                b"batch_label": split.encode(),
                b"fine_labels": fine,
                b"coarse_labels": [f // 5 for f in fine],
                b"data": _to_rows(x),
            },
        )
        out[f"x_{split}"], out[f"y_{split}"] = x, np.array(fine)
    _write(folder / "meta", {b"fine_label_names": [b"c"] * 100, b"coarse_label_names": [b"s"] * 20})
    return out


CALLS: list[str] = []


def _record_call(tag: str) -> str:
    CALLS.append(tag)
    return tag


class _Evil:
    def __reduce__(self):
        return (_record_call, ("executed",))


# --------------------------------------------------------------------------- embedded subset


def test_embedded_subset_shapes_and_labels():
    train, test = load_embedded_cifar10("train"), load_embedded_cifar10("test")
    assert train.x.shape == (4000, 32, 32, 3) and train.x.dtype == np.uint8
    assert test.x.shape == (1000, 32, 32, 3) and test.x.dtype == np.uint8
    for s in (train, test):
        assert s.y.shape == (len(s),) and s.y.dtype == np.int64
        assert s.num_classes == 10 and s.name == "cifar10"
        assert set(np.unique(s.y).tolist()) == set(range(10))
        assert not s.x.flags.writeable and not s.y.flags.writeable
    # Real images, not blanks/noise: channel means close to the CIFAR-10 statistics.
    assert np.allclose(train.x.reshape(-1, 3).mean(0), CIFAR10_MEAN, atol=3.0)
    assert load_embedded_cifar10("train") is train  # cached
    with pytest.raises(DatasetError, match="split"):
        load_embedded_cifar10("valid")


def test_first_training_image_is_frog():
    npz = np.load(importlib.resources.files("archscore.estimators.data") / "cifar10_subset.npz")
    train, test = load_embedded_cifar10("train"), load_embedded_cifar10("test")
    assert str(npz["label_names"][6]) == "frog"
    assert train.y[0] == 6
    # First labels of data_batch_1 and test_batch of the official CIFAR-10 release.
    assert train.y[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert test.y[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert train.x[0, 0, 0].tolist() == [59, 62, 63]


def test_load_dataset_defaults_and_errors(tmp_path):
    assert load_dataset() is load_embedded_cifar10("train")
    assert load_dataset("cifar10", "test") is load_embedded_cifar10("test")
    with pytest.raises(DatasetError, match="folder"):
        load_dataset("cifar100")
    with pytest.raises(DatasetError, match="imagenet"):
        load_dataset("imagenet")
    data = _make_cifar10(tmp_path)
    loaded = load_dataset("cifar10", "test", root=str(data["folder"]))
    np.testing.assert_array_equal(loaded.x, data["x_test"])


def test_module_importable_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import archscore.estimators.datasets as d\n"
        "assert len(d.load_embedded_cifar10('test')) == 1000\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


def test_imageset_validates():
    x = np.zeros((2, 32, 32, 3), np.uint8)
    with pytest.raises(DatasetError):
        ImageSet(x=x, y=np.array([0, 10]), num_classes=10, name="cifar10", source="t")
    with pytest.raises(DatasetError):
        ImageSet(x=x[:, :, :, :1], y=np.array([0, 1]), num_classes=10, name="cifar10", source="t")
    s = ImageSet(x=x, y=np.array([0, 1], np.uint8), num_classes=10, name="cifar10", source="t")
    assert s.y.dtype == np.int64 and x.flags.writeable  # caller's array left untouched


# --------------------------------------------------------------------------- fixed batches


def _normalise(img_hwc: np.ndarray, mean, std) -> np.ndarray:
    m = np.asarray(mean, np.float64) / 255
    s = np.asarray(std, np.float64) / 255
    return ((img_hwc / 255.0 - m) / s).transpose(2, 0, 1)


def test_fixed_batches_layout_and_values():
    images = load_embedded_cifar10("train")
    batches = fixed_batches(images, batch_size=16, num_batches=3, seed=7)
    assert len(batches) == 3
    idx = np.random.default_rng(7).permutation(len(images))[:48]
    for b, (x, y) in enumerate(batches):
        assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32
        assert y.shape == (16,) and y.dtype == torch.int64
        np.testing.assert_array_equal(y.numpy(), images.y[idx[b * 16 : (b + 1) * 16]])
    expected = _normalise(images.x[idx[17]], CIFAR10_MEAN, CIFAR10_STD)
    np.testing.assert_allclose(batches[1][0][1].numpy(), expected, rtol=1e-5, atol=1e-5)


def test_fixed_batches_deterministic_per_seed():
    images = load_embedded_cifar10("train")
    a = fixed_batches(images, 32, 2, seed=0)
    b = fixed_batches(images, 32, 2, seed=0)
    c = fixed_batches(images, 32, 2, seed=1)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(a[0][0], c[0][0])


def test_fixed_batches_prefix_stable_when_num_batches_grows():
    images = load_embedded_cifar10("test")
    short = fixed_batches(images, 25, 2, seed=3)
    long = fixed_batches(images, 25, 4, seed=3)
    assert len(long) == 4
    for (xs, ys), (xl, yl) in zip(short, long[:2]):
        assert torch.equal(xs, xl) and torch.equal(ys, yl)
    assert not torch.equal(long[2][0], long[0][0])


def test_fixed_batches_normalised():
    x, _ = fixed_batches(load_embedded_cifar10("train"), 2000, 1, seed=0)[0]
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3))
    assert torch.all(mean.abs() < 0.08), mean
    assert torch.all((std > 0.9) & (std < 1.1)), std


def test_fixed_batches_errors():
    images = load_embedded_cifar10("test")
    with pytest.raises(DatasetError, match="1001"):
        fixed_batches(images, 1001, 1, seed=0)
    with pytest.raises(DatasetError, match="only 1000"):
        fixed_batches(images, 500, 3, seed=0)
    fixed_batches(images, 500, 2, seed=0)  # exactly all images is fine
    for bs, nb in ((0, 1), (1, 0), (-4, 2)):
        with pytest.raises(DatasetError):
            fixed_batches(images, bs, nb, seed=0)


# --------------------------------------------------------------------------- CIFAR folders


def test_py2_helper_matches_real_layout():
    """The helper really produces a Python-2 style pickle that plain pickle can read."""
    raw = _py2_pickle({b"data": np.arange(6, dtype=np.uint8).reshape(2, 3), b"labels": [1, 2]})
    assert b"numpy.core.multiarray\n_reconstruct" in raw and b"_codecs" not in raw
    obj = pickle.loads(raw, encoding="bytes")
    np.testing.assert_array_equal(obj[b"data"], np.arange(6).reshape(2, 3))
    assert obj[b"labels"] == [1, 2]


@pytest.mark.parametrize("py2", [True, False], ids=["py2-pickle", "py3-pickle"])
def test_cifar10_folder_loads(tmp_path, py2):
    data = _make_cifar10(tmp_path, py2=py2)
    train = load_cifar_folder(data["folder"], "cifar10", "train")
    assert train.x.shape == (100, 32, 32, 3) and train.x.dtype == np.uint8
    assert train.num_classes == 10 and train.name == "cifar10"
    assert str(data["folder"]) in train.source
    np.testing.assert_array_equal(train.x, data["x_train"])  # batches 1..5 in order
    np.testing.assert_array_equal(train.y, data["y_train"])
    assert train.x[0, 5, 9].tolist() == [10, 20, 30]  # distinct channel values, HWC
    assert train.x[1, 3, 4, 0] == 3 * 7 + 4 and train.x[1, 4, 3, 0] == 4 * 7 + 3  # row-major
    test = load_cifar_folder(tmp_path, "cifar10", "test")  # parent folder also accepted
    np.testing.assert_array_equal(test.x, data["x_test"])
    np.testing.assert_array_equal(test.y, data["y_test"])


def test_cifar_folder_missing(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DatasetError, match="nope") as err:
        load_cifar_folder(missing)
    assert str(missing) in str(err.value)
    folder = _make_cifar10(tmp_path / "data")["folder"]
    (folder / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match="data_batch_3") as err:
        load_cifar_folder(folder, "cifar10", "train")
    assert str(folder) in str(err.value)
    load_cifar_folder(folder, "cifar10", "test")  # the test split does not need it
    with pytest.raises(DatasetError, match="cifar100|dataset"):
        load_cifar_folder(folder, "cifar100", "test")


@pytest.mark.parametrize(
    "content",
    [
        b"this is not a pickle at all",
        _py2_pickle([1, 2, 3]),
        _py2_pickle({b"labels": [0] * 20}),
        _py2_pickle({b"data": np.zeros((20, 3000), np.uint8), b"labels": [0] * 20}),
        _py2_pickle({b"data": np.zeros((20, 3072), np.uint8), b"labels": [0] * 19}),
        _py2_pickle({b"data": np.zeros((20, 3072), np.uint8), b"labels": [0] * 19 + [10]}),
        _py2_pickle({b"data": np.zeros((20, 3072), np.uint8), b"labels": [0] * 19 + [-1]}),
        _py2_pickle({b"data": np.zeros((20, 3072), np.uint8), b"labels": [b"x"] * 20}),
        _py2_pickle({b"data": np.zeros((20, 3072), np.uint8)}),
    ],
    ids=[
        "garbage",
        "list",
        "no-data",
        "wrong-shape",
        "label-count",
        "label-10",
        "label-neg",
        "label-type",
        "no-labels",
    ],
)
def test_cifar_folder_malformed_pickle(tmp_path, content):
    folder = _make_cifar10(tmp_path)["folder"]
    (folder / "test_batch").write_bytes(content)
    with pytest.raises(DatasetError) as err:
        load_cifar_folder(folder, "cifar10", "test")
    assert str(folder / "test_batch") in str(err.value)


def test_forbidden_globals_refused_without_execution(tmp_path):
    folder = _make_cifar10(tmp_path)["folder"]
    marker, marker2 = tmp_path / "pwned", tmp_path / "pwned2"
    payloads = {
        "os.system": b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.",
        "builtins.exec": b"cbuiltins\nexec\n(Vopen(" + repr(str(marker2)).encode() + b", 'w').close()\ntR.",
        "_record_call": pickle.dumps({b"data": _Evil(), b"labels": []}, protocol=3),
    }
    CALLS.clear()
    for name, raw in payloads.items():
        (folder / "test_batch").write_bytes(raw)
        with pytest.raises(DatasetError, match="forbidden") as err:
            load_cifar_folder(folder, "cifar10", "test")
        assert name.split(".")[-1] in str(err.value)
        assert str(folder / "test_batch") in str(err.value)
    assert not marker.exists() and not marker2.exists()
    assert CALLS == []
    # Sanity check: the payload really executes with an unrestricted unpickler.
    pickle.loads(payloads["_record_call"], encoding="bytes")
    assert CALLS == ["executed"]


def test_cifar100_folder(tmp_path):
    data = _make_cifar100(tmp_path)
    train = load_cifar_folder(data["folder"], "cifar100", "train")
    assert train.num_classes == 100 and train.name == "cifar100" and len(train) == 40
    np.testing.assert_array_equal(train.x, data["x_train"])
    np.testing.assert_array_equal(train.y, data["y_train"])  # fine labels, 99 included
    assert train.y.max() == 99
    test = load_dataset("cifar100", "test", root=tmp_path)
    np.testing.assert_array_equal(test.y, data["y_test"])
    assert test.x[0, 31, 31].tolist() == [10, 20, 30]
    # cifar100 batches use the CIFAR-100 normalisation.
    x, _ = fixed_batches(test, 4, 1, seed=0)[0]
    first = np.random.default_rng(0).permutation(len(test))[0]
    np.testing.assert_allclose(
        x[0].numpy(), _normalise(test.x[first], CIFAR100_MEAN, CIFAR100_STD), rtol=1e-5, atol=1e-5
    )
    # Missing file and out-of-range fine labels.
    (data["folder"] / "test").unlink()
    with pytest.raises(DatasetError, match="test") as err:
        load_cifar_folder(data["folder"], "cifar100", "test")
    assert str(data["folder"]) in str(err.value)
    _write(
        data["folder"] / "test",
        {b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 100], b"coarse_labels": [0, 0]},
    )
    with pytest.raises(DatasetError, match="out of range"):
        load_cifar_folder(data["folder"], "cifar100", "test")
