"""Random images of any size, made on access: a data set for benchmarks and smoke tests.

Spec: ``fake[:CxHxW][,n=N][,val=M][,classes=K][,seed=S]``; defaults 3x224x224, n=1000 train
images, val=200, 10 classes. Image i of a split is drawn from a generator seeded by (seed,
split, i), so it is the same on every access and in every DataLoader worker, and nothing but
the labels is held in memory. Pixels are uniform 0..255, so the labels cannot be learnt.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from alexnet.data.datasets import DataSource, at_least, parse_chw, parse_options

_OPTIONS = {"n": int, "val": int, "classes": int, "seed": int}


class FakeImages(Dataset):
    """`n` random uint8 images of shape C,H,W with random labels below `num_classes`."""

    def __init__(self, n: int, shape: tuple[int, int, int], num_classes: int, seed: int) -> None:
        self.shape = shape
        self.num_classes = num_classes
        # One 64-bit base seed per split; image i uses base + i.
        self._base = int(np.random.SeedSequence(seed % 2**63).generate_state(1, np.uint64)[0])
        labels = torch.Generator().manual_seed(self._base)
        self.targets = torch.randint(num_classes, (n,), generator=labels).tolist()

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        n = len(self.targets)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} fake images")
        index %= n
        g = torch.Generator().manual_seed((self._base + 1 + index) % 2**64)
        image = torch.randint(0, 256, self.shape, generator=g, dtype=torch.uint8)  # C,H,W
        return image, self.targets[index]

    def __repr__(self) -> str:
        return f"FakeImages({len(self)} images of {self.shape})"


def open_fake(
    arg: str | None, *, seed: int = 0, val_fraction: float = 0.1, download: bool = True
) -> DataSource:
    """Random images (see the module docstring); `val_fraction` and `download` are unused."""
    shape, rest = (3, 224, 224), []
    for part in (arg or "").split(","):
        if part.strip() and "=" not in part and "x" in part.lower():
            shape = parse_chw(part.strip(), "fake: shape")
        else:
            rest.append(part)
    opts = parse_options("fake", ",".join(rest), _OPTIONS)
    n, n_val = opts.get("n", 1000), opts.get("val", 200)
    classes, seed = opts.get("classes", 10), opts.get("seed", seed)
    at_least("fake", "n", n, 1)
    at_least("fake", "val", n_val, 1)
    at_least("fake", "classes", classes, 1)

    base = seed % 2**62
    val = FakeImages(n_val, shape, classes, 2 * base + 1)
    channels = shape[0]
    return DataSource(
        name="fake",
        spec="fake" + (f":{arg}" if arg else ""),
        classes=[f"class_{k}" for k in range(classes)],
        splits={"train": FakeImages(n, shape, classes, 2 * base), "val": val, "test": val},
        channels=channels,
        mean=(0.5,) * channels,
        std=(0.2887,) * channels,  # of a uniform 0..1 variable: 1/sqrt(12)
        image_size=(shape[1], shape[2]),
    )
