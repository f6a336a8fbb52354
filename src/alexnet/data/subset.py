"""A fixed, class-balanced part of a split: train on 20,000 of CIFAR-10's 50,000 images.

Used where the whole set would take too long (a laptop run, the CPU scale of `alexnet
reproduce`). The subset is the same for every seed and every model (it is drawn with its own
fixed generator), so runs that differ in one factor also see the same images. It keeps the
split's kind: in-memory images stay one uint8 tensor, which the fast batch loader needs.
"""

from __future__ import annotations

import dataclasses

import torch
from torch.utils.data import Dataset

from alexnet.data.datasets import ImageFiles, TensorImages
from alexnet.data.source import DataSource
from alexnet.errors import UsageError

SUBSET_SEED = 20120  # any fixed number: the subset must not change with the run's seed


def balanced_indices(targets: list[int], n: int) -> list[int]:
    """n indices, as equal a share of every class as the counts allow, in the split's order.

    Classes take turns: round r takes each class's r-th image of a fixed shuffle, so the
    per-class counts differ by at most one where every class has enough images.
    """
    if n >= len(targets):
        return list(range(len(targets)))
    order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(SUBSET_SEED)).tolist()
    per_class: dict[int, list[int]] = {}
    for i in order:
        per_class.setdefault(targets[i], []).append(i)
    queues = [per_class[c] for c in sorted(per_class)]
    picked: list[int] = []
    for r in range(max(map(len, queues))):
        for q in queues:
            if r < len(q) and len(picked) < n:
                picked.append(q[r])
    return sorted(picked)


def take(split: Dataset, n: int) -> Dataset:
    """A class-balanced subset of n images of `split` (all of it when n is 0 or at least its size)."""
    if n <= 0 or n >= len(split):
        return split
    targets = list(getattr(split, "targets", []))
    if not targets:
        raise UsageError(f"cannot take a class-balanced subset of {split!r}: it has no labels")
    return select(split, balanced_indices(targets, n))


def select(split: Dataset, idx: list[int]) -> Dataset:
    """The images of `split` at `idx`, as the same kind of split (in-memory stays one tensor)."""
    targets = list(getattr(split, "targets", []))
    if isinstance(split, TensorImages):
        return TensorImages(split.images[idx], [targets[i] for i in idx], split.bad)
    if isinstance(split, ImageFiles):
        return ImageFiles([split.paths[i] for i in idx], [targets[i] for i in idx])
    return torch.utils.data.Subset(split, idx)


def hold_out(source: DataSource, n: int) -> DataSource:
    """`source` with `n` of its training images (a fixed class-balanced part) as its validation
    split and its test split kept apart as 'test', for data whose 'val' is its test split
    (CIFAR-10, Fashion-MNIST, MNIST, shapes): choosing epochs, lr drops and best.pt then never
    reads the images a run is reported on. Data with a validation split of its own is returned
    as it is."""
    if n <= 0 or source.splits.get("test") is not source.splits.get("val"):
        return source
    train = source.split("train")
    if n >= len(train):
        raise UsageError(f"holdout {n:,} would leave no training images: {source.spec} has {len(train):,} "
                         "(--holdout N with fewer, or 0 to validate on the test split)")
    targets = list(getattr(train, "targets", []))
    if not targets:
        raise UsageError(f"cannot hold out a class-balanced part of {source.spec}: its training split has no labels")
    held = balanced_indices(targets, n)
    kept = sorted(set(range(len(train))) - set(held))
    splits = {**source.splits, "train": select(train, kept), "val": select(train, held), "test": source.split("val")}
    return dataclasses.replace(source, splits=splits)


def limit(source: DataSource, *, train: int = 0, val: int = 0) -> DataSource:
    """`source` with at most `train` training and `val` validation images (0: all of a split)."""
    if not train and not val:
        return source
    splits = dict(source.splits)
    same_test = splits.get("test") is splits.get("val")
    splits["train"] = take(splits["train"], train)
    splits["val"] = take(splits["val"], val)
    if same_test:
        splits["test"] = splits["val"]
    return dataclasses.replace(source, splits=splits)
