"""Dataset spec strings (``NAME[:ARG]``) and the table of readers they name.

``open_dataset('cifar10:/data/cifar')`` looks up ``'cifar10'`` in `DATASETS` and calls its opener
with ``'/data/cifar'``. Every opener has the signature
``opener(arg: str | None, *, seed, val_fraction, download) -> DataSource``.
"""

from __future__ import annotations

from collections.abc import Callable

from alexnet.data.cifar import open_cifar10
from alexnet.data.datasets import DataSource
from alexnet.data.fake import open_fake
from alexnet.data.folder import open_folder
from alexnet.data.imagenet import open_imagenet
from alexnet.data.mnist import open_fashion_mnist, open_mnist
from alexnet.data.shapes import open_shapes
from alexnet.errors import UsageError

DATASETS: dict[str, Callable[..., DataSource]] = {
    "shapes": open_shapes,
    "fashion-mnist": open_fashion_mnist,
    "mnist": open_mnist,
    "cifar10": open_cifar10,
    "imagenet": open_imagenet,
    "folder": open_folder,
    "fake": open_fake,
}

# Other spellings people type, mapped to the names above.
ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
    "imagefolder": "folder",
}


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split ``'NAME[:ARG]'`` into (lower-cased known name, ARG or None)."""
    name, sep, arg = spec.strip().partition(":")
    name = name.strip().lower()
    name = ALIASES.get(name, name)
    if name not in DATASETS:
        hint = " (for a folder of class folders use folder:DIR)" if "/" in spec or "\\" in spec else ""
        raise UsageError(f"unknown dataset {name or spec!r}; known: {', '.join(DATASETS)}{hint}")
    return name, (arg if sep and arg else None)


def open_dataset(
    spec: str, *, seed: int = 0, val_fraction: float = 0.1, download: bool = True
) -> DataSource:
    """Open the dataset a spec names, e.g. ``'shapes'``, ``'fashion-mnist'``, ``'cifar10:DIR'``,
    ``'imagenet:DIR'``, ``'folder:DIR'`` or ``'fake:3x224x224,n=512'``.

    `seed` fixes generated data and random splits; `val_fraction` is the share of each class held
    out for 'val' when a folder has no val split of its own; `download` allows torchvision's
    downloaders as a last resort where there are any (MNIST, Fashion-MNIST, CIFAR-10).
    """
    if not 0.0 < val_fraction < 1.0:
        raise UsageError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    name, arg = parse_spec(spec)
    source = DATASETS[name](arg, seed=seed, val_fraction=val_fraction, download=download)
    source.spec = spec
    return source
