"""The paper's input pipeline (section 4.1) and the small-image presets, in two stages.

1. `prepare` (per sample, in the loader's workers): decode result -> uint8 C,R,R with the model's
   channel count. "paper": shorter side to R = size*256/224, centre square (section 2: "we
   down-sampled the images to a fixed resolution of 256x256"); "small"/"none": resize to size.
2. `TrainAugment` / `EvalViews` (per batch, on the training device): the random size x size
   patch and its horizontal reflection (section 4.1, first form of augmentation), the PCA colour
   noise (second form), normalisation; at test time the centre patch, the patch and its mirror,
   or the ten patches (four corners and centre, and their reflections) whose softmax outputs
   the network averages.

Splitting it this way moves the random work off the per-sample Python path: on this project's
2-core CPU the per-sample torchvision v2 chain cost about 1 ms per 32 px image, more than the
alexnet_mini forward+backward; batched it is a few tensor ops per batch, uint8 batches are 4x
smaller to move, and on a GPU the augmentation runs there.

torchvision supplies resize, crops, flips and grayscale conversion (transforms.v2.functional);
written here is what it lacks: per-image random crops and flips over a whole batch, `Lighting`
(the PCA noise with ImageNet's eigen-decomposition, as fb.resnet.torch and cuda-convnet used
it), and `ToChannels` (1 <-> 3 channels so any picture fits any model).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torchvision.transforms.v2 import functional as F

from alexnet.errors import UsageError

# Eigenvalues and eigenvectors (columns) of the 3x3 covariance of ImageNet's RGB pixel values,
# in [0,1] units, as published with fb.resnet.torch and used by most AlexNet reimplementations.
IMAGENET_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)

PRESETS = ("paper", "small", "none")
TTA_MODES = ("center", "flip", "tencrop")

# The paper crops 224 (really 227) patches out of 256x256 images: the resize is size * 256/224.
PAPER_RESIZE_RATIO = 256 / 224


class Lighting(nn.Module):
    """PCA colour augmentation (section 4.1): add sum_i alpha_i * lambda_i * p_i to every pixel.

    alpha_i ~ N(0, alphastd) is drawn once per image, so the whole image shifts along the
    principal components of natural-image colour: "object identity is invariant to changes in
    the intensity and color of the illumination". Works on float images in [0,1], C,H,W or
    N,C,H,W. One-channel images get the mean of the RGB shift (the first component is almost
    exactly the grey axis), so Fashion-MNIST can use it too.
    """

    def __init__(
        self,
        alphastd: float = 0.1,
        eigval: Sequence[float] = IMAGENET_EIGVAL,
        eigvec: Sequence[Sequence[float]] = IMAGENET_EIGVEC,
    ) -> None:
        super().__init__()
        self.alphastd = alphastd
        self.register_buffer("eigval", torch.tensor(eigval, dtype=torch.float32), persistent=False)
        self.register_buffer("eigvec", torch.tensor(eigvec, dtype=torch.float32), persistent=False)

    def forward(self, img: Tensor) -> Tensor:
        if self.alphastd == 0:
            return img
        x = img if img.ndim == 4 else img.unsqueeze(0)  # N,C,H,W
        alpha = torch.randn(x.shape[0], 3, device=x.device) * self.alphastd  # N,3
        rgb = (alpha * self.eigval) @ self.eigvec.T  # N,3: each image's RGB shift
        shift = rgb if x.shape[1] == 3 else rgb.mean(dim=1, keepdim=True)  # N,C
        out = x + shift.to(x.dtype)[:, :, None, None]
        return out if img.ndim == 4 else out[0]

    def extra_repr(self) -> str:
        return f"alphastd={self.alphastd}"


class ToChannels(nn.Module):
    """Make an image tensor (...,C,H,W) have `channels` channels: grey -> RGB by repetition, RGB -> grey by luma."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.channels = channels

    def forward(self, img: Tensor) -> Tensor:
        c = img.shape[-3]
        if c == self.channels:
            return img
        if c == 1:
            return img.expand(*img.shape[:-3], 3, *img.shape[-2:]).contiguous()
        return F.rgb_to_grayscale(img[..., :3, :, :], num_output_channels=self.channels)

    def extra_repr(self) -> str:
        return f"channels={self.channels}"


def resize_for(size: int, preset: str) -> int:
    """R, the side of the stored square an image is prepared to before cropping `size` out of it."""
    return round(size * PAPER_RESIZE_RATIO) if preset == "paper" else size


class Prepare(nn.Module):
    """Decoded sample (PIL image, uint8 C,H,W or N,C,H,W) -> uint8 (N,)C,R,R with `channels` channels."""

    def __init__(self, preset: str, size: int, channels: int) -> None:
        super().__init__()
        _check_preset(preset)
        self.preset, self.side = preset, resize_for(size, preset)
        self.to_channels = ToChannels(channels)

    def forward(self, sample: object) -> Tensor:
        x = sample if isinstance(sample, Tensor) else F.pil_to_tensor(sample)  # C,H,W uint8
        x = self.to_channels(x.as_subclass(Tensor))
        if tuple(x.shape[-2:]) == (self.side, self.side):
            return x
        if self.preset == "paper":  # shorter side to R, then the centre square
            return F.center_crop(F.resize(x, self.side, antialias=True), [self.side, self.side])
        return F.resize(x, [self.side, self.side], antialias=True)

    def extra_repr(self) -> str:
        return f"preset={self.preset}, side={self.side}"


def eval_prepare(preset: str, *, size: int, channels: int, tta: str = "center") -> Prepare:
    """The prepare step for evaluation: ten-crop always takes its patches from the R-square."""
    return Prepare("paper" if tta == "tencrop" else preset, size, channels)


class _Normalise(nn.Module):
    """(x/255 - mean) / std per channel, as one multiply-add: uint8 ...,C,H,W -> float32 in x's memory format."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], channels: int) -> None:
        super().__init__()
        mean_, std_ = torch.tensor(_fit_stats(mean, channels)), torch.tensor(_fit_stats(std, channels))
        self.register_buffer("mean", mean_[:, None, None], persistent=False)  # C,1,1, [0,1] units
        self.register_buffer("std", std_[:, None, None], persistent=False)
        self.register_buffer("scale", (1 / (255 * std_))[:, None, None], persistent=False)
        self.register_buffer("shift", (-mean_ / std_)[:, None, None], persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        # in place on a fresh float copy: two passes over the batch where (x.float() / 255 - mean) / std
        # makes four (on this project's CPU 19 ms instead of 49 for 64 centre views of 224, 2026-12-01)
        return fresh_float(x).mul_(self.scale).add_(self.shift)


def fresh_float(x: Tensor) -> Tensor:
    """x as a new float32 tensor (never x itself, so in-place steps after it cannot write the caller's batch)."""
    return x.float() if x.dtype != torch.float32 else x.clone()


def _fit_stats(stats: Sequence[float], channels: int) -> list[float]:
    """Dataset statistics adapted to the model's channel count (a grey dataset on an RGB model)."""
    stats = [float(s) for s in stats]
    if len(stats) == channels:
        return stats
    if len(stats) == 1:
        return stats * channels
    return [sum(stats) / len(stats)] * channels


def random_crops(x: Tensor, size: int) -> Tensor:
    """An independent random size x size patch of every image: N,C,H,W -> N,C,size,size."""
    n, c, h, w = x.shape
    if (h, w) == (size, size):
        return x
    oy = torch.randint(0, h - size + 1, (n,), device=x.device)
    ox = torch.randint(0, w - size + 1, (n,), device=x.device)
    if x.device.type == "cpu":
        # a copy of each image's window: on a 2-core CPU 1 ms for 64 x 3x256x256 -> 224, where the
        # gather took 44 ms (measured 2026-11-22); on a GPU the gather is one kernel where the
        # loop would be n launches
        return crops_by_slicing(x, oy, ox, size)
    return crops_by_gather(x, oy, ox, size)


def crops_by_slicing(x: Tensor, oy: Tensor, ox: Tensor, size: int) -> Tensor:
    """The patches at top-left corners (oy[i], ox[i]), one slice per image: N,C,H,W -> N,C,S,S."""
    return torch.stack([x[i, :, y:y + size, left:left + size] for i, (y, left) in enumerate(zip(oy.tolist(), ox.tolist()))])


def crops_by_gather(x: Tensor, oy: Tensor, ox: Tensor, size: int) -> Tensor:
    """The same patches as `crops_by_slicing`, in one indexing op (no host sync): N,C,H,W -> N,C,S,S."""
    n, c = x.shape[:2]
    steps = torch.arange(size, device=x.device)
    rows = (oy[:, None] + steps)[:, None, :, None]  # N,1,S,1
    cols = (ox[:, None] + steps)[:, None, None, :]  # N,1,1,S
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    return x[batch, chans, rows, cols]  # N,C,S,S


def random_flips(x: Tensor) -> Tensor:
    """Mirror each image left-right with probability 1/2: N,C,H,W -> N,C,H,W."""
    flip = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < 0.5
    return torch.where(flip, x.flip(-1), x)


class TrainAugment(nn.Module):
    """Batched training augmentation: uint8 N,C,R,R -> float N,C,size,size.

    paper: random size-patch of the R-square, flip, lighting, normalise (section 4.1).
    small: reflect-pad by size/8, random size-patch, flip, normalise (the CIFAR practice).
    none:  normalise only (the d2l recipe).
    With `channels_last` the output is NHWC in memory, as a channels-last model reads it: the
    uint8 patches are reordered, a quarter of the bytes of the float batch.
    """

    def __init__(self, preset: str, *, size: int, channels: int, mean: Sequence[float], std: Sequence[float],
                 lighting: float = 0.1, flip: bool = True, channels_last: bool = False) -> None:
        super().__init__()
        _check_preset(preset)
        self.preset, self.size, self.flip, self.channels_last = preset, size, flip and preset != "none", channels_last
        self.lighting = Lighting(lighting) if preset == "paper" and lighting > 0 else None
        self.normalise = _Normalise(mean, std, channels)

    def forward(self, x: Tensor) -> Tensor:
        if self.preset == "small":
            pad = max(self.size // 8, 1)
            x = torch.nn.functional.pad(x.float(), (pad, pad, pad, pad), mode="reflect")  # N,C,S+2p,S+2p
        x = random_crops(x, self.size)  # N,C,S,S
        if self.flip:
            x = random_flips(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.lighting is None:
            return self.normalise(x)
        x = self.lighting(fresh_float(x).div_(255))  # N,C,S,S in [0,1], shifted in colour
        return x.sub_(self.normalise.mean).div_(self.normalise.std)

    def extra_repr(self) -> str:
        return f"preset={self.preset}, size={self.size}, flip={self.flip}" + (", channels_last=True" if self.channels_last else "")


def five_crops(x: Tensor, size: int) -> list[Tensor]:
    """The four corner patches and the centre patch, in torchvision's order: ...,H,W -> 5 x ...,S,S."""
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return [x[..., :size, :size], x[..., :size, w - size:], x[..., h - size:, :size], x[..., h - size:, w - size:],
            x[..., top:top + size, left:left + size]]


class EvalViews(nn.Module):
    """Batched test-time views: uint8 N,C,R,R -> float N,C,S,S (center) or N,V,C,S,S.

    center: the centre patch; flip: it and its mirror image (V=2); tencrop: the four corner
    patches and the centre patch, and the same five of the mirrored image (V=10), section 4.1.
    With `channels_last` the centre view comes out NHWC in memory (see `TrainAugment`).
    """

    def __init__(self, *, size: int, channels: int, mean: Sequence[float], std: Sequence[float], tta: str = "center",
                 channels_last: bool = False) -> None:
        super().__init__()
        if tta not in TTA_MODES:
            raise UsageError(f"unknown test-time augmentation '{tta}'; choose from: {', '.join(TTA_MODES)}")
        self.size, self.tta, self.channels_last = size, tta, channels_last
        self.normalise = _Normalise(mean, std, channels)

    def forward(self, x: Tensor) -> Tensor:
        if self.tta == "tencrop":
            views = torch.stack(five_crops(x, self.size) + five_crops(x.flip(-1), self.size), dim=1)  # N,10,C,S,S
            return self.normalise(views)
        centre = five_crops(x, self.size)[4]  # N,C,S,S uint8
        if self.channels_last and centre.dim() == 4:
            centre = centre.contiguous(memory_format=torch.channels_last)
        centre = self.normalise(centre)
        return torch.stack([centre, centre.flip(-1)], dim=1) if self.tta == "flip" else centre

    def extra_repr(self) -> str:
        return f"size={self.size}, tta={self.tta}" + (", channels_last=True" if self.channels_last else "")


def train_transform(preset: str, *, size: int, channels: int, mean: Sequence[float], std: Sequence[float],
                    lighting: float = 0.1, flip: bool = True) -> Callable[[object], Tensor]:
    """The whole training transform of one sample -> float C,size,size (prepare, then augment)."""
    prepare = Prepare(preset, size, channels)
    augment = TrainAugment(preset, size=size, channels=channels, mean=mean, std=std, lighting=lighting, flip=flip)
    return lambda sample: augment(prepare(sample)[None])[0]


def eval_transform(preset: str, *, size: int, channels: int, mean: Sequence[float], std: Sequence[float],
                   tta: str = "center") -> Callable[[object], Tensor]:
    """The whole evaluation transform of one sample -> float C,S,S or V,C,S,S views.

    Ten-crop needs a margin to move in: with the small presets the image is prepared at
    size*256/224 as the paper's preset does.
    """
    prepare = eval_prepare(preset, size=size, channels=channels, tta=tta)
    views = EvalViews(size=size, channels=channels, mean=mean, std=std, tta=tta)
    return lambda sample: views(prepare(sample)[None])[0]


def _check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise UsageError(f"unknown augmentation preset '{preset}'; choose from: {', '.join(PRESETS)}")
