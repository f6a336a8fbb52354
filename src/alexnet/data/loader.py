"""Batches of prepared uint8 images: broken images dropped and reported, order seeded per epoch.

Three paths give the same `Batch`es:
- images decoded into memory (`TensorImages`: shapes, IDX, CIFAR, ...): whole batches are sliced
  out of the uint8 tensor and prepared in one call, with no per-sample Python and no workers;
- image files: a DataLoader whose workers decode and prepare each file. An unreadable file comes
  back as a `BadImage`; the collate function drops it and hands it to the main process in
  `Batch.bad`, where the engine counts it (or, with --strict, stops naming the path). Workers do
  not raise for it, because an exception from a worker reaches the user as a traceback dump.
- image files with their JPEGs decoded on the training device (`DeviceDecoded`, data/jpeg.py):
  the workers read the bytes, the main process decodes a whole batch in one call on the GPU.

Order is a pure function of (seed, epoch): call `set_epoch` before each epoch, and a resumed run
sees the same batches as an uninterrupted one. With several training processes (torchrun; see
engine/distributed.py) each loader yields its process's `shard` of that order.
"""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from alexnet.data.datasets import ImageFiles, TensorImages
from alexnet.data.images import BadImage
from alexnet.data.jpeg import Encoded, EncodedBatch, EncodedFiles, collate_encoded, decode_jpegs, prepare_on_device
from alexnet.errors import DataError


class Batch(NamedTuple):
    images: Tensor  # uint8 N,C,R,R (prepared, not yet augmented)
    labels: Tensor  # N
    bad: list[BadImage]  # the unreadable files that were in this batch


def epoch_order(n: int, *, shuffle: bool, seed: int, epoch: int) -> Tensor:
    """The sample order of one epoch: a permutation drawn from (seed, epoch), or 0..n-1."""
    if not shuffle:
        return torch.arange(n)
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**63)
    return torch.randperm(n, generator=g)


class Shard(NamedTuple):
    """Which part of each epoch a process takes: process `rank` of `size`.

    `global_batch` set (training): the epoch's last incomplete global batch is dropped and the
    process takes the rank-th equal slice of every global batch, so the processes' steps together
    are one process's steps. None (evaluation): a contiguous 1/size of the order, nothing dropped.
    """

    rank: int = 0
    size: int = 1
    global_batch: int | None = None

    def local_batch(self, batch_size: int) -> int:
        return batch_size // self.size if self.global_batch else -(-batch_size // self.size)

    def of(self, order: Tensor) -> Tensor:
        if self.size == 1:
            return order
        if self.global_batch is None:
            return order.tensor_split(self.size)[self.rank]
        b = self.global_batch
        full = order[: len(order) // b * b]
        return full.view(-1, self.size, b // self.size)[:, self.rank].reshape(-1)  # steps,ranks,local -> this rank's


ONE = Shard()


class TensorBatches:
    """Batches sliced from an in-memory uint8 tensor and prepared batch-wise (no workers).

    With a `device`, the whole uint8 tensor is copied there once (as airbench keeps CIFAR-10 on
    the GPU): batches are then sliced, resized and augmented without leaving it.
    """

    def __init__(self, data: TensorImages, prepare: Callable[[Tensor], Tensor], *, batch_size: int, shuffle: bool,
                 seed: int, shard: Shard = ONE, device: torch.device | None = None) -> None:
        self.data, self.prepare = data, prepare
        if device is not None:
            self.data = TensorImages(data.images.to(device), data.targets)
        self.targets = torch.tensor(data.targets, dtype=torch.long, device=device)
        self.shuffle, self.seed, self.epoch, self.shard = shuffle, seed, 0, shard
        self.batch_size = shard.local_batch(batch_size)
        self.num_workers = 0

    def __len__(self) -> int:
        return -(-len(self.shard.of(torch.arange(len(self.targets)))) // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        order = self.shard.of(epoch_order(len(self.targets), shuffle=self.shuffle, seed=self.seed, epoch=self.epoch))
        for idx in order.to(self.targets.device).split(self.batch_size):
            yield Batch(self.prepare(self.data.images[idx]), self.targets[idx], [])


class DeviceDecoded:
    """A DataLoader of `EncodedBatch`es made into `Batch`es whose images are on `device`: the
    JPEGs decoded there in one call and prepared there, the worker-decoded images moved to it."""

    def __init__(self, loader: DataLoader, prepare: Callable[[Tensor], Tensor], device: torch.device) -> None:
        self.loader, self.prepare, self.device = loader, prepare, device
        self.batch_size, self.num_workers = loader.batch_size, loader.num_workers

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Batch]:
        for batch in self.loader:
            yield self.to_batch(batch)

    def to_batch(self, batch: EncodedBatch) -> Batch:
        """The batch's JPEGs decoded (one call) and prepared on the device, in the sampler's order."""
        at = [i for i, x in enumerate(batch.items) if isinstance(x, Encoded)]
        images: list[Tensor | BadImage] = [  # type: ignore[misc]
            x.to(self.device, non_blocking=True) if isinstance(x, Tensor) else x for x in batch.items]
        if at:
            for i, x in zip(at, decode_jpegs([batch.items[i] for i in at], self.device)):  # type: ignore[misc]
                images[i] = x  # uint8 C,H,W as decoded, or a BadImage
            ok = [i for i in at if isinstance(images[i], Tensor)]
            for i, x in zip(ok, prepare_on_device([images[i] for i in ok], self.prepare)):  # type: ignore[misc]
                images[i] = x  # C,R,R
        keep = [i for i, x in enumerate(images) if isinstance(x, Tensor)]
        bad = list(batch.bad) + [x for x in images if isinstance(x, BadImage)]
        if not keep:
            return Batch(torch.empty(0, dtype=torch.uint8, device=self.device), torch.empty(0, dtype=torch.long), bad)
        labels = torch.tensor([batch.labels[i] for i in keep], dtype=torch.long)
        return Batch(torch.stack([images[i] for i in keep]), labels, bad)  # type: ignore[misc]  # N,C,R,R on the device


class _Prepared(Dataset):
    def __init__(self, base: Dataset, prepare: Callable[[object], Tensor]) -> None:
        self.base, self.prepare = base, prepare

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[object, int]:
        image, label = self.base[index]
        return (image if isinstance(image, (BadImage, Encoded)) else self.prepare(image)), label


def collate(items: Sequence[tuple[object, int]]) -> Batch:
    good = [(x, y) for x, y in items if not isinstance(x, BadImage)]
    bad = [x for x, _ in items if isinstance(x, BadImage)]
    if not good:
        return Batch(torch.empty(0, dtype=torch.uint8), torch.empty(0, dtype=torch.long), bad)
    return Batch(torch.stack([x for x, _ in good]),  # type: ignore[misc]
                 torch.tensor([y for _, y in good], dtype=torch.long), bad)


class _EpochSampler(torch.utils.data.Sampler[int]):
    def __init__(self, n: int, *, shuffle: bool, seed: int, shard: Shard = ONE) -> None:
        self.n, self.shuffle, self.seed, self.epoch, self.shard = n, shuffle, seed, 0, shard

    def __len__(self) -> int:
        return len(self.shard.of(torch.arange(self.n)))

    def __iter__(self) -> Iterator[int]:
        return iter(self.shard.of(epoch_order(self.n, shuffle=self.shuffle, seed=self.seed, epoch=self.epoch)).tolist())


def _init_worker(worker_id: int) -> None:
    # Ctrl-C in a terminal signals the whole process group, workers included; and forked workers
    # inherit the training loop's handler (engine/train.py `stop_on_signals`), which would print
    # its notice once per worker. The main process alone decides: it finishes the step, saves,
    # and shuts the workers down; a worker that dies of SIGINT instead would fail the step.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # torch seeds each worker from the loader's generator; NumPy and `random` follow it so any
    # decoding step that draws from them is reproducible too.
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def default_workers() -> int:
    """One fewer than the cores this process may use (0 on one core), at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(0, min(8, cores - 1))


Loader = TensorBatches | DataLoader | DeviceDecoded


def make_loader(dataset: Dataset, prepare: Callable[[object], Tensor], *, batch_size: int, shuffle: bool,
                workers: int, seed: int = 0, pin_memory: bool = False, shard: Shard = ONE,
                device: torch.device | None = None, decode_on: torch.device | None = None) -> Loader:
    """Batches of `prepare`d images from `dataset`; call `set_epoch(loader, e)` before each epoch.

    `batch_size` is the global batch: with a `shard` of several processes each yields its part.
    In-memory data moves to `device` whole when it takes under a quarter of its free memory.
    With `decode_on`, the JPEGs of image files are decoded and prepared there, a batch at a time
    (data/jpeg.py), and the batches arrive on it.
    """
    if isinstance(dataset, TensorImages):
        keep = device if device is not None and _fits(dataset.images, device) else None
        return TensorBatches(dataset, prepare, batch_size=batch_size, shuffle=shuffle, seed=seed, shard=shard,
                             device=keep)
    encoded = decode_on is not None and isinstance(dataset, ImageFiles)
    loader = DataLoader(
        _Prepared(EncodedFiles(dataset) if encoded else dataset, prepare),  # type: ignore[arg-type]
        batch_size=shard.local_batch(batch_size),
        sampler=_EpochSampler(len(dataset), shuffle=shuffle, seed=seed, shard=shard),  # type: ignore[arg-type]
        num_workers=workers,
        collate_fn=collate_encoded if encoded else collate,
        pin_memory=pin_memory and not encoded,  # encoded batches are lists: pinning copies them for nothing
        worker_init_fn=_init_worker if workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
    )
    return DeviceDecoded(loader, prepare, decode_on) if encoded else loader


def _fits(images: Tensor, device: torch.device) -> bool:
    """Whether `images` take under a quarter of `device`'s free memory (CUDA only; elsewhere no copy is made)."""
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return images.numel() * images.element_size() < free // 4


def set_epoch(loader: Loader, epoch: int) -> None:
    """Make the loader's order (and its workers' seeds) those of `epoch`."""
    if isinstance(loader, TensorBatches):
        loader.epoch = epoch
        return
    if isinstance(loader, DeviceDecoded):
        loader = loader.loader
    sampler = loader.sampler
    assert isinstance(sampler, _EpochSampler)
    sampler.epoch = epoch
    loader.generator.manual_seed((sampler.seed * 1_000_003 + epoch + 1) % 2**63)  # type: ignore[union-attr]


def note_bad(bad: Sequence[BadImage], seen: list[BadImage], *, strict: bool) -> None:
    """Record a batch's unreadable files; with `strict`, the first one stops the run."""
    if bad and strict:
        raise DataError(f"unreadable image {bad[0].path}: {bad[0].reason} (drop --strict to skip such files)")
    seen.extend(bad)
