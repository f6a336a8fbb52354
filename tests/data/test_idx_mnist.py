"""MNIST / Fashion-MNIST from IDX files the tests write (plain and gzipped), and their errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from alexnet.data import open_dataset
from alexnet.data.idx import read_idx
from alexnet.errors import DataError

pytestmark = pytest.mark.usefixtures("isolated")

N_TRAIN, N_TEST = 12, 5


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """IDX encoding of a uint8 array: magic 0x000008<ndim>, big-endian dims, the bytes."""
    magic = (0x0800 | array.ndim) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_set(folder: Path, gz: bool, n_train: int = N_TRAIN, n_test: int = N_TEST) -> dict:
    """The four files of a small MNIST-like set; returns the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_from_a_folder(tmp_path: Path, gz: bool):
    arrays = write_idx_set(tmp_path / "fm", gz)
    source = open_dataset(f"fashion-mnist:{tmp_path / 'fm'}")
    assert source.name == "fashion-mnist" and source.channels == 1 and source.image_size == (28, 28)
    assert source.classes[0] == "T-shirt/top" and source.classes[9] == "Ankle boot" and len(source.classes) == 10
    assert source.mean == (0.2860,) and source.std == (0.3530,)
    train, val = source.split("train"), source.split("val")
    assert len(train) == N_TRAIN and len(val) == N_TEST and source.split("test") is val
    image, _ = train[3]
    assert image.dtype == torch.uint8 and image.shape == (1, 28, 28)
    assert torch.equal(image[0], torch.from_numpy(arrays["train-images-idx3-ubyte"][3]))
    assert train.targets == arrays["train-labels-idx1-ubyte"].tolist()
    assert val.targets == arrays["t10k-labels-idx1-ubyte"].tolist()


@pytest.mark.parametrize("layout", ["raw", "MNIST/raw"])
def test_mnist_in_torchvision_layouts(tmp_path: Path, layout: str):
    write_idx_set(tmp_path / "d" / layout, gz=False)
    source = open_dataset(f"mnist:{tmp_path / 'd'}")
    assert source.classes == [str(d) for d in range(10)] and source.mean == (0.1307,)
    assert len(source.split("train")) == N_TRAIN


def test_default_search_uses_alexnet_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write_idx_set(tmp_path / "store" / "MNIST" / "raw", gz=True)
    monkeypatch.setenv("ALEXNET_DATA", str(tmp_path / "store"))
    assert len(open_dataset("mnist").split("val")) == N_TEST


def test_missing_files_name_the_places_searched(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as err:
        open_dataset(f"mnist:{tmp_path / 'empty'}")
    message = str(err.value)
    assert str(tmp_path / "empty" / "MNIST" / "raw") in message and "train-images-idx3-ubyte" in message
    assert "\n" not in message


def test_failed_download_is_a_data_error(monkeypatch: pytest.MonkeyPatch):
    import alexnet.data.mnist as mnist

    def offline(kind):
        raise OSError("network unreachable")

    monkeypatch.setattr(mnist, "_download", offline)
    with pytest.raises(DataError, match="network unreachable") as err:
        open_dataset("mnist")
    assert "data/MNIST/raw" in str(err.value)
    with pytest.raises(DataError, match="not found"):
        open_dataset("mnist", download=False)


def test_wrong_magic(tmp_path: Path):
    write_idx_set(tmp_path / "d", gz=False)
    labels = np.zeros(N_TRAIN, dtype=np.uint8)
    bad = tmp_path / "d" / "train-labels-idx1-ubyte"
    bad.write_bytes(idx_bytes(labels, magic=0x00000803)[:4] + idx_bytes(labels)[4:])
    with pytest.raises(DataError) as err:
        open_dataset(f"mnist:{tmp_path / 'd'}")
    assert str(bad) in str(err.value) and "0x00000803" in str(err.value) and "0x00000801" in str(err.value)


def test_truncated_body(tmp_path: Path):
    write_idx_set(tmp_path / "d", gz=True)
    path = tmp_path / "d" / "t10k-images-idx3-ubyte.gz"
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[:-100]))
    with pytest.raises(DataError) as err:
        open_dataset(f"mnist:{tmp_path / 'd'}")
    assert str(path) in str(err.value) and "truncated" in str(err.value)


def test_broken_gzip(tmp_path: Path):
    write_idx_set(tmp_path / "d", gz=True)
    path = tmp_path / "d" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match="gzip"):
        open_dataset(f"mnist:{tmp_path / 'd'}")


def test_mismatched_counts(tmp_path: Path):
    write_idx_set(tmp_path / "d", gz=False)
    (tmp_path / "d" / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(N_TRAIN - 1, np.uint8)))
    with pytest.raises(DataError, match=f"{N_TRAIN} images but .* {N_TRAIN - 1} labels"):
        open_dataset(f"mnist:{tmp_path / 'd'}")


def test_label_out_of_range(tmp_path: Path):
    write_idx_set(tmp_path / "d", gz=False)
    labels = np.zeros(N_TEST, np.uint8)
    labels[2] = 10
    (tmp_path / "d" / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    with pytest.raises(DataError, match="label 10 at index 2"):
        open_dataset(f"mnist:{tmp_path / 'd'}")


def test_read_idx_short_and_foreign_files(tmp_path: Path):
    (tmp_path / "short").write_bytes(b"\0\0")
    with pytest.raises(DataError, match="too short"):
        read_idx(tmp_path / "short", ndim=1)
    (tmp_path / "header").write_bytes(b"\0\0\x08\x03\0\0\0\x01")
    with pytest.raises(DataError, match="header truncated"):
        read_idx(tmp_path / "header", ndim=3)
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(DataError, match="magic"):
        read_idx(tmp_path / "png", ndim=3)
