"""What a dataset is: the two kinds of split every reader builds (images in memory, image files
on disk), the `DataSource` that opening a spec gives back, fixed subsets of a split, and the
``k=v`` options of a spec (``shapes:size=64,train=2000``).

Both kinds of split return ``(image, label)`` from ``__getitem__`` and carry ``targets`` (every
label, without decoding anything), so samplers and class counts need no pass over the images.
A source has at least a ``'train'`` and a ``'val'`` split. Data that ships only an official
train/test pair (MNIST, CIFAR-10, the synthetic shapes) uses its test split as ``'val'``, and
``'test'`` is then the same object as ``'val'``; only data with three real splits (a folder tree
with ``train/``, ``val/`` and ``test/``) has a distinct ``'test'``.

Subsets (`take`, `limit`, `hold_out`) are fixed and class-balanced: train on 20,000 of
CIFAR-10's 50,000 images, or validate on a holdout of the training images. A subset is the same
for every seed and every model (drawn with its own fixed generator), so runs that differ in one
factor see the same images, and it keeps the split's kind: in-memory images stay one uint8
tensor, which the fast batch loader needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from alexnet.config import kv_pairs
from alexnet.data.images import BadImage, load_image
from alexnet.errors import UsageError


class TensorImages(Dataset):
    """Images decoded once into one uint8 tensor N,C,H,W; item i is ``(images[i], targets[i])``.

    `bad` lists the files that were skipped while decoding (a JPEG tree may hold broken ones).
    """

    def __init__(
        self, images: torch.Tensor, targets: Sequence[int], bad: Sequence[BadImage] = ()
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be a uint8 N,C,H,W tensor, got {images.dtype} {tuple(images.shape)}")
        if len(targets) != len(images):
            raise ValueError(f"{len(images)} images but {len(targets)} labels")
        self.images = images  # N,C,H,W uint8
        self.targets = [int(t) for t in targets]
        self.bad = list(bad)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], self.targets[index]  # C,H,W uint8

    def __repr__(self) -> str:
        return f"TensorImages({len(self)} images of {tuple(self.images.shape[1:])})"


class ImageFiles(Dataset):
    """Image files decoded on access with `load_image`: item i is ``(PIL image | BadImage, label)``.

    Never raises for a broken file: its item holds a `BadImage` for the loader to count.
    """

    def __init__(self, paths: Sequence[str], targets: Sequence[int]) -> None:
        if len(paths) != len(targets):
            raise ValueError(f"{len(paths)} paths but {len(targets)} labels")
        self.paths = list(paths)
        self.targets = [int(t) for t in targets]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Image.Image | BadImage, int]:
        return load_image(self.paths[index]), self.targets[index]

    def __repr__(self) -> str:
        return f"ImageFiles({len(self)} files)"


@dataclass
class DataSource:
    """An opened dataset: its splits and what a model and its transforms need to know about it."""

    name: str  # 'shapes', 'fashion-mnist', 'mnist', 'cifar10', 'imagenet', 'folder', 'fake'
    spec: str  # the spec string it was opened from
    classes: list[str]  # class names, index = label
    splits: dict[str, Dataset]  # 'train', 'val' and 'test' (which may be the same object as 'val')
    channels: int  # 1 or 3: the native channel count of the images
    mean: tuple[float, ...]  # per-channel normalisation mean in [0, 1] units (len == channels)
    std: tuple[float, ...]
    image_size: tuple[int, int] | None  # native H,W when all images share it, else None
    wnids: list[str] | None = None  # ImageNet's WordNet ids, index = label (imagenet only)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str) -> Dataset:
        """The dataset of split `name` ('train', 'val' or 'test')."""
        if name not in self.splits:
            known = ", ".join(sorted(self.splits))
            raise UsageError(f"{self.name} has no split {name!r}; available: {known}")
        return self.splits[name]


# --- fixed, class-balanced subsets ---------------------------------------------------------

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


# --- a spec's k=v options -----------------------------------------------------------------


def parse_options(
    dataset: str, text: str | None, kinds: dict[str, Callable[[str], Any]]
) -> dict[str, Any]:
    """Split `text` on commas into ``key=value`` pairs and convert each value with ``kinds[key]``.

    An unknown key, a part without ``=``, a repeated key or a value that does not convert is a
    `UsageError` naming the part; keys not given are simply absent from the result.
    """
    options: dict[str, Any] = {}
    if not text:
        return options
    for part, key, value in kv_pairs(text):
        key = key.lower()
        if value is None:
            raise UsageError(f"{dataset}: option {part!r} is not key=value (known keys: {', '.join(kinds)})")
        if key not in kinds:
            raise UsageError(f"{dataset}: unknown option {key!r} (known: {', '.join(kinds)})")
        if key in options:
            raise UsageError(f"{dataset}: option {key!r} given twice")
        try:
            options[key] = kinds[key](value)
        except ValueError:
            kind = {int: "an integer", float: "a number"}.get(kinds[key], "valid")
            raise UsageError(f"{dataset}: {key}={value!r} is not {kind}") from None
    return options


def at_least(dataset: str, key: str, value: float, low: float) -> None:
    """Raise a `UsageError` unless ``value >= low``."""
    if value < low:
        raise UsageError(f"{dataset}: {key}={value} must be at least {low}")


def parse_chw(text: str, what: str) -> tuple[int, int, int]:
    """'3x224x224' -> (3, 224, 224): an image shape with 1 or 3 channels and positive sides."""
    try:
        c, h, w = (int(p) for p in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"{what} {text!r} is not CxHxW (e.g. 3x224x224)") from None
    if c not in (1, 3):
        raise UsageError(f"{what} {text!r} must have 1 or 3 channels")
    if h < 1 or w < 1:
        raise UsageError(f"{what} {text!r} must have positive height and width")
    return c, h, w
