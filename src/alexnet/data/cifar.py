"""CIFAR-10 (Krizhevsky, 2009) from the official python batches, a JPEG tree, or an archive of either.

Spec: ``cifar10[:PATH]``. PATH may be
  (a) a folder holding the official pickled batches (``data_batch_1`` .. ``data_batch_5``,
      ``test_batch``, ``batches.meta``), directly or in ``cifar-10-batches-py/`` (torchvision's
      layout);
  (b) a JPEG tree, ``train/<class>/*.jpg`` and ``test/<class>/*.jpg``, whose class folders are
      CIFAR-10 class names;
  (c) an archive of (a) or (b) (``cifar-10-python.tar.gz``, ``cifar10-jpeg.tar.gz``, ...), or a
      folder holding one by one of those two names. It is streamed member by member and never
      extracted (`alexnet.data.archive`, which also refuses tampered archives); only the
      batches, at most `CIFAR_BATCH_BYTES` each, and the tree's files, at most
      `CIFAR_IMAGE_BYTES` each, are read, hidden members (macOS's ``._`` files) never.
Without PATH the same is looked for in ``cifar10``, ``cifar10-jpeg``, ``cifar-10-batches-py`` and
those archives under each data root (``$ALEXNET_DATA``, ``./data``, ``../shared/datasets``),
then in the cache folder, then torchvision's download of (a) is tried if allowed.
The test split serves as 'val'.

This module finds the data and reads the batches (a) and archives (c); the JPEGs of (b) and (c)
are decoded and cached by `alexnet.data.cifar_files`, so later opens only load that file; broken
or oversized files are skipped and listed in the dataset's ``bad`` attribute.

The batches' format is that of https://www.cs.toronto.edu/~kriz/cifar.html, "CIFAR-10 python
version": each file a Python 2 pickle of a dict, whose ``b'data'`` is a uint8 array of N rows of
3072 bytes (the red plane, then green, then blue, each 32x32 in row-major order) and
``b'labels'`` a list of N integers 0..9; ``batches.meta``'s ``b'label_names'`` lists the 10
class names. They are unpickled by a restricted unpickler that knows only the few numpy globals
a batch needs, so a tampered file cannot run code, and are not cached (quick to read).
"""

from __future__ import annotations

import codecs
import io
import pickle
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from alexnet.data.archive import archive_key, is_archive, read_members
from alexnet.data.cifar_files import (
    CIFAR10_CLASSES,
    SPLITS,
    Splits,
    cache_file,
    class_index,
    decode_and_cache,
    load_cache,
    read_tree,
    splits_of,
)
from alexnet.data.datasets import DataSource, TensorImages
from alexnet.data.images import BadImage
from alexnet.data.paths import cache_dir, data_roots, describe
from alexnet.errors import DataError
from alexnet.limits import CIFAR_BATCH_BYTES, CIFAR_IMAGE_BYTES, Refused, read_regular

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

ARCHIVE_NAMES = ("cifar10-jpeg.tar.gz", "cifar-10-python.tar.gz")


def open_cifar10(
    arg: str | None, *, seed: int = 0, val_fraction: float = 0.1, download: bool = True
) -> DataSource:
    """Open CIFAR-10: 50,000 train / 10,000 test 32x32 colour images in 10 classes."""
    kind, path = _locate(arg, download)
    if kind == "pickles":
        classes, train, test = read_batches(path)
    elif kind == "tree":
        classes, train, test = read_tree(path)
    else:
        classes, train, test = read_archive(path)
    return DataSource(
        name="cifar10",
        spec="cifar10" + (f":{arg}" if arg else ""),
        classes=classes,
        splits={"train": train, "val": test, "test": test},
        channels=3,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        image_size=(32, 32),
    )


# --- finding the data -------------------------------------------------------------------------


def _locate(arg: str | None, download: bool) -> tuple[str, Path]:
    """('pickles' | 'tree' | 'archive', path) for the spec's PATH, or the first default place."""
    if arg is not None:
        path = Path(arg).expanduser()
        if not path.exists():
            raise DataError(f"cifar10: {path} does not exist")
        found = _identify(path)
        if found is None:
            raise DataError(
                f"cifar10: {path} holds neither the python batches (data_batch_1 .. test_batch), "
                f"nor train/ and test/ JPEG folders, nor {' or '.join(ARCHIVE_NAMES)}"
            )
        return found

    places = []
    for root in data_roots():
        places += [root / "cifar10", root / "cifar10-jpeg", root / "cifar-10-batches-py"]
        places += [root / name for name in ARCHIVE_NAMES]
    places.append(cache_dir() / "cifar-10-batches-py")  # where a torchvision download lands
    for place in places:
        found = _identify(place) if place.exists() else None
        if found is not None:
            return found

    how = "give its folder or archive as cifar10:PATH, or set ALEXNET_DATA to the folder that holds it"
    if not download:
        raise DataError(f"cifar10: not found in {describe(places)}; {how}")
    try:
        import torchvision.datasets  # only here: most runs never download

        cache_dir().mkdir(parents=True, exist_ok=True)
        torchvision.datasets.CIFAR10(root=str(cache_dir()), train=True, download=True)
    except Exception as err:  # no network, a moved mirror, a full disk: all end the same way
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise DataError(
            f"cifar10: not found in {describe(places)} and the download into {cache_dir()} "
            f"failed ({reason}); {how}"
        ) from None
    return "pickles", cache_dir() / "cifar-10-batches-py"


def _identify(path: Path) -> tuple[str, Path] | None:
    """What form of CIFAR-10 `path` is or holds, as (kind, path), else None."""
    if is_archive(path):
        return "archive", path
    if not path.is_dir():
        return None
    for folder in (path, path / "cifar-10-batches-py"):
        if (folder / TRAIN_BATCHES[0]).is_file():
            return "pickles", folder
    if all((path / split).is_dir() for split in SPLITS):
        return "tree", path
    for name in ARCHIVE_NAMES:
        if (path / name).is_file():
            return "archive", path / name
    return None


# --- the python batches --------------------------------------------------------------------


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


# --- an archive of the batches or of a JPEG tree -------------------------------------------


def read_archive(archive: Path) -> Splits:
    """Classes, train and test split from a .tar(.gz) of the batches or of a JPEG tree (cached)."""
    key = archive_key(archive)
    cache = cache_file(key)
    cached = load_cache(cache, key)
    if cached is not None:
        return splits_of(cached)

    batch_names = {*TRAIN_BATCHES, TEST_BATCH, META}
    batches: dict[str, bytes] = {}
    contents: dict[str, bytes | BadImage] = {}
    files: dict[str, list[tuple[str, int]]] = {split: [] for split in SPLITS}

    def limit_of(name: PurePosixPath) -> int | None:
        """The most bytes a wanted member may hold (limits.py); None for the others."""
        if any(part.startswith(".") for part in name.parts):  # e.g. macOS's ._ resource files
            return None
        if name.name in batch_names:
            return CIFAR_BATCH_BYTES
        # A JPEG tree member: [prefix/]train|test/<class>/<file>
        return CIFAR_IMAGE_BYTES if len(name.parts) >= 3 and name.parts[-3] in SPLITS else None

    for name, data in read_members(archive, limit_of):
        if name.name in batch_names:
            if isinstance(data, Refused):
                raise DataError(f"{archive}:{name}: {data}")
            batches[name.name] = data
            continue
        label = class_index(name.parts[-2], f"{archive}:{name.parent}")
        files[name.parts[-3]].append((str(name), label))
        # a member too large to read is a bad image like any other, listed in bad_images.txt
        contents[str(name)] = BadImage(str(name), str(data)) if isinstance(data, Refused) else data

    if all(n in batches for n in [*TRAIN_BATCHES, TEST_BATCH]):
        # The python batches are quick to read; caching them would only double the disk used.
        unpickled = {n: unpickle_batch(data, Path(f"{archive}:{n}")) for n, data in batches.items()}
        return from_batches(unpickled, archive)
    if not all(files.values()):
        raise DataError(
            f"cifar10: {archive} holds neither the python batches nor train/<class>/ and "
            f"test/<class>/ images"
        )
    for split in SPLITS:
        files[split].sort()
    cached = decode_and_cache(files, contents.pop, cache, key, archive)
    return splits_of(cached)
