"""Any tree of images sorted into class folders, and the folder scanning the other readers share.

Spec: ``folder:DIR``. DIR either holds split folders -- ``train/`` plus ``val/`` (or ``valid/``,
``validation/``) and/or ``test/``, each a folder of class folders -- or is itself a folder of
class folders, which is then split into train and val by `val_fraction`, stratified per class
and fixed by `seed`. A ``train/`` alone is split the same way.

Classes are the sorted names of the train class folders; a class folder without images is
dropped with a warning. Images are found recursively inside a class folder by extension
(jpg jpeg png bmp gif webp tif tiff ppm pgm, any case); hidden files and folders are skipped;
symbolic links are followed. Images are decoded on access (`load_image`), so a broken file
becomes a `BadImage`, not an exception.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from alexnet.data.datasets import ImageFiles
from alexnet.data.images import IMAGE_EXTENSIONS, is_image_file
from alexnet.data.source import DataSource
from alexnet.errors import DataError, UsageError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_VAL_NAMES = ("val", "valid", "validation")


def open_folder(
    arg: str | None, *, seed: int = 0, val_fraction: float = 0.1, download: bool = True
) -> DataSource:
    """Open an image tree (see the module docstring); `download` is unused."""
    if not arg:
        raise UsageError("folder needs a folder: folder:DIR")
    root = Path(arg).expanduser()
    if not root.exists():
        raise DataError(f"folder: {root} does not exist")
    if not root.is_dir():
        raise DataError(f"folder: {root} is not a folder")

    subdirs = {p.name.lower(): p for p in _subfolders(root)}
    val_dir = next((subdirs[n] for n in _VAL_NAMES if n in subdirs), None)
    test_dir = subdirs.get("test")
    if "train" in subdirs and (val_dir or test_dir):
        classes, train = _class_files(subdirs["train"])
        splits = {"train": _files(train, classes)}
        for name, where in (("val", val_dir), ("test", test_dir)):
            if where is not None:
                splits[name] = _files(_matching_classes(where, classes), classes)
        if "val" not in splits:  # train/ and test/ only: test doubles as val
            splits["val"] = splits["test"]
        splits.setdefault("test", splits["val"])
    else:
        tree = subdirs.get("train", root)
        classes, per_class = _class_files(tree)
        train, val = stratified_split(per_class, val_fraction, seed)
        splits = {"train": _files(train, classes), "val": _files(val, classes)}
        splits["test"] = splits["val"]

    return DataSource(
        name="folder",
        spec=f"folder:{arg}",
        classes=classes,
        splits=splits,
        channels=3,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        image_size=None,
    )


def list_images(folder: Path) -> list[str]:
    """Every image file under `folder` (recursively, following links, skipping hidden names), sorted."""
    found: list[str] = []
    seen: set[str] = set()  # real paths of folders visited, against symlink loops
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [os.path.join(dirpath, f) for f in filenames if not f.startswith(".") and is_image_file(f)]
    found.sort()
    return found


def scan_class_folders(tree: Path) -> dict[str, list[str]]:
    """Class folder name -> its image paths, for every (non-hidden) folder directly in `tree`."""
    return {d.name: list_images(d) for d in _subfolders(tree)}


def stratified_split(
    per_class: dict[str, list[str]], val_fraction: float, seed: int
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Split each class's files into train and val: ``round(n * val_fraction)`` to val, at least
    one when the class has two or more files, chosen by a generator seeded from `seed` and the
    class name, so the split is the same on every run and does not shift when classes are added.
    """
    if not 0.0 < val_fraction < 1.0:
        raise UsageError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    train, val = {}, {}
    for name, files in per_class.items():
        n = len(files)
        n_val = max(1, round(n * val_fraction)) if n >= 2 else 0
        entropy = [seed % 2**63, *name.encode("utf-8")]
        order = np.random.default_rng(entropy).permutation(n)
        picked = set(order[:n_val].tolist())
        val[name] = [f for i, f in enumerate(files) if i in picked]
        train[name] = [f for i, f in enumerate(files) if i not in picked]
    return train, val


def _class_files(tree: Path) -> tuple[list[str], dict[str, list[str]]]:
    """The classes (sorted class folders that hold images) of `tree` and their files."""
    per_class = scan_class_folders(tree)
    for name, files in per_class.items():
        if not files:
            warnings.warn(f"folder: class folder {tree / name} has no images; dropped", stacklevel=3)
    per_class = {name: files for name, files in sorted(per_class.items()) if files}
    if not per_class:
        extensions = " ".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
        loose = any(is_image_file(e.name) for e in os.scandir(tree) if e.is_file())
        hint = "; the images must be sorted into one folder per class" if loose else ""
        raise DataError(f"no images ({extensions}) in class folders under {tree}{hint}")
    return list(per_class), per_class


def _matching_classes(tree: Path, classes: list[str]) -> dict[str, list[str]]:
    """The class folders of a val/test tree, which must all be classes of train."""
    per_class = scan_class_folders(tree)
    for name, files in per_class.items():
        if files and name not in classes:
            raise DataError(f"folder: {tree / name} is not a class of the train folder")
    if not any(per_class.values()):
        raise DataError(f"no images in class folders under {tree}")
    return {name: files for name, files in per_class.items() if files}


def _files(per_class: dict[str, list[str]], classes: list[str]) -> ImageFiles:
    index = {name: i for i, name in enumerate(classes)}
    paths, targets = [], []
    for name, files in per_class.items():
        paths += files
        targets += [index[name]] * len(files)
    return ImageFiles(paths, targets)


def _subfolders(folder: Path) -> list[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as err:
        raise DataError(f"cannot list {folder} ({err.strerror or err})") from None
    return [Path(e.path) for e in entries if not e.name.startswith(".") and e.is_dir()]
