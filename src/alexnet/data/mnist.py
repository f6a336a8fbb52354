"""MNIST and Fashion-MNIST from their four original IDX files (LeCun's IDX format, read here).

Spec: ``fashion-mnist[:DIR]`` or ``mnist[:DIR]``. The files are ``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each
plain or ``.gz``, looked for in DIR, DIR/raw and DIR/FashionMNIST/raw (DIR/MNIST/raw; the layout
torchvision downloads into). Without DIR: ``<root>/FashionMNIST/raw`` and ``<root>/fashion-mnist``
for each root of `alexnet.data.paths.data_roots` and the cache folder, then (Fashion-MNIST only)
``/usr/share/datasets/fashion-mnist``, where Debian's package ``dataset-fashion-mnist`` puts
them; last, with ``download=True``, torchvision's downloader into the cache folder.

Images are 1x28x28 uint8, held in memory; the official 10,000-image test split serves as 'val'.

The IDX reader: An IDX file is a 4-byte magic number -- two zero bytes, a type byte (0x08 = unsigned byte) and
the number of dimensions -- then one big-endian uint32 per dimension, then the values in C
order. MNIST's images are ``0x00000803`` (N x 28 x 28 bytes) and its labels ``0x00000801``
(N bytes). Every check failing here raises a `DataError` that names the file.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from alexnet.data.datasets import DataSource, TensorImages
from alexnet.data.paths import cache_dir, data_roots, describe
from alexnet.errors import DataError
from alexnet.limits import IDX_BYTES, Refused, check_size, open_regular

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
MNIST_CLASSES = [str(d) for d in range(10)]

# split -> (images file, labels file), without the optional '.gz'
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class _Kind:
    name: str  # the spec name
    folder: str  # torchvision's folder name, also its dataset class name
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    system_dirs: list[Path] = field(default_factory=list)  # where OS packages put the files


_FASHION = _Kind(
    "fashion-mnist", "FashionMNIST", FASHION_MNIST_CLASSES, (0.2860,), (0.3530,),
    [Path("/usr/share/datasets/fashion-mnist")],
)
_MNIST = _Kind("mnist", "MNIST", MNIST_CLASSES, (0.1307,), (0.3081,))


def open_fashion_mnist(
    arg: str | None, *, seed: int = 0, val_fraction: float = 0.1, download: bool = True
) -> DataSource:
    """Fashion-MNIST (Xiao et al., 2017): 60,000 train / 10,000 test 28x28 grayscale images."""
    return _open(_FASHION, arg, download)


def open_mnist(
    arg: str | None, *, seed: int = 0, val_fraction: float = 0.1, download: bool = True
) -> DataSource:
    """MNIST (LeCun et al., 1998): 60,000 train / 10,000 test 28x28 grayscale digits."""
    return _open(_MNIST, arg, download)


def _open(kind: _Kind, arg: str | None, download: bool) -> DataSource:
    files = _locate(kind, arg, download)
    splits = {split: _read_split(*files[split]) for split in IDX_FILES}
    sizes = {tuple(ds.images.shape[2:]) for ds in splits.values()}
    if len(sizes) != 1:
        raise DataError(f"{kind.name}: train and test images differ in size ({sorted(sizes)})")
    test = splits["test"]
    return DataSource(
        name=kind.name,
        spec=kind.name + (f":{arg}" if arg else ""),
        classes=list(kind.classes),
        splits={"train": splits["train"], "val": test, "test": test},
        channels=1,
        mean=kind.mean,
        std=kind.std,
        image_size=sizes.pop(),
    )


def _read_split(images_path: Path, labels_path: Path) -> TensorImages:
    images = read_idx(images_path, ndim=3)  # N,H,W
    labels = read_idx(labels_path, ndim=1)  # N
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if len(labels) and labels.max() >= 10:
        at = int(labels.argmax())
        raise DataError(f"{labels_path}: label {labels[at]} at index {at} is not a class 0..9")
    # Copy: the arrays view the read-only bytes of the file.
    pixels = torch.from_numpy(images.copy()).unsqueeze(1)  # N,1,H,W
    return TensorImages(pixels, labels.tolist())


def _locate(kind: _Kind, arg: str | None, download: bool) -> dict[str, tuple[Path, Path]]:
    """The four files as {split: (images, labels)}; a `DataError` listing the places tried if absent."""
    if arg is not None:
        folder = Path(arg).expanduser()
        if not folder.is_dir():
            raise DataError(f"{kind.name}: {folder} is not a folder")
        places = [folder, folder / "raw", folder / kind.folder / "raw"]
    else:
        places = []
        for root in [*data_roots(), cache_dir()]:
            places += [root / kind.folder / "raw", root / kind.name]
        places += kind.system_dirs
    for place in places:
        found = _complete_set(place)
        if found:
            return found

    how = (f"put the four IDX files ({', '.join(IDX_FILES['train'] + IDX_FILES['test'])}, plain or .gz) in DIR "
           f"and use {kind.name}:DIR, or set ALEXNET_DATA to the folder that holds DIR")
    if kind is _FASHION:
        how += ", or on Debian/Ubuntu: apt-get install dataset-fashion-mnist"
    if arg is not None or not download:
        raise DataError(f"{kind.name}: IDX files not found in {describe(places)}; {how}")
    try:
        _download(kind)
    except Exception as err:  # no network, a moved mirror, a full disk: all end the same way
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise DataError(
            f"{kind.name}: IDX files not found in {describe(places)} and the download into "
            f"{cache_dir()} failed ({reason}); {how}"
        ) from None
    found = _complete_set(cache_dir() / kind.folder / "raw")
    if not found:
        raise DataError(f"{kind.name}: download finished but {cache_dir() / kind.folder / 'raw'} lacks the IDX files")
    return found


def _complete_set(folder: Path) -> dict[str, tuple[Path, Path]] | None:
    """The four files in `folder` (each plain or gzipped), or None unless all four are there."""
    found = {}
    for split, names in IDX_FILES.items():
        paths = [_one_of(folder / name, folder / f"{name}.gz") for name in names]
        if None in paths:
            return None
        found[split] = (paths[0], paths[1])
    return found


def _one_of(*candidates: Path) -> Path | None:
    return next((p for p in candidates if p.is_file()), None)


def _download(kind: _Kind) -> None:
    import torchvision.datasets  # imported only here: most runs never download

    dataset_class = getattr(torchvision.datasets, kind.folder)
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    for train in (True, False):
        dataset_class(root=str(root), train=train, download=True)


# --- the IDX reader ------------------------------------------------------------------------

_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """The uint8 array stored in the IDX file at `path`, which must have `ndim` dimensions.

    Whether the file is gzipped is told by its first bytes, not its name. The header is read
    first and the size it claims checked against `IDX_BYTES` before the values are read, and no
    more bytes than it claims (plus one, to tell trailing bytes) are inflated: a small gzip that
    inflates to gigabytes costs neither the memory nor the time.
    """
    path = Path(path)
    header = 4 + 4 * ndim
    with _opened(path) as f:
        raw = _read(f, header, path)
        if len(raw) < 4:
            raise DataError(f"{path}: too short for an IDX file ({len(raw)} bytes)")
        zero, dtype, dims = raw[:2], raw[2], raw[3]
        magic = int.from_bytes(raw[:4], "big")
        expected = (_UBYTE << 8) | ndim
        if zero != b"\0\0" or dtype != _UBYTE or dims != ndim:
            raise DataError(
                f"{path}: IDX magic number is 0x{magic:08x}, expected 0x{expected:08x} "
                f"(unsigned bytes, {ndim}-D)"
            )
        if len(raw) < header:
            raise DataError(f"{path}: IDX header truncated ({len(raw)} of {header} bytes)")
        shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
        dims_text = "x".join(map(str, shape))
        if 0 in shape:
            raise DataError(f"{path}: the IDX header gives the dimensions {dims_text}: a 0 leaves no values")
        expected_body = math.prod(shape)  # Python's int: 2^31 x 2^31 x 4 does not wrap around to 0 as in int64
        try:
            check_size(header + expected_body, IDX_BYTES, f"the IDX data its header ({dims_text}) claims")
        except Refused as err:
            raise DataError(f"{path}: {err}") from None
        body = _read(f, expected_body + 1, path)
    if len(body) < expected_body:
        raise DataError(f"{path}: IDX body is {len(body)} bytes but the header ({dims_text}) says {expected_body}: "
                        "file truncated")
    if len(body) > expected_body:  # only one byte more was read
        raise DataError(f"{path}: IDX body is longer than the {expected_body} bytes the header ({dims_text}) says: "
                        "file has trailing bytes")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[BinaryIO]:
    """The file's bytes as a stream, inflated if it is gzipped; a `DataError` if it cannot be opened."""
    try:
        # a regular file, not a pipe or a device (alexnet.limits); gzipped, it may be as large
        with open_regular(path, IDX_BYTES) as f:
            gzipped = f.read(2) == _GZIP_MAGIC
            f.seek(0)
            yield gzip.GzipFile(fileobj=f, mode="rb") if gzipped else f  # type: ignore[misc]
    except Refused as err:
        raise DataError(f"{path}: {err}") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None


def _read(f: BinaryIO, n: int, path: Path) -> bytes:
    """At most `n` bytes of `f` (fewer at its end)."""
    try:
        return f.read(n)
    except (OSError, EOFError, zlib.error) as err:  # gzip's BadGzipFile is an OSError
        raise DataError(f"{path}: broken gzip data ({' '.join(str(err).split())})") from None
