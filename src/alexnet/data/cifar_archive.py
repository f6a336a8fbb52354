"""CIFAR-10 read from an archive (.tar, .tar.gz, .tgz, ...) of the python batches or of a JPEG tree.

The archive is either the official ``cifar-10-python.tar.gz`` (``cifar-10-batches-py/`` holding
the pickled batches: `alexnet.data.cifar_pickle`) or a tar of the JPEG tree, such as
``cifar10-jpeg.tar.gz`` (``[prefix/]train|test/<class>/<file>``: `alexnet.data.cifar_jpeg`).
It is streamed member by member and never extracted (`alexnet.data.archive`, which also refuses
tampered archives); only the batches, at most `CIFAR_BATCH_BYTES` each, and the tree's files, at
most `CIFAR_IMAGE_BYTES` each, are read, hidden members (macOS's ``._`` files) never. The
batches are used as they are (quick to read, so not cached); the JPEGs are decoded and cached
(`alexnet.data.cifar_cache`), keyed by the archive's name, size and mtime
(`alexnet.data.archive.archive_key`), so a later open only loads the decoded tensors.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from alexnet.data.archive import archive_key, read_members
from alexnet.data.cifar_cache import cache_file, decode_and_cache, load_cache, splits_of
from alexnet.data.cifar_classes import Splits, class_index
from alexnet.data.cifar_jpeg import SPLITS
from alexnet.data.cifar_pickle import META, TEST_BATCH, TRAIN_BATCHES, from_batches, unpickle_batch
from alexnet.data.images import BadImage
from alexnet.errors import DataError
from alexnet.limits import CIFAR_BATCH_BYTES, CIFAR_IMAGE_BYTES, Refused


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
