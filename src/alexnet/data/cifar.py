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
The test split serves as 'val'.

This module finds the data and says which form it is in; each form has its reader:
  (a) `alexnet.data.cifar_pickle` (the batches, through an unpickler that cannot run code),
  (b) `alexnet.data.cifar_jpeg` (the tree),
  (c) `alexnet.data.cifar_archive` (either, streamed from the archive),
and `alexnet.data.cifar_cache` decodes the JPEGs of (b) and (c) once into a uint8 tensor
N,3,32,32 and caches that in ``<cache>/decoded/``, so later opens only load that file; broken
or oversized files are skipped and listed in the dataset's ``bad`` attribute. The class names
and the type the readers return are in `alexnet.data.cifar_classes`.
"""

from __future__ import annotations

from pathlib import Path

from alexnet.data.archive import is_archive
from alexnet.data.cifar_archive import read_archive
from alexnet.data.cifar_jpeg import SPLITS, read_tree
from alexnet.data.cifar_pickle import TRAIN_BATCHES, read_batches
from alexnet.data.paths import cache_dir, data_roots, describe
from alexnet.data.source import DataSource
from alexnet.errors import DataError

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
