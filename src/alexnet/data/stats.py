"""The training set's pixel statistics in the paper's units: its mean image and its RGB principal components.

Section 2: "We did not pre-process the images in any other way, except for subtracting the mean
activity over the training set from each pixel" -- a mean *image*, one value per pixel and
channel, of the 256x256 training images, on raw 0-255 values. cuda-convnet2 stores it as the
batches' `data_mean` and Caffe as `imagenet_mean.binaryproto` (models/bvlc_alexnet), both
computed over the prepared training images. Section 4.1's colour noise needs the
eigen-decomposition of "the 3x3 covariance matrix of RGB pixel values throughout the ImageNet
training set": here the C x C covariance of every pixel of every prepared training image, in the
same 0-255 units, so CIFAR-10 gets CIFAR-10's components and a grey dataset its 1x1 variance.

Both come out of one streaming pass (float64 sums: the image sum, the channel sum and the
channel outer-product sum), with a progress bar, and are cached under the package's cache folder
(`stats/`, keyed by the split's content and the preparation), so a run computes them once per
dataset and every later run, seed or resume reads them back. A run's checkpoint carries them
too, so eval, predict, viz and export prepare images as training did without the dataset.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset
from tqdm import tqdm

from alexnet.atomic import atomic_path
from alexnet.data.datasets import ImageFiles, TensorImages
from alexnet.data.loader import make_loader
from alexnet.data.paths import cache_dir
from alexnet.data.transforms import Prepare
from alexnet.errors import UsageError
from alexnet.limits import MiB, check_regular, check_torch_zip

_VERSION = 1  # of the cached file's layout


@dataclass(frozen=True)
class PixelStats:
    """A training split's mean image and the principal components of its pixel values, 0-255 units."""

    mean_image: Tensor  # C,R,R float32: the mean of every prepared training image, pixel by pixel
    eigval: Tensor  # C float32: variance of the pixel values along each principal component, descending
    eigvec: Tensor  # C,C float32: the components as columns (eigvec[:, i] goes with eigval[i])
    images: int  # how many images the statistics are over

    def to_dict(self) -> dict[str, object]:
        return {"mean_image": self.mean_image, "eigval": self.eigval, "eigvec": self.eigvec, "images": self.images}

    @staticmethod
    def from_dict(d: dict[str, object]) -> PixelStats:
        return PixelStats(d["mean_image"], d["eigval"], d["eigvec"], int(d["images"]))  # type: ignore[arg-type]


def _fits(stats: PixelStats, channels: int, side: int) -> bool:
    """Whether cached statistics are whole: the shapes asked for, finite, from at least one image."""
    parts = (stats.mean_image, stats.eigval, stats.eigvec)
    return (all(isinstance(t, torch.Tensor) and t.is_floating_point() and bool(torch.isfinite(t).all()) for t in parts)
            and tuple(stats.mean_image.shape) == (channels, side, side) and tuple(stats.eigval.shape) == (channels,)
            and tuple(stats.eigvec.shape) == (channels, channels) and stats.images > 0)


def accumulate(batches: Callable[[], object], channels: int, side: int, *, total: int | None = None,
               what: str = "pixel statistics") -> PixelStats:
    """PixelStats of the uint8 N,C,R,R batches that `batches()` iterates over (objects with `.images`)."""
    image_sum = torch.zeros(channels, side, side, dtype=torch.float64)  # C,R,R
    channel_sum = torch.zeros(channels, dtype=torch.float64)  # C
    outer_sum = torch.zeros(channels, channels, dtype=torch.float64)  # C,C
    n = 0
    bar = tqdm(batches(), total=total, desc=what, leave=False, file=sys.stderr, dynamic_ncols=True)
    for batch in bar:
        x = batch.images  # type: ignore[attr-defined]  # uint8 N,C,R,R
        if x.numel() == 0:
            continue
        x = x.to("cpu", torch.float64)
        image_sum += x.sum(dim=0)
        pixels = x.transpose(0, 1).reshape(channels, -1)  # C,N*R*R
        channel_sum += pixels.sum(dim=1)
        outer_sum += pixels @ pixels.T
        n += x.shape[0]
    bar.close()
    if n == 0:
        raise ValueError("no readable images to compute pixel statistics from")
    count = n * side * side
    mu = channel_sum / count  # C
    cov = outer_sum / count - torch.outer(mu, mu)  # C,C: E[x x^T] - mu mu^T, population covariance
    eigval, eigvec = torch.linalg.eigh(cov)  # ascending
    order = torch.argsort(eigval, descending=True)
    return PixelStats((image_sum / n).float(), eigval[order].clamp_min(0).float(), eigvec[:, order].float(), n)


def split_key(split: Dataset) -> str | None:
    """A digest of what the split holds (None: unknown, so not cached): pixels and labels, or paths and labels."""
    h = hashlib.sha1()
    if isinstance(split, TensorImages):
        h.update(str(tuple(split.images.shape)).encode())
        h.update(split.images.contiguous().numpy().tobytes())
    elif isinstance(split, ImageFiles):
        h.update("\0".join(map(str, split.paths)).encode("utf-8", "surrogateescape"))
    else:
        return None
    h.update(",".join(map(str, split.targets)).encode())
    return h.hexdigest()


def cached_pixel_stats(split: Dataset, batches: Callable[[], object], *, channels: int, side: int, preset: str,
                       total: int | None = None, root: Path | None = None) -> PixelStats:
    """PixelStats of `split` as `batches()` prepares it, read from the cache when computed before.

    `preset` and `side` name the preparation (the same split resized another way has another mean).
    A cache that cannot be read or written is skipped: the statistics are then computed every time.
    """
    key = split_key(split)
    path = None
    if key is not None:
        digest = hashlib.sha1(f"{_VERSION}|{key}|{preset}|{side}|{channels}".encode()).hexdigest()[:20]
        path = (root or cache_dir()) / "stats" / f"pixels-{digest}.pt"
        try:
            check_regular(path, 64 * MiB)  # a pipe in its place would block torch.load for ever
            check_torch_zip(path, 64 * MiB)  # and a deflated entry would be inflated whole
            cached = PixelStats.from_dict(torch.load(path, weights_only=True))
            if _fits(cached, channels, side):
                return cached
        except Exception:  # absent, unreadable, foreign or damaged: compute it again
            pass
    stats = accumulate(batches, channels, side, total=total,
                       what=f"mean image and RGB covariance of {len(split)} training images (once; cached)")  # type: ignore[arg-type]
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                torch.save(stats.to_dict(), tmp)
        except (OSError, UsageError):  # a full disk, or something not a file in its place: not cached
            pass
    return stats


def pixel_stats_for(split: Dataset, prepare: Prepare, known: dict | None, *, workers: int,
                    decode_on: torch.device | None = None) -> PixelStats:
    """The training split's mean image and RGB components as `prepare` makes its images: a resumed
    run's own (`known`, its checkpoint), or computed (and cached). Weights that carry a mean image
    but no components (Caffe's, as a fine-tune's start) keep their mean image; the components are
    this split's."""
    if known is not None and known.get("pca"):
        mean_image = known.get("mean_image")
        if mean_image is None:
            mean_image = torch.zeros(len(known["pca"]["eigval"]), prepare.side, prepare.side)
        return PixelStats(mean_image, known["pca"]["eigval"], known["pca"]["eigvec"], 0)
    loader = make_loader(split, prepare, batch_size=256, shuffle=False, workers=workers, decode_on=decode_on)
    stats = cached_pixel_stats(split, lambda: iter(loader), channels=prepare.to_channels.channels, side=prepare.side,
                               preset=prepare.preset, total=len(loader))
    kept = known.get("mean_image") if known is not None else None
    if kept is not None and tuple(kept.shape) == tuple(stats.mean_image.shape):
        return PixelStats(kept, stats.eigval, stats.eigvec, stats.images)
    return stats
