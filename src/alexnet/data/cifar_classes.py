"""What every CIFAR-10 reader shares: the ten classes, and the type each reader returns.

The class names and their order are those of the official release (Krizhevsky, 2009): label
``i`` in the python batches (`alexnet.data.cifar_pickle`) is ``CIFAR10_CLASSES[i]``, as its
``batches.meta`` lists them, and a JPEG tree's class folders (`alexnet.data.cifar_jpeg`) are
named by them and numbered in that order.
"""

from __future__ import annotations

from alexnet.data.datasets import TensorImages
from alexnet.errors import DataError

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]

# What every reader returns: the class names, then the train and the test split.
Splits = tuple[list[str], TensorImages, TensorImages]


def class_index(name: str, where: object) -> int:
    """The label of class folder `name`; `where` names the folder in the error if it is no class."""
    if name not in CIFAR10_CLASSES:
        raise DataError(f"cifar10: {where} is not a CIFAR-10 class ({', '.join(CIFAR10_CLASSES)})")
    return CIFAR10_CLASSES.index(name)
