"""Image files decoded and prepared once, into memory, for splits that fit (a uint8 cache).

A folder of photographs is decoded, resized and centre-cropped again in every epoch; the result
is the same each time (`Prepare` draws nothing), so a split small enough is better prepared once
into a uint8 `TensorImages` N,C,R,R, which the loader then treats as it treats CIFAR-10: whole
batches sliced out of it, and on a GPU the whole tensor kept there (airbench's practice). The
imagenet-sample's 1000 photographs at R = 256 take 197 MB; ImageNet's 1.28 million would take
252 GB, so whether a split is cached is decided by its size against the memory available.

When every file is readable the batches are those of the file loader, bit for bit and in the
same order (both take the order from `epoch_order(seed, epoch)`). Unreadable files are dropped
while decoding, before any order is drawn, and returned for the run's count.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from alexnet.data.datasets import DataSource, ImageFiles, TensorImages
from alexnet.data.images import BadImage
from alexnet.data.loader import make_loader, note_bad
from alexnet.data.transforms import Prepare


def prepared_bytes(files: ImageFiles, prepare: Prepare) -> int:
    """Bytes the split takes prepared: N x C x R x R uint8."""
    return len(files) * prepare.to_channels.channels * prepare.side**2


def available_memory() -> int | None:
    """Bytes of memory available to new allocations now (Linux MemAvailable), or None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def fits(total_bytes: int) -> bool:
    """Whether `total_bytes` take at most a quarter of the memory available (leaving room for the
    loader's workers, the model and the rest of the machine's work)."""
    free = available_memory()
    return free is not None and total_bytes <= free // 4


def decode_split(files: ImageFiles, prepare: Prepare, *, workers: int, decode_on: torch.device | None = None,
                 strict: bool = False, what: str = "images") -> TensorImages:
    """Every file of `files` decoded and prepared (uint8 C,R,R) into one TensorImages, in order;
    its `bad` lists the unreadable files (with `strict` the first one raises DataError)."""
    loader = make_loader(files, prepare, batch_size=256, shuffle=False, workers=workers, decode_on=decode_on)
    images, labels, bad = [], [], []  # type: ignore[var-annotated]
    for batch in tqdm(loader, desc=f"decoding {what}", leave=False, file=sys.stderr, disable=None, dynamic_ncols=True):
        note_bad(batch.bad, bad, strict=strict)
        if batch.labels.numel():
            images.append(batch.images.cpu())  # n,C,R,R
            labels += batch.labels.tolist()
    side, channels = prepare.side, prepare.to_channels.channels
    stacked = torch.cat(images) if images else torch.empty(0, channels, side, side, dtype=torch.uint8)
    return TensorImages(stacked, labels, bad)


def files_to_cache(source: DataSource, prepare: Prepare) -> tuple[int, int]:
    """How many image files the train and val splits hold (a tensor set: none), and the bytes
    they take prepared: what caching them in memory would cost."""
    files = [s for s in (source.split("train"), source.split("val")) if isinstance(s, ImageFiles)]
    return sum(len(f) for f in files), sum(prepared_bytes(f, prepare) for f in files)


def cached_splits(source: DataSource, prepare: Prepare, *, cache: bool, workers: int, strict: bool,
                  decode_on: torch.device | None = None) -> tuple[list[Dataset], list[BadImage]]:
    """The train and val splits, their image files decoded and prepared into memory first when
    `cache`, and the unreadable files met doing it (or met by a reader that decodes into memory
    itself, as a CIFAR-10 JPEG tree's)."""
    splits = [source.split("train"), source.split("val")]
    bad: list[BadImage] = [b for s in splits if isinstance(s, TensorImages) for b in s.bad]
    if not cache:
        return splits, bad
    for i, (name, split) in enumerate(zip(("train", "val"), splits)):
        if isinstance(split, ImageFiles):
            splits[i] = decode_split(split, prepare, workers=workers, decode_on=decode_on, strict=strict,
                                     what=f"{name} images")
            bad += splits[i].bad  # type: ignore[attr-defined]
    return splits, bad
