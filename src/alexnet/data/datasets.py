"""The two kinds of split every reader builds: images held in memory, and image files on disk.

Both return ``(image, label)`` from ``__getitem__`` and carry ``targets`` (every label, without
decoding anything), so samplers and class counts need no pass over the images.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset

from alexnet.data.images import BadImage, load_image


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
