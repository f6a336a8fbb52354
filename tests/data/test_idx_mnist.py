"""MNIST / Fashion-MNIST from IDX files the tests write (plain and gzipped), and their errors."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import finishes, peak_memory_growth

from alexnet.data import open_dataset
from alexnet.data.mnist import read_idx
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


def test_missing_files_name_the_first_place_searched(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as err:
        open_dataset(f"mnist:{tmp_path / 'empty'}")
    message = str(err.value)
    assert f"not found in {tmp_path / 'empty'}" in message and "other places" in message
    assert "train-images-idx3-ubyte" in message and "\n" not in message


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


# --- sizes read from the file are bounded before anything is allocated (issue 16) -------------


def _zeros_gzip(mib: int) -> bytes:
    """`mib` MiB of zeros as a gzip stream of about 1 KB per MiB: one compressed MiB repeated,
    as gzip allows members to follow one another (RFC 1952, 2.2). Nothing large is ever made."""
    return gzip.compress(bytes(2**20)) * mib


def _header(*dims: int) -> bytes:
    return (0x0800 | len(dims)).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)


def test_a_gzip_bomb_is_never_inflated(tmp_path: Path):
    # 6 MB that inflate to 6 GiB: a header for 10 images, their values, then 6 GiB of zeros
    bomb = tmp_path / "bomb-idx3-ubyte.gz"
    bomb.write_bytes(gzip.compress(_header(10, 28, 28) + bytes(10 * 28 * 28)) + _zeros_gzip(6 * 1024))
    assert bomb.stat().st_size < 7 * 2**20
    result, grew_mib = peak_memory_growth(
        "try:\n"
        f"    alexnet.data.mnist.read_idx({str(bomb)!r}, ndim=3)\n"
        "except alexnet.errors.DataError as err:\n"
        "    result['error'] = str(err)")
    assert result["error"] == (f"{bomb}: IDX body is longer than the 7840 bytes the header (10x28x28) says: "
                               "file has trailing bytes")
    assert grew_mib < 64, f"peak memory grew {grew_mib:.0f} MiB: the gzip was inflated"


def test_a_header_claiming_more_than_the_limit_is_refused_before_reading(tmp_path: Path):
    # 8 million images of 28x28 (6.3 GB), and 6 GiB of zeros behind them: refused from the header
    bomb = tmp_path / "bomb-idx3-ubyte.gz"
    bomb.write_bytes(gzip.compress(_header(8_000_000, 28, 28)) + _zeros_gzip(6 * 1024))
    result, grew_mib = peak_memory_growth(
        "try:\n"
        f"    alexnet.data.mnist.read_idx({str(bomb)!r}, ndim=3)\n"
        "except alexnet.errors.DataError as err:\n"
        "    result['error'] = str(err)")
    assert result["error"] == (f"{bomb}: the IDX data its header (8000000x28x28) claims is too large "
                               "(5.84 GiB, over the limit of 1 GiB)")
    assert grew_mib < 64


@pytest.mark.parametrize("dims, words", [
    # 2^64: 0 in int64
    ((2**31, 2**31, 4), "the IDX data its header (2147483648x2147483648x4) claims is too large (16 EiB"),
    ((2**32 - 1,) * 3, "claims is too large"),
    ((5, 0, 0), "the IDX header gives the dimensions 5x0x0: a 0 leaves no values"),
    ((0, 28, 28), "a 0 leaves no values"),
])
def test_huge_and_empty_dimensions_are_one_line_errors(tmp_path: Path, dims: tuple, words: str):
    path = tmp_path / "odd-idx3-ubyte"
    path.write_bytes(_header(*dims))  # no values at all: with int64 (2^31)^2 x 4 wrapped to 0 and "matched"
    with pytest.raises(DataError) as err:
        read_idx(path, ndim=3)
    assert str(err.value).startswith(f"{path}: ") and words in str(err.value) and "\n" not in str(err.value)


def test_a_pipe_or_a_link_to_a_device_is_refused_without_blocking(tmp_path: Path):
    os.mkfifo(tmp_path / "pipe-idx1-ubyte")
    (tmp_path / "zero-idx1-ubyte").symlink_to("/dev/zero")
    for name in ("pipe-idx1-ubyte", "zero-idx1-ubyte"):
        with pytest.raises(DataError) as err:
            finishes(lambda name=name: read_idx(tmp_path / name, ndim=1))
        assert str(err.value) == f"{tmp_path / name}: not a regular file (a pipe or device)"
