"""CIFAR-10's images as files: the ten classes, a JPEG tree (``train/<class>/*.jpg``,
``test/<class>/*.jpg``), tiny images decoded a batch at a time, and the on-disk cache of that decode.

The classes and their order are those of the official release (Krizhevsky, 2009): label ``i``
in the python batches is ``CIFAR10_CLASSES[i]``, and a tree's class folders are named by them
(any other name is an error). The tree is the layout of the public ``CIFAR-10-images``
collection (``cifar10-jpeg.tar.gz``: 60,000 32x32 JPEGs); other image formats are read too, each
file only if it is a regular file of at most `CIFAR_IMAGE_BYTES` (`alexnet.limits`), else it is
a bad image. The same layout inside an archive is read by `alexnet.data.cifar`.

Decoding. The name "tiny" is that of the collection CIFAR-10 was drawn from, the 80 Million Tiny
Images (Torralba, Fergus & Freeman, 2008). torchvision's decoders are faster than PIL on these
1 KB files (BENCHMARKS.md, 'CPU: this project's machine'), fastest when handed a whole batch of
JPEGs in one call. Before anything is decoded each file's header is read by PIL: one that does
not give 32x32 is refused there, so a small PNG whose header claims 20,000 x 20,000 pixels costs
nothing rather than the 1.2 GB its pixels would take. JPEGs then go to torchvision in one call,
PNGs one by one, other formats to PIL (a GIF's first frame).

The cache. A tree or a JPEG archive is decoded once, all of it, into a uint8 tensor N,3,32,32
per split, saved as ``<cache>/decoded/cifar10-<name>.pt`` with a ``signature`` that must match
for the file to be used: the archive's name, size and mtime, or the tree's path and folder
mtimes. Later opens only load that file (memory-mapped, ``torch.load(weights_only=True)``); an
unreadable one, or one of another version or signature, is rebuilt. It holds ``version``,
``signature``, ``classes``, and per split ``<split>_images`` (uint8 N,3,32,32), ``<split>_labels``
(int64 N) and ``<split>_bad`` ([path, reason] of each file skipped).
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from alexnet.atomic import atomic_path
from alexnet.data.datasets import TensorImages
from alexnet.data.folder import scan_class_folders
from alexnet.data.images import BadImage
from alexnet.data.paths import cache_dir
from alexnet.errors import DataError, UsageError, reraise_signal
from alexnet.limits import CIFAR_IMAGE_BYTES, Refused, read_regular

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]

# What every reader returns: the class names, then the train and the test split.
Splits = tuple[list[str], TensorImages, TensorImages]


def class_index(name: str, where: object) -> int:
    """The label of class folder `name`; `where` names the folder in the error if it is no class."""
    if name not in CIFAR10_CLASSES:
        raise DataError(f"cifar10: {where} is not a CIFAR-10 class ({', '.join(CIFAR10_CLASSES)})")
    return CIFAR10_CLASSES.index(name)

SPLITS = ("train", "test")


def read_tree(tree: Path) -> Splits:
    """Classes, train and test split of a JPEG tree, decoded into memory (cached on disk)."""
    signature = _tree_signature(tree)
    digest = hashlib.sha1(str(tree.resolve()).encode("utf-8")).hexdigest()[:16]
    cache = cache_file(f"tree-{digest}")
    cached = load_cache(cache, signature)
    if cached is None:
        files: dict[str, list[tuple[str, int]]] = {}
        for split in SPLITS:
            files[split] = []
            for name, paths in scan_class_folders(tree / split, within=tree).items():
                label = class_index(name, tree / split / name)
                files[split] += [(p, label) for p in paths]
        cached = decode_and_cache(files, _read_file, cache, signature, tree)
    return splits_of(cached)


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


# --- tiny images decoded a batch at a time ---------------------------------------------


def decode_tiny(names: list[str], contents: list[bytes | BadImage],
                size: tuple[int, int] = (32, 32)) -> list[torch.Tensor | BadImage]:
    """Decode encoded images of `size` (W, H) to RGB uint8 3,H,W tensors, or a `BadImage` each
    for those that are unreadable or not of that size (judged from the header, before decoding)."""
    vetted = [c if isinstance(c, BadImage) else _vet(n, c, size) for n, c in zip(names, contents)]
    out: list[torch.Tensor | BadImage | None] = [v if isinstance(v, BadImage) else None for v in vetted]
    try:
        from torchvision.io import ImageReadMode, decode_image, decode_jpeg
    except ImportError as e:  # a torchvision without its image codecs: decode with PIL instead
        reraise_signal(e)  # a signal during the import, not a missing package
        return [v if isinstance(v, BadImage) else _with_pil(n, c) for n, c, v in zip(names, contents, vetted)]

    with warnings.catch_warnings():
        # torchvision 0.29 deprecates its codecs in favour of TorchCodec; they are still here,
        # and faster than PIL on tiny JPEGs (see the module docstring).
        warnings.simplefilter("ignore", DeprecationWarning)
        jpegs = [i for i, v in enumerate(vetted) if v == "JPEG"]
        if jpegs:
            try:
                # One call for all the JPEGs is the fast path; on any failure they are decoded
                # one by one below, to find the bad ones.
                decoded = decode_jpeg([_tensor(contents[i]) for i in jpegs], mode=ImageReadMode.RGB)  # type: ignore[arg-type]
                for i, x in zip(jpegs, decoded):
                    out[i] = x
            except RuntimeError:
                pass
        for i, (name, v) in enumerate(zip(names, vetted)):
            if out[i] is not None:
                continue
            if v in ("JPEG", "PNG"):
                try:
                    out[i] = decode_image(_tensor(contents[i]), mode=ImageReadMode.RGB)
                except RuntimeError as err:
                    out[i] = BadImage(name, _short_reason(err))
            else:
                out[i] = _with_pil(name, contents[i])  # type: ignore[arg-type]
    return out  # type: ignore[return-value]  # every None was filled


def _vet(name: str, data: bytes, size: tuple[int, int]) -> str | BadImage:
    """The file's format as PIL names it ('JPEG', 'PNG', ...) if its header gives `size`, else a BadImage."""
    if not data:
        return BadImage(name, "empty file")
    try:
        with warnings.catch_warnings():  # over PIL's pixel limit: a warning at 1x, an error at 2x
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt, (w, h) = img.format, img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return BadImage(name, "too many pixels (decompression bomb?)")
    except Image.UnidentifiedImageError:
        return BadImage(name, "not an image file")
    except Exception as err:  # PIL's plugins raise many types on corrupt headers
        return BadImage(name, " ".join(str(err).split())[:100] or type(err).__name__)
    if (w, h) != size:
        return BadImage(name, f"is {w}x{h} px, not {size[0]}x{size[1]}")
    return str(fmt)


def _tensor(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def _with_pil(name: str, data: bytes) -> torch.Tensor | BadImage:
    try:
        with Image.open(io.BytesIO(data)) as img:
            rgb = np.asarray(img.convert("RGB"))  # H,W,3 (a GIF's first frame)
    except Exception as err:  # PIL raises many types on corrupt input
        return BadImage(name, " ".join(str(err).split())[:100] or type(err).__name__)
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)  # 3,H,W


def _short_reason(err: Exception) -> str:
    # torchvision's messages start with the C++ function and source location; keep what follows.
    text = " ".join(str(err).split())
    text = re.split(r"\.cpp:\d+,\s*", text)[-1]
    return text[:100] or type(err).__name__


# --- the cache of the decode ---------------------------------------------------------------


_CACHE_VERSION = 1
_DECODE_BATCH = 1024


def cache_file(name: str) -> Path:
    """Where the decode named `name` is cached: ``<cache>/decoded/cifar10-<name>.pt``."""
    return cache_dir() / "decoded" / f"cifar10-{name}.pt"


def decode_and_cache(
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


def splits_of(cached: dict) -> Splits:
    """The classes, train and test split of a cached (or just decoded) dict."""

    def split(name: str) -> TensorImages:
        bad = [BadImage(p, r) for p, r in cached[f"{name}_bad"]]
        return TensorImages(cached[f"{name}_images"], cached[f"{name}_labels"].tolist(), bad)

    return list(cached["classes"]), split("train"), split("test")


def load_cache(path: Path, signature: object) -> dict | None:
    """The dict cached at `path` if it is there, readable, of this version and of `signature`."""
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
    """Write atomically (atomic.py: a temporary file, then rename; removed on any error or signal);
    a cache that cannot be written, or something not a file in its place, is only a warning."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save(cached, tmp)
    except (OSError, UsageError) as err:
        warnings.warn(f"cifar10: could not cache the decoded images at {path} ({err})", stacklevel=2)
