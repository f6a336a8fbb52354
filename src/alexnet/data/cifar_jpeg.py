"""CIFAR-10 as a folder tree of image files: ``train/<class>/*.jpg`` and ``test/<class>/*.jpg``.

This is the layout of the public ``CIFAR-10-images`` collection (``cifar10-jpeg.tar.gz``: all
60,000 images as 32x32 JPEGs, ``train/<class>/NNNN.jpg`` and ``test/<class>/NNNN.jpg``); other
image formats are read too. Each split folder holds one folder a class, named by a CIFAR-10
class name (`alexnet.data.cifar_classes`; any other name is an error), scanned like any class
folder (`alexnet.data.folder.scan_class_folders`).

Every file is read only if it is a regular file of at most `CIFAR_IMAGE_BYTES`
(`alexnet.limits`), else it is skipped as a bad image; the files are decoded once into
tensors and cached (`alexnet.data.cifar_cache`), keyed by the tree's resolved path, and
rebuilt when the mtime of a split or class folder (`_tree_signature`) has changed. The same
layout inside an archive is read by `alexnet.data.cifar_archive`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from alexnet.data.cifar_cache import cache_file, decode_and_cache, load_cache, splits_of
from alexnet.data.cifar_classes import Splits, class_index
from alexnet.data.folder import scan_class_folders
from alexnet.data.images import BadImage
from alexnet.limits import CIFAR_IMAGE_BYTES, Refused, read_regular

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
