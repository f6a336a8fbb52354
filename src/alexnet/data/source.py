"""`DataSource`: what opening a dataset spec gives back -- its splits, classes and image statistics.

A source has at least a ``'train'`` and a ``'val'`` split. Data that ships only an official
train/test pair (MNIST, CIFAR-10, the synthetic shapes) uses its test split as ``'val'``, and
``'test'`` is then the same object as ``'val'``; only data with three real splits (a folder tree
with ``train/``, ``val/`` and ``test/``) has a distinct ``'test'``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch.utils.data import Dataset

from alexnet.errors import UsageError


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
