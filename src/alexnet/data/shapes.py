"""The built-in synthetic data set of the teaching notebook: ten classes of simple coloured shapes.

Spec: ``shapes[:size=32,train=5000,test=1000,seed=S,noise=0.1]``. Classes, in label order:
horizontal_stripes, vertical_stripes, diagonal, checkerboard, circle, square, cross, triangle,
noise, solid. Every image has a random background colour and a random foreground colour that
differs from it by at least 0.35 in each channel, a random position, size, stripe period or
phase, and additive Gaussian pixel noise of std `noise` (on the 0..1 scale); 'noise' images are
i.i.d. uniform pixels and 'solid' ones a flat random colour plus the same small noise.

Generation is vectorised with numpy (one batch per class) and deterministic: the same seed gives
identical tensors, and train and test come from different seeds derived from it, so they differ.
No file is read or written.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from alexnet.data.datasets import DataSource, TensorImages, at_least, parse_options
from alexnet.errors import UsageError
from alexnet.limits import MAX_IMAGE_SIZE

SHAPE_CLASSES = [
    "horizontal_stripes", "vertical_stripes", "diagonal", "checkerboard", "circle",
    "square", "cross", "triangle", "noise", "solid",
]

_OPTIONS = {"size": int, "train": int, "test": int, "seed": int, "noise": float}


def open_shapes(
    arg: str | None, *, seed: int = 0, val_fraction: float = 0.1, download: bool = True
) -> DataSource:
    """Generate the shapes data set; the options come from the spec (see the module docstring).

    Its test split serves as 'val' (and 'test'); `val_fraction` and `download` are unused.
    """
    opts = parse_options("shapes", arg, _OPTIONS)
    size, n_train, n_test = opts.get("size", 32), opts.get("train", 5000), opts.get("test", 1000)
    noise, seed = opts.get("noise", 0.1), opts.get("seed", seed)
    at_least("shapes", "size", size, 16)  # below 16 px the shapes no longer fit with margins
    at_least("shapes", "train", n_train, 1)
    at_least("shapes", "test", n_test, 1)
    at_least("shapes", "noise", noise, 0.0)
    # bounded before generating: size=100000 asked for terabytes, and NaN passes at_least
    if size > MAX_IMAGE_SIZE or not math.isfinite(noise):
        raise UsageError(f"shapes: size must be at most {MAX_IMAGE_SIZE} and noise a finite number (got size={size}, "
                         f"noise={noise})")
    if (n_train + n_test) * 3 * size**2 > 2**32:  # uint8 pixels: 4 GiB, 90 times the default's 46 MB
        raise UsageError(f"shapes: {n_train} + {n_test} images of {size}x{size} would take more than 4 GiB; ask for "
                         "fewer or smaller")

    base = seed % 2**63  # SeedSequence wants a non-negative entropy
    train_x, train_y = make_shapes(n_train, size, noise, np.random.default_rng([base, 1]))
    test_x, test_y = make_shapes(n_test, size, noise, np.random.default_rng([base, 2]))

    # Statistics from (at most) the first 1000 training images: plenty for normalisation.
    pixels = train_x[:1000].float().div_(255)  # N,3,H,W in 0..1
    mean = tuple(pixels.mean(dim=(0, 2, 3)).tolist())
    std = tuple(pixels.std(dim=(0, 2, 3)).tolist())
    test = TensorImages(test_x, test_y)
    return DataSource(
        name="shapes",
        spec="shapes" + (f":{arg}" if arg else ""),
        classes=list(SHAPE_CLASSES),
        splits={"train": TensorImages(train_x, train_y), "val": test, "test": test},
        channels=3,
        mean=mean,
        std=std,
        image_size=(size, size),
    )


def make_shapes(
    n: int, size: int, noise: float, rng: np.random.Generator
) -> tuple[torch.Tensor, list[int]]:
    """`n` images (uint8 N,3,size,size) and their labels, the classes balanced and shuffled."""
    labels = np.arange(n) % len(SHAPE_CLASSES)
    rng.shuffle(labels)
    images = np.empty((n, 3, size, size), dtype=np.uint8)
    for label, name in enumerate(SHAPE_CLASSES):
        where = np.flatnonzero(labels == label)
        if len(where) == 0:
            continue
        batch = _draw(name, len(where), size, rng)  # k,3,H,W float32 in 0..1
        if noise > 0:
            batch += noise * rng.standard_normal(batch.shape, dtype=np.float32)
        np.clip(batch, 0.0, 1.0, out=batch)
        batch *= 255
        images[where] = np.rint(batch, out=batch).astype(np.uint8)
    return torch.from_numpy(images), labels.tolist()


def _draw(name: str, k: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """`k` noise-free images of class `name`: float32 k,3,H,W in 0..1."""
    if name == "noise":
        return rng.random((k, 3, size, size), dtype=np.float32)
    if name == "solid":
        colour = rng.random((k, 3), dtype=np.float32)
        return np.broadcast_to(colour[:, :, None, None], (k, 3, size, size)).copy()

    # Pixel-centre coordinates, shaped to broadcast against per-image parameters of shape k,1,1.
    y = (np.arange(size, dtype=np.float32) + 0.5)[None, :, None]  # 1,H,1
    x = (np.arange(size, dtype=np.float32) + 0.5)[None, None, :]  # 1,1,W

    def param(low: float, high: float) -> np.ndarray:  # one value per image, k,1,1
        return rng.uniform(low, max(low, high), size=(k, 1, 1)).astype(np.float32)

    def centre(margin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # keeps the shape inside
        lo = margin + 1.0
        hi = np.maximum(lo, size - margin - 1.0)
        return rng.uniform(lo, hi).astype(np.float32), rng.uniform(lo, hi).astype(np.float32)

    if name in ("horizontal_stripes", "vertical_stripes", "diagonal"):
        period = param(4.0, size / 3)
        phase = param(0.0, 1.0) * period
        if name == "horizontal_stripes":
            t = y
        elif name == "vertical_stripes":
            t = x
        else:  # 45 degrees one way or the other
            sign = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(k, 1, 1))
            t = (x + sign * y) / math.sqrt(2)
        mask = (t + phase) % period < period / 2
    elif name == "checkerboard":
        cell = param(3.0, size / 4)
        oy, ox = param(0.0, 2.0) * cell, param(0.0, 2.0) * cell
        mask = (np.floor((y + oy) / cell) + np.floor((x + ox) / cell)) % 2 == 0
    elif name == "circle":
        r = param(0.15 * size, 0.35 * size)
        cy, cx = centre(r)
        mask = (y - cy) ** 2 + (x - cx) ** 2 <= r**2
    elif name == "square":
        half = param(0.15 * size, 0.35 * size)
        cy, cx = centre(half)
        mask = np.maximum(np.abs(y - cy), np.abs(x - cx)) <= half
    elif name == "cross":
        arm = param(0.25 * size, 0.4 * size)
        half_width = param(max(1.0, 0.05 * size), max(1.0, 0.1 * size))
        cy, cx = centre(arm)
        dy, dx = np.abs(y - cy), np.abs(x - cx)
        mask = ((dy <= half_width) & (dx <= arm)) | ((dx <= half_width) & (dy <= arm))
    elif name == "triangle":
        half_base = param(0.2 * size, 0.4 * size)
        height = param(0.4 * size, 0.75 * size)
        cx = centre(half_base)[1]
        cy = centre(height / 2)[0]
        down = rng.random((k, 1, 1)) < 0.5  # pointing up or down
        frac = (y - (cy - height / 2)) / height  # 0 at the top edge, 1 at the bottom
        frac = np.where(down, 1.0 - frac, frac)  # now 0 at the apex, 1 at the base
        mask = (frac >= 0) & (frac <= 1) & (np.abs(x - cx) <= half_base * frac)
    else:
        raise ValueError(f"unknown shape class {name!r}")

    background = rng.random((k, 3), dtype=np.float32)
    # The foreground differs from the background by 0.35..0.65 (mod 1) in every channel, so the
    # shape never vanishes into its background.
    foreground = (background + rng.uniform(0.35, 0.65, size=(k, 3)).astype(np.float32)) % 1.0
    mask = np.broadcast_to(mask, (k, size, size))[:, None]  # k,1,H,W
    return np.where(mask, foreground[:, :, None, None], background[:, :, None, None])
