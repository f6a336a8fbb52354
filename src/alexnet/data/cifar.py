"""CIFAR-10 (Krizhevsky, 2009) from the official python batches, a JPEG tree, or an archive of either.

Spec: ``cifar10[:PATH]``. PATH may be
  (a) a folder holding the official pickled batches (``data_batch_1`` .. ``data_batch_5``,
      ``test_batch``, ``batches.meta``), directly or in ``cifar-10-batches-py/`` (torchvision's
      layout);
  (b) a JPEG tree, ``train/<class>/*.jpg`` and ``test/<class>/*.jpg``, whose class folders are
      CIFAR-10 class names;
  (c) an archive of (a) or (b) (``cifar-10-python.tar.gz``, ``cifar10-jpeg.tar.gz``, ...), or a
      folder holding one by one of those two names. It is read in memory, never extracted
      (`alexnet.data.archive`).
Without PATH the same is looked for in ``cifar10``, ``cifar10-jpeg``, ``cifar-10-batches-py`` and
those archives under each data root (``$ALEXNET_DATA``, ``./data``, ``../shared/datasets``),
then in the cache folder, then torchvision's download of (a) is tried if allowed.

The batches are unpickled by a restricted unpickler that knows only the few numpy globals a
batch needs, so a tampered file cannot run code. JPEGs are decoded once, all of them, into a
uint8 tensor N,3,32,32; for an archive or a tree that result is cached as a ``.pt`` file in
``<cache>/decoded/`` (keyed by the archive's name, size and mtime, or by the tree's path and
folder mtimes), so later opens only load that file. Broken JPEGs are skipped and listed in the
dataset's ``bad`` attribute, and so are files that are not regular files, are larger than
`CIFAR_IMAGE_BYTES`, or whose header is not 32x32 (refused before decoding: `alexnet.data.tiny`,
`alexnet.data.limits`). The test split serves as 'val'.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import pickle
import warnings
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from alexnet.data.archive import archive_key, is_archive, read_members
from alexnet.data.datasets import TensorImages
from alexnet.data.folder import scan_class_folders
from alexnet.data.images import BadImage
from alexnet.data.limits import CIFAR_BATCH_BYTES, CIFAR_IMAGE_BYTES, Refused, read_regular
from alexnet.data.paths import cache_dir, data_roots, describe
from alexnet.data.source import DataSource
from alexnet.data.tiny import decode_tiny
from alexnet.errors import DataError

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
META = "batches.meta"
ARCHIVE_NAMES = ("cifar10-jpeg.tar.gz", "cifar-10-python.tar.gz")
SPLITS = ("train", "test")

_CACHE_VERSION = 1
_DECODE_BATCH = 1024

# What every reader below returns: the class names, then the train and the test split.
Splits = tuple[list[str], TensorImages, TensorImages]


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

    how = "give its folder or archive as cifar10:PATH, or set ALEXNET_DATA"
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


# --- (a) the python batches -------------------------------------------------------------------


def read_batches(folder: Path) -> Splits:
    """Classes, train and test split from the official pickled batches in `folder`."""
    missing = [n for n in [*TRAIN_BATCHES, TEST_BATCH] if not (folder / n).is_file()]
    if missing:
        raise DataError(f"cifar10: {folder} lacks {', '.join(missing)}")
    files = {n: folder / n for n in [*TRAIN_BATCHES, TEST_BATCH, META] if (folder / n).is_file()}
    return _from_batches({n: _unpickle(_read_batch(path), path) for n, path in files.items()}, folder)


def _read_batch(path: Path) -> bytes:
    try:
        return read_regular(path, CIFAR_BATCH_BYTES)
    except Refused as err:
        raise DataError(f"{path}: {err}") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None


def _from_batches(batches: dict[str, object], where: Path) -> Splits:
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


def _unpickle(data: bytes, path: Path) -> object:
    try:
        # encoding='bytes': the batches were pickled by Python 2, whose str is bytes.
        return _BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as err:  # a corrupt or hostile pickle fails in many ways
        text = " ".join(str(err).split())[:150] or type(err).__name__
        raise DataError(f"{path}: not a usable CIFAR-10 pickle ({text})") from None


# --- (b) the JPEG tree ------------------------------------------------------------------------


def read_tree(tree: Path) -> Splits:
    """Classes, train and test split of a JPEG tree, decoded into memory (cached on disk)."""
    signature = _tree_signature(tree)
    digest = hashlib.sha1(str(tree.resolve()).encode("utf-8")).hexdigest()[:16]
    cache = cache_dir() / "decoded" / f"cifar10-tree-{digest}.pt"
    cached = _load_cache(cache, signature)
    if cached is None:
        files: dict[str, list[tuple[str, int]]] = {}
        for split in SPLITS:
            files[split] = []
            for name, paths in scan_class_folders(tree / split, within=tree).items():
                label = _class_index(name, tree / split / name)
                files[split] += [(p, label) for p in paths]
        cached = _decode_and_cache(files, _read_file, cache, signature, tree)
    return _splits_of(cached)


def _tree_signature(tree: Path) -> list:
    """Modification times of the split and class folders: adding, removing or renaming a file
    changes them, so a cached decode of a tree that has changed since is not used."""
    entries = []
    for split in SPLITS:
        for folder in [tree / split, *sorted((tree / split).iterdir())]:
            if folder.is_dir():
                entries.append([str(folder.relative_to(tree)), folder.stat().st_mtime_ns])
    return entries


def _read_file(path: str) -> bytes | BadImage:
    try:
        return read_regular(path, CIFAR_IMAGE_BYTES)  # not a pipe, a device or a huge file
    except Refused as err:
        return BadImage(path, str(err))
    except OSError as err:
        return BadImage(path, f"cannot read ({err.strerror or err})")


# --- (c) an archive of either -----------------------------------------------------------------


def read_archive(archive: Path) -> Splits:
    """Classes, train and test split from a .tar(.gz) of the batches or of a JPEG tree (cached)."""
    key = archive_key(archive)
    cache = cache_dir() / "decoded" / f"cifar10-{key}.pt"
    cached = _load_cache(cache, key)
    if cached is not None:
        return _splits_of(cached)

    batch_names = {*TRAIN_BATCHES, TEST_BATCH, META}
    batches: dict[str, bytes] = {}
    contents: dict[str, bytes | BadImage] = {}
    files: dict[str, list[tuple[str, int]]] = {split: [] for split in SPLITS}

    def limit_of(name: PurePosixPath) -> int | None:
        """The most bytes a wanted member may hold (data/limits.py); None for the others."""
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
        label = _class_index(name.parts[-2], f"{archive}:{name.parent}")
        files[name.parts[-3]].append((str(name), label))
        # a member too large to read is a bad image like any other, listed in bad_images.txt
        contents[str(name)] = BadImage(str(name), str(data)) if isinstance(data, Refused) else data

    if all(n in batches for n in [*TRAIN_BATCHES, TEST_BATCH]):
        # The python batches are quick to read; caching them would only double the disk used.
        return _from_batches(
            {n: _unpickle(data, Path(f"{archive}:{n}")) for n, data in batches.items()}, archive
        )
    if not all(files.values()):
        raise DataError(
            f"cifar10: {archive} holds neither the python batches nor train/<class>/ and "
            f"test/<class>/ images"
        )
    for split in SPLITS:
        files[split].sort()
    cached = _decode_and_cache(files, contents.pop, cache, key, archive)
    return _splits_of(cached)


# --- decoding JPEGs, and the decoded cache ----------------------------------------------------


def _class_index(name: str, where: object) -> int:
    if name not in CIFAR10_CLASSES:
        raise DataError(f"cifar10: {where} is not a CIFAR-10 class ({', '.join(CIFAR10_CLASSES)})")
    return CIFAR10_CLASSES.index(name)


def _decode_and_cache(
    files: dict[str, list[tuple[str, int]]],
    read: object,
    cache: Path,
    signature: object,
    source: Path,
) -> dict:
    """Decode every split's files (read with ``read(name)``), and save the result to `cache`."""
    cached: dict = {"version": _CACHE_VERSION, "signature": signature, "classes": list(CIFAR10_CLASSES)}
    for split, items in files.items():
        if not items:
            raise DataError(f"cifar10: no images in {source}/{split}")
        images, labels, bad = _decode_split(items, read)
        cached[f"{split}_images"], cached[f"{split}_labels"] = images, labels
        cached[f"{split}_bad"] = [[b.path, b.reason] for b in bad]
    _save_cache(cache, cached)
    return cached


def _decode_split(items: list[tuple[str, int]], read) -> tuple[torch.Tensor, torch.Tensor, list[BadImage]]:
    """The images of (name, label) pairs as uint8 N,3,32,32, their labels, and the files skipped."""
    images = torch.empty((len(items), 3, 32, 32), dtype=torch.uint8)  # N,3,32,32
    keep = torch.zeros(len(items), dtype=torch.bool)
    bad: list[BadImage] = []
    for start in range(0, len(items), _DECODE_BATCH):
        names = [name for name, _ in items[start : start + _DECODE_BATCH]]
        for offset, result in enumerate(decode_tiny(names, [read(n) for n in names])):
            if isinstance(result, BadImage):
                bad.append(result)
            elif tuple(result.shape) != (3, 32, 32):  # a header that lied about its size
                h, w = result.shape[-2:]
                bad.append(BadImage(names[offset], f"is {w}x{h} px, not 32x32"))
            else:
                images[start + offset] = result
                keep[start + offset] = True
    labels = torch.tensor([label for _, label in items], dtype=torch.int64)
    return images[keep], labels[keep], bad


def _splits_of(cached: dict) -> Splits:
    def split(name: str) -> TensorImages:
        bad = [BadImage(p, r) for p, r in cached[f"{name}_bad"]]
        return TensorImages(cached[f"{name}_images"], cached[f"{name}_labels"].tolist(), bad)

    return list(cached["classes"]), split("train"), split("test")


def _load_cache(path: Path, signature: object) -> dict | None:
    if not path.is_file():
        return None
    try:
        # mmap: the pages are read as they are used, and shared by DataLoader worker processes.
        cached = torch.load(path, weights_only=True, mmap=True)
    except Exception:  # an unreadable or foreign cache file is simply rebuilt
        return None
    ok = isinstance(cached, dict) and cached.get("version") == _CACHE_VERSION
    return cached if ok and cached.get("signature") == signature else None


def _save_cache(path: Path, cached: dict) -> None:
    """Write atomically (temp file, then rename); a cache that cannot be written is only a warning."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(cached, tmp)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        warnings.warn(f"cifar10: could not cache the decoded images at {path} ({err})", stacklevel=2)
