"""CIFAR-10's official python batches (``cifar-10-python.tar.gz``, Krizhevsky, 2009), read safely.

The format is that of https://www.cs.toronto.edu/~kriz/cifar.html, "CIFAR-10 python version":
the files ``data_batch_1`` .. ``data_batch_5`` (10,000 training images each), ``test_batch``
(10,000) and ``batches.meta``, each a Python 2 pickle of a dict. A batch's ``b'data'`` is a uint8
numpy array of N rows of 3072 bytes (the red plane, then green, then blue, each 32x32 in
row-major order) and its ``b'labels'`` a list of N integers 0..9; the meta file's
``b'label_names'`` lists the 10 class names.

The batches are unpickled by a restricted unpickler that knows only the few numpy globals a
batch needs, so a tampered file cannot run code. Each file is read only if it is a regular file
of at most `CIFAR_BATCH_BYTES` (`alexnet.limits`). This module reads a folder of the
batches; `alexnet.data.cifar_archive` reads them from an archive with `unpickle_batch` and
`from_batches`.
"""

from __future__ import annotations

import codecs
import io
import pickle
from pathlib import Path

import numpy as np
import torch

from alexnet.data.cifar_classes import CIFAR10_CLASSES, Splits
from alexnet.data.datasets import TensorImages
from alexnet.errors import DataError
from alexnet.limits import CIFAR_BATCH_BYTES, Refused, read_regular

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
META = "batches.meta"


def read_batches(folder: Path) -> Splits:
    """Classes, train and test split from the official pickled batches in `folder`."""
    missing = [n for n in [*TRAIN_BATCHES, TEST_BATCH] if not (folder / n).is_file()]
    if missing:
        raise DataError(f"cifar10: {folder} lacks {', '.join(missing)}")
    files = {n: folder / n for n in [*TRAIN_BATCHES, TEST_BATCH, META] if (folder / n).is_file()}
    return from_batches({n: unpickle_batch(_read_batch(path), path) for n, path in files.items()}, folder)


def _read_batch(path: Path) -> bytes:
    try:
        return read_regular(path, CIFAR_BATCH_BYTES)
    except Refused as err:
        raise DataError(f"{path}: {err}") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None


def from_batches(batches: dict[str, object], where: Path) -> Splits:
    """Build the splits from unpickled batches {file name: object}; `where` names them in errors."""
    parts = [_check_batch(batches[n], where / n) for n in TRAIN_BATCHES]
    test_x, test_y = _check_batch(batches[TEST_BATCH], where / TEST_BATCH)
    train_x = np.concatenate([x for x, _ in parts])  # 50000,3,32,32
    train_y = [y for _, labels in parts for y in labels]

    classes = list(CIFAR10_CLASSES)
    if META in batches:
        meta = batches[META]
        names = meta.get(b"label_names") if isinstance(meta, dict) else None
        if not (isinstance(names, list) and len(names) == 10):
            raise DataError(f"{where / META}: no list of 10 label_names")
        classes = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]
    return (
        classes,
        TensorImages(torch.from_numpy(train_x), train_y),
        TensorImages(torch.from_numpy(test_x), test_y),
    )


def _check_batch(batch: object, path: Path) -> tuple[np.ndarray, list[int]]:
    """Images (uint8 N,3,32,32) and labels of one unpickled batch, validated."""
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{path}: not a CIFAR-10 batch (no b'data' and b'labels' entries)")
    data, labels = batch[b"data"], batch[b"labels"]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
        shape = getattr(data, "shape", type(data).__name__)
        raise DataError(f"{path}: data should be a uint8 N x 3072 array, found {shape}")
    if not isinstance(labels, list) or len(labels) != len(data):
        count = len(labels) if isinstance(labels, list) else type(labels).__name__
        raise DataError(f"{path}: {len(data)} images but {count} labels")
    if not all(isinstance(y, int) and 0 <= y < 10 for y in labels):
        raise DataError(f"{path}: labels must be integers 0..9")
    # Each row is the red plane, then green, then blue, each 32x32 in row-major order.
    return data.reshape(-1, 3, 32, 32).copy(), labels  # N,3,32,32


# --- the restricted unpickler -----------------------------------------------------------------


def _reconstruct_function():
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:
        from numpy.core.multiarray import _reconstruct  # numpy 1.x
    return _reconstruct


def _latin1(text: str, encoding: str) -> bytes:
    # Python 3 pickles bytes at protocol 2 as _codecs.encode(text, 'latin1'); allow that only.
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"codec {encoding!r} is not allowed")
    return codecs.encode(text, "latin1")


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that can build numpy arrays and nothing else, so no code can run."""

    def find_class(self, module: str, name: str):
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): _reconstruct_function,
            ("numpy._core.multiarray", "_reconstruct"): _reconstruct_function,
            ("numpy", "ndarray"): lambda: np.ndarray,
            ("numpy", "dtype"): lambda: np.dtype,
            ("_codecs", "encode"): lambda: _latin1,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return allowed[(module, name)]()


def unpickle_batch(data: bytes, path: Path) -> object:
    """The object pickled in `data` (file `path`'s bytes), built by the restricted unpickler."""
    try:
        # encoding='bytes': the batches were pickled by Python 2, whose str is bytes.
        return _BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as err:  # a corrupt or hostile pickle fails in many ways
        text = " ".join(str(err).split())[:150] or type(err).__name__
        raise DataError(f"{path}: not a usable CIFAR-10 pickle ({text})") from None
