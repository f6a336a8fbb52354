"""Any tree of images sorted into class folders, and the folder scanning the other readers share.

Spec: ``folder:DIR``. DIR either holds split folders -- ``train/`` plus ``val/`` (or ``valid/``,
``validation/``) and/or ``test/``, each a folder of class folders -- or is itself a folder of
class folders, which is then split into train and val by `val_fraction`, stratified per class
and fixed by `seed`. A ``train/`` alone is split the same way.

Classes are the sorted names of the train class folders; a class folder without images is
dropped with a warning. Images are found recursively inside a class folder by extension
(jpg jpeg png bmp gif webp tif tiff ppm pgm, any case); hidden files and folders are skipped.
Symbolic links to files are followed; links to folders only to folders inside DIR, and no
folder on a kernel file system (/proc, /sys, ...) is entered, DIR included (`list_images`).
Images are decoded on access (`load_image`), so a broken file -- a named pipe, a link to
/dev/zero, a truncated JPEG -- becomes a `BadImage`, not an exception or a hang.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from alexnet.data.datasets import DataSource, ImageFiles
from alexnet.data.images import IMAGE_EXTENSIONS, is_image_file
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
    kind = special_filesystems().get(root.stat().st_dev)
    if kind:
        raise DataError(f"folder: {root} is on the {kind} file system, which holds no image files")

    subdirs = {p.name.lower(): p for p in _subfolders(root)}
    val_dir = next((subdirs[n] for n in _VAL_NAMES if n in subdirs), None)
    test_dir = subdirs.get("test")
    if "train" in subdirs and (val_dir or test_dir):
        classes, train = _class_files(subdirs["train"], root)
        splits = {"train": _files(train, classes)}
        for name, where in (("val", val_dir), ("test", test_dir)):
            if where is not None:
                splits[name] = _files(_matching_classes(where, classes, root), classes)
        if "val" not in splits:  # train/ and test/ only: test doubles as val
            splits["val"] = splits["test"]
        splits.setdefault("test", splits["val"])
    else:
        tree = subdirs.get("train", root)
        classes, per_class = _class_files(tree, root)
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


def list_images(folder: Path, *, within: Path | None = None) -> list[str]:
    """Every image file under `folder` (recursively, skipping hidden names), sorted.

    Links to files are listed (the file is checked when it is opened: `alexnet.limits`).
    Links to folders are followed only to a folder inside `within` (default: `folder` itself),
    and no folder on a special file system (/proc, /sys, ...) is entered: /proc/*/root alone would
    otherwise take the walk over the whole file system. What is passed over is warned of.
    """
    inside = os.path.realpath(within if within is not None else folder)
    special = special_filesystems()
    found: list[str] = []
    seen: set[str] = set()  # real paths of folders visited, against symlink loops
    passed: list[str] = []  # folders not entered: links out of the tree, special file systems
    walk = os.walk(folder, followlinks=True) if _enterable(str(folder), inside, special) else ()
    if not walk:
        passed.append(str(folder))
    for dirpath, dirnames, filenames in walk:
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        keep = []
        for d in dirnames:
            if d.startswith("."):
                continue
            if _enterable(os.path.join(dirpath, d), inside, special):
                keep.append(d)
            else:
                passed.append(os.path.join(dirpath, d))
        dirnames[:] = keep
        found += [os.path.join(dirpath, f) for f in filenames if not f.startswith(".") and is_image_file(f)]
    if passed:
        warnings.warn(f"not entering {len(passed)} folder(s) that lead out of {within or folder} or onto a special "
                      f"file system, e.g. {passed[0]} (links are followed only inside the data folder)", stacklevel=2)
    found.sort()
    return found


def _enterable(path: str, inside: str, special: dict[int, str]) -> bool:
    """Whether the walk may enter the folder `path`: it is (after links) inside `inside`, on an ordinary file system."""
    real = os.path.realpath(path)
    if real != inside and not real.startswith(inside.rstrip(os.sep) + os.sep):
        return False
    try:
        return os.stat(real).st_dev not in special
    except OSError:  # vanished or unreadable: os.walk would skip it as well
        return False


def special_filesystems() -> dict[int, str]:
    """{device number: type} of the mounted kernel file systems that hold no user files (proc,
    sysfs, ...: see `_SPECIAL`), from /proc/self/mountinfo; {} where there is none (not Linux)."""
    found = {}
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                # "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw": field 3 is the
                # device the mount's files report as st_dev, the first after " - " its type
                fields, _, rest = line.partition(" - ")
                major, _, minor = fields.split()[2].partition(":")
                kind = rest.split()[0] if rest.split() else ""
                if kind in _SPECIAL:
                    found[os.makedev(int(major), int(minor))] = kind
    except (OSError, ValueError, IndexError):
        pass
    return found


# Kernel file systems: their files describe the running system (and /proc links to every
# process's root folder), never a dataset. tmpfs is not among them: datasets live in /dev/shm.
_SPECIAL = frozenset({"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs", "securityfs",
                      "pstore", "bpf", "configfs", "fusectl", "mqueue", "hugetlbfs", "binfmt_misc", "efivarfs",
                      "selinuxfs", "nsfs", "autofs", "rpc_pipefs"})


def scan_class_folders(tree: Path, *, within: Path | None = None) -> dict[str, list[str]]:
    """Class folder name -> its image paths, for every (non-hidden) folder directly in `tree`;
    links are followed only to folders inside `within` (default: `tree`), as `list_images` says."""
    return {d.name: list_images(d, within=within or tree) for d in _subfolders(tree)}


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


def _class_files(tree: Path, root: Path) -> tuple[list[str], dict[str, list[str]]]:
    """The classes (sorted class folders that hold images) of `tree` (in the data folder `root`) and their files."""
    per_class = scan_class_folders(tree, within=root)
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


def _matching_classes(tree: Path, classes: list[str], root: Path) -> dict[str, list[str]]:
    """The class folders of a val/test tree, which must all be classes of train."""
    per_class = scan_class_folders(tree, within=root)
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
