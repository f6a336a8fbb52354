"""CIFAR-10's JPEGs decoded into tensors, and the on-disk cache of that decode.

A JPEG tree (`alexnet.data.cifar_jpeg`) or a JPEG archive (`alexnet.data.cifar_archive`) is
decoded once, all of it, into a uint8 tensor N,3,32,32 per split (`alexnet.data.tiny` decodes
a batch of files at a time), and the result is cached as a ``.pt`` file in the cache folder
(`alexnet.data.paths.cache_dir`): ``<cache>/decoded/cifar10-<name>.pt`` (`cache_file`), where
the reader chooses the name, and a ``signature`` that must match for the file to be used: the
archive's name, size and mtime, or the tree's path and folder mtimes. Later opens only load
that file (memory-mapped, with ``torch.load(weights_only=True)``: it holds only tensors, lists,
strings and numbers); an unreadable one, or one of another version or signature, is rebuilt.

The file holds a dict: ``version`` (`_CACHE_VERSION`), ``signature``, ``classes``, and for each
split ``<split>_images`` (uint8 N,3,32,32), ``<split>_labels`` (int64 N) and ``<split>_bad``
([path, reason] of each file skipped). Files that fail to decode are skipped and listed in the
split's ``bad`` attribute, and so are those whose header is not 32x32 (refused before decoding)
and those the reader refused (not regular files, or larger than `CIFAR_IMAGE_BYTES`:
`alexnet.limits`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from alexnet.data.cifar_classes import CIFAR10_CLASSES, Splits
from alexnet.data.datasets import TensorImages
from alexnet.data.images import BadImage
from alexnet.data.paths import cache_dir
from alexnet.data.tiny import decode_tiny
from alexnet.errors import DataError

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
    """Write atomically (temp file, then rename); a cache that cannot be written is only a warning."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(cached, tmp)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        warnings.warn(f"cifar10: could not cache the decoded images at {path} ({err})", stacklevel=2)
