"""The paper's input pipeline (sections 2 and 4.1) and the small-image presets, in two stages.

1. `prepare` (per sample, in the loader's workers): decode result -> uint8 C,R,R with the model's
   channel count. "paper": shorter side to R = 256, then the central 256x256 (section 2: "we
   down-sampled the images to a fixed resolution of 256x256 ... rescaled the image such that the
   shorter side was of length 256, and then cropped out the central 256x256 patch"); crops other
   than the paper's keep its ratio, R = size*256/224. "small"/"none": resize to size.
2. `TrainAugment` / `EvalViews` (per batch, on the training device): the pixels in the net's
   units, the random size x size patch and its horizontal reflection (section 4.1, first form of
   augmentation), the PCA colour noise (second form); at test time the centre patch, the patch
   and its mirror, or the ten patches (four corners and centre, and their reflections) whose
   softmax outputs the network averages.

Ten-crop takes its patches where training took its random crops (`crop_square`): the paper's
four corners and centre of the R-square (section 4.1: 227-patches of the 256 image); for "small",
those of the image reflect-padded by `translate` (default size/8), the extreme and middle positions
of the CIFAR-style pad-and-crop (32 px: 40x40, offsets 0, 4 and 8, the centre patch the image
itself); "none" trained on the whole image: no margin to move in, ten-crop refused (UsageError).
The rule reads the run's saved preparation (`prep["augment"]`), never the model's name. The small
presets once took the paper's geometry instead (the 32 px image resized to R = 37, a scale
training never showed, cut at offsets 0, 2 and 5): the resampling blurred fine patterns and
ten-crop scored far below the centre view (measured: BENCHMARKS.md, 'CPU: this project's
machine'). Ten-crop is kept for "small" rather than refused because these views are in the
training distribution: it matched or beat the centre view on every run measured (tests/engine/test_tencrop.py).

The net's units (`input_norm`): "mean_image" is the paper's, raw 0-255 values minus the training
set's per-pixel mean image (data/stats.py), subtracted from the whole R-square before cropping,
so each patch loses the mean at its own place, as Caffe's data_transformer.cpp does with a
mean_file (cuda-convnet2's convdata.py subtracts the mean's central crop from every patch, which
differs by the mean's slight spatial variation). The paper's N(0, 0.01) init and LRN constants
(k=2, alpha=1e-4) were set for these units: with inputs standardised to unit variance, 58x
smaller, LRN's alpha/n*sum(a^2) stays below 1e-4 of k and the layer is a constant scale
(docs/fidelity.md). "channel" is the common modern choice, (x/255 - mean) / std per channel,
kept for the small-data presets and for torchvision's weights, which were trained with it.

224 or 227: the paper says 224x224 patches. cuda-convnet2 takes 224 and rounds conv1's output
size up (its modulesX covers the image with the last window hanging over the edge), so 224 gives
conv1 55x55 there; PyTorch's convolution rounds down, so an unpadded 11x11/4 conv1 gives 55 from
227 and 54 from 224. This package crops 227, as Caffe's bvlc_alexnet (crop_size: 227) does: the
same 55x55 maps as figure 2 with every window inside the image, and 30x30 = 900 crop positions
per 256-square where 224 gives 33x33 = 1,089 (both "translations" of section 4.1).

Splitting it this way moves the random work off the per-sample Python path, which cost more
than alexnet_mini's forward+backward on the CPU (BENCHMARKS.md, 'CPU: this project's machine');
batched it is a few tensor ops per batch, uint8 batches are 4x smaller to move, and on a GPU
the augmentation runs there.

torchvision supplies resize, crops, flips and grayscale conversion (transforms.v2.functional);
written here is what it lacks: per-image random crops and flips over a whole batch, `Lighting`
(the PCA noise in pixel units from the training set's own eigen-decomposition, as
cuda-convnet2 adds it), and `ToChannels` (1 <-> 3 channels so any picture fits any model).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.transforms.v2 import functional as F

from alexnet.errors import UsageError

# The principal components of ImageNet's RGB pixel values that cuda-convnet2 adds its colour noise
# along (akrizhevsky/cuda-convnet2, make-data/input_meta, 'color_pca': the standard deviations in
# 0-255 units and the eigenvectors as columns; convdata.py multiplies N(0,1) draws by the
# stdevs). Used only where a net carries no statistics of its own training set: weights trained
# elsewhere, checkpoints from before data/stats.py, the benchmark's synthetic data. (fb.resnet.torch
# publishes the same decomposition in [0,1] units, eigval 0.2175, 0.0188, 0.0045.)
IMAGENET_PCA_STD = (121.78006099, 37.09388853, 19.72083305)  # descending
IMAGENET_PCA_VEC = (  # columns, in the order of IMAGENET_PCA_STD
    (-0.56351045, -0.71257945, 0.41795513),
    (-0.5761844, -0.02354167, -0.81698062),
    (-0.59200296, 0.70119634, 0.39731118),
)

PRESETS = ("paper", "small", "none")
TTA_MODES = ("center", "flip", "tencrop")

# Section 2's fixed resolution, and the patch size the paper names (224) for other crop sizes' ratio.
PAPER_SIDE = 256
PAPER_RESIZE_RATIO = PAPER_SIDE / 224


def imagenet_pca() -> tuple[Tensor, Tensor]:
    """cuda-convnet2's ImageNet components as (variances in 0-255 units, eigenvectors as columns)."""
    return torch.tensor(IMAGENET_PCA_STD) ** 2, torch.tensor(IMAGENET_PCA_VEC)


class Lighting(nn.Module):
    """PCA colour augmentation (section 4.1): add sum_i alpha_i * sqrt(lambda_i) * p_i to every pixel.

    p_i and lambda_i are the eigenvectors and eigenvalues of the covariance of the training set's
    pixel values (data/stats.py), in the units of the images this is applied to (0-255 here);
    alpha_i ~ N(0, alphastd) is drawn once per image, so the whole image shifts along the
    principal components of its colours: "object identity is invariant to changes in the
    intensity and color of the illumination". The paper writes alpha_i * lambda_i; cuda-convnet2,
    the code that trained it, scales by the components' standard deviations, sqrt(lambda_i)
    (docs/fidelity.md), which is also the only form whose shift has the units of a pixel. With
    alphastd 0.1 the shift along the first component of ImageNet has a std of 0.1 x 122 = 12 grey
    levels. Works on float N,C,H,W or C,H,W. Images with another channel count than the
    statistics (a grey image, RGB statistics) get the mean of the RGB shift.
    """

    def __init__(self, alphastd: float = 0.1, eigval: Sequence[float] | Tensor | None = None,
                 eigvec: Sequence[Sequence[float]] | Tensor | None = None) -> None:
        super().__init__()
        if eigval is None or eigvec is None:
            eigval, eigvec = imagenet_pca()
        self.alphastd = alphastd
        std = torch.as_tensor(eigval, dtype=torch.float32).clamp_min(0).sqrt()
        self.register_buffer("component_std", std, persistent=False)  # C
        self.register_buffer("eigvec", torch.as_tensor(eigvec, dtype=torch.float32), persistent=False)  # C,C

    def forward(self, img: Tensor) -> Tensor:
        if self.alphastd == 0:
            return img
        x = img if img.ndim == 4 else img.unsqueeze(0)  # N,C,H,W
        k = self.component_std.shape[0]
        alpha = torch.randn(x.shape[0], k, device=x.device) * self.alphastd  # N,K
        shift = (alpha * self.component_std) @ self.eigvec.T  # N,K: each image's colour shift
        shift = shift if x.shape[1] == k else shift.mean(dim=1, keepdim=True).expand(-1, x.shape[1])  # N,C
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


def crop_square(preset: str, size: int, translate: int | None = None) -> tuple[int, int]:
    """(R, pad): the square the training crops of `preset` are cut from is R + 2*pad on a side,
    the R-square of `Prepare` with a reflected border of `pad` (TrainAugment: paper no border,
    small `small_shift`, none takes no crop). Ten-crop's corners are that square's."""
    _check_preset(preset)
    if preset == "small":
        return size, small_shift(size, translate)
    return resize_for(size, preset), 0


def small_shift(size: int, translate: int | None = None) -> int:
    """The reflected border of the small preset's crops, its largest shift in pixels: `translate`,
    or by default size//8 at least 1 (4 px for 32, the CIFAR practice). Raises UsageError where
    the border is not below the side (a reflection cannot be wider than the image)."""
    pad = max(size // 8, 1) if translate is None else int(translate)
    if not 0 <= pad < size:
        raise UsageError(f"translate must be in [0, {size - 1}] for {size}x{size} images (the reflected border is "
                         f"cut from the image itself); got {pad}")
    return pad


def resize_for(size: int, preset: str) -> int:
    """R, the side of the stored square an image is prepared to before cropping `size` out of it.

    paper: 256 for the paper's patch sizes (224 to 256: 224 in the paper and cuda-convnet2, 227 in
    Caffe); other sizes keep the ratio 256/224 (37 for 32 px)."""
    if preset != "paper":
        return size
    return PAPER_SIDE if 224 <= size <= PAPER_SIDE else round(size * PAPER_RESIZE_RATIO)


class Prepare(nn.Module):
    """Decoded sample (PIL image, uint8 C,H,W or N,C,H,W) -> uint8 (N,)C,R,R with `channels` channels.

    With `pad` the R-square gets a reflected border of that many pixels (R + 2*pad a side), the
    border the small preset's training crops move in (ten-crop's corners, `eval_prepare`)."""

    def __init__(self, preset: str, size: int, channels: int, *, pad: int = 0) -> None:
        super().__init__()
        _check_preset(preset)
        self.preset, self.side, self.pad = preset, resize_for(size, preset), pad
        self.to_channels = ToChannels(channels)

    def forward(self, sample: object) -> Tensor:
        x = sample if isinstance(sample, Tensor) else F.pil_to_tensor(sample)  # C,H,W uint8
        x = self.to_channels(x.as_subclass(Tensor))
        if tuple(x.shape[-2:]) != (self.side, self.side):
            if self.preset == "paper":  # shorter side to R, then the centre square
                x = F.center_crop(F.resize(x, self.side, antialias=True), [self.side, self.side])
            else:
                x = F.resize(x, [self.side, self.side], antialias=True)
        if self.pad:  # reflection copies pixels, so uint8 here equals TrainAugment's float padding exactly
            x = torch.nn.functional.pad(x, (self.pad,) * 4, mode="reflect")
        return x

    def extra_repr(self) -> str:
        return f"preset={self.preset}, side={self.side}" + (f", pad={self.pad}" if self.pad else "")


def eval_prepare(preset: str, *, size: int, channels: int, tta: str = "center",
                 translate: int | None = None) -> Prepare:
    """The prepare step for evaluation, `preset` and `translate` being the run's (prep["augment"],
    prep["translate"]): the R-square, and for ten-crop the square the training crops were cut
    from (`crop_square`), so that the ten patches are positions and scales the net was trained
    on. Raises UsageError for ten-crop where training took no crop (no margin: "none", or small
    with translate 0)."""
    if tta != "tencrop":
        return Prepare(preset, size, channels)
    side, pad = crop_square(preset, size, translate)
    if side + 2 * pad <= size:
        raise UsageError("ten-crop takes its views where training cropped, but augment "
                         f"'{preset}'{' with translate 0' * (preset == 'small')} trained on the whole {size}x{size} "
                         "image (no crop, no margin): use tta center or flip")
    return Prepare(preset, size, channels, pad=pad)


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
        # makes four (measured: BENCHMARKS.md, 'CPU: this project's machine')
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
    n, _c, h, w = x.shape
    if (h, w) == (size, size):
        return x
    oy = torch.randint(0, h - size + 1, (n,), device=x.device)
    ox = torch.randint(0, w - size + 1, (n,), device=x.device)
    if x.device.type == "cpu":
        # a copy of each image's window: far faster than the gather on the CPU (BENCHMARKS.md, 'CPU:
        # this project's machine'); on a GPU the gather is one kernel where the loop would be n launches
        return crops_by_slicing(x, oy, ox, size)
    return crops_by_gather(x, oy, ox, size)


def crops_by_slicing(x: Tensor, oy: Tensor, ox: Tensor, size: int) -> Tensor:
    """The patches at top-left corners (oy[i], ox[i]), one slice per image: N,C,H,W -> N,C,S,S."""
    return torch.stack([x[i, :, y:y + size, left:left + size]
                        for i, (y, left) in enumerate(zip(oy.tolist(), ox.tolist()))])


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


class MeanImage(nn.Module):
    """Subtract the training set's mean image (C,R,R, 0-255 units): uint8 or float N,C,H,W -> float N,C,H,W.

    An input wider by an even border of less than R (the small preset's ten-crop square,
    `eval_prepare`) gets the mean reflect-padded as the image was, so pad(x) - pad(mean) is
    training's pad(x - mean); an input of any other side gets the mean resized to it."""

    def __init__(self, mean_image: Tensor) -> None:
        super().__init__()
        self.register_buffer("image", torch.as_tensor(mean_image, dtype=torch.float32), persistent=False)  # C,R,R

    def forward(self, x: Tensor) -> Tensor:
        mean = self.image
        side, want = mean.shape[-1], x.shape[-1]
        if tuple(x.shape[-2:]) != tuple(mean.shape[-2:]):
            border = (want - side) // 2
            if x.shape[-2] == want and want > side and (want - side) % 2 == 0 and border < side:
                mean = torch.nn.functional.pad(mean[None], (border,) * 4, mode="reflect")[0]
            else:
                mean = F.resize(mean[None], list(x.shape[-2:]), antialias=True)[0]
        return fresh_float(x).sub_(mean)

    def extra_repr(self) -> str:
        return f"side={self.image.shape[-1]}"


def prep_stats(prep: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords of `TrainAugment` / `EvalViews` that a checkpoint's preparation fixes: mean and
    std per channel, and the mean image when the net takes the paper's mean-subtracted pixels."""
    mean_image = prep.get("mean_image") if prep.get("input_norm") == "mean_image" else None
    return {"mean": prep["mean"], "std": prep["std"], "mean_image": mean_image}


def prep_pca(prep: Mapping[str, Any]) -> tuple[Tensor, Tensor] | None:
    """The (eigval, eigvec) a checkpoint's training used for PCA lighting; None: ImageNet's fallback."""
    pca = prep.get("pca")
    return (pca["eigval"], pca["eigvec"]) if pca else None


class TrainAugment(nn.Module):
    """Batched training augmentation: uint8 N,C,R,R -> float N,C,size,size.

    paper: random size-patch of the R-square, flip, PCA lighting (section 4.1).
    small: reflect-pad by `translate` (default size/8), random size-patch, flip (the CIFAR practice).
    none:  the pixels in the net's units only (the d2l recipe).
    With `mean_image` (C,R,R, 0-255) the output is raw pixels minus it (section 2), else
    (x/255 - mean) / std per channel. PCA lighting is added in 0-255 pixel units either way, from
    `pca` = (eigval, eigvec) of the training set (data/stats.py; default: ImageNet's).
    With `channels_last` the output is NHWC in memory, as a channels-last model reads it.
    """

    def __init__(self, preset: str, *, size: int, channels: int, mean: Sequence[float], std: Sequence[float],
                 lighting: float = 0.1, flip: bool = True, channels_last: bool = False,
                 mean_image: Tensor | None = None, pca: tuple[Tensor, Tensor] | None = None,
                 translate: int | None = None) -> None:
        super().__init__()
        _check_preset(preset)
        self.preset, self.size, self.flip, self.channels_last = preset, size, flip and preset != "none", channels_last
        self.pad = small_shift(size, translate) if preset == "small" else 0
        eig = pca or (None, None)
        self.lighting = Lighting(lighting, *eig) if preset == "paper" and lighting > 0 else None
        self.normalise = _Normalise(mean, std, channels)
        self.mean_image = MeanImage(mean_image) if mean_image is not None else None

    def forward(self, x: Tensor) -> Tensor:
        if self.mean_image is not None:
            x = self.mean_image(x)  # N,C,R,R float, pixel units minus the mean at each place
        if self.pad:
            pad = self.pad
            x = torch.nn.functional.pad(x.float(), (pad, pad, pad, pad), mode="reflect")  # N,C,S+2p,S+2p
        x = random_crops(x, self.size)  # N,C,S,S
        if self.flip:
            x = random_flips(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.mean_image is not None:
            return self.lighting(x) if self.lighting is not None else x
        if self.lighting is None:
            return self.normalise(x)
        return self.normalise(self.lighting(fresh_float(x)))  # shifted in 0-255 units, then standardised

    def extra_repr(self) -> str:
        return (f"preset={self.preset}, size={self.size}, flip={self.flip}"
                + (f", translate={self.pad}" if self.preset == "small" else "")
                + (", channels_last=True" if self.channels_last else ""))


def five_crops(x: Tensor, size: int) -> list[Tensor]:
    """The four corner patches and the centre patch, in torchvision's order: ...,H,W -> 5 x ...,S,S."""
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return [x[..., :size, :size], x[..., :size, w - size:], x[..., h - size:, :size], x[..., h - size:, w - size:],
            x[..., top:top + size, left:left + size]]


class EvalViews(nn.Module):
    """Batched test-time views: uint8 N,C,R,R -> float N,C,S,S (center) or N,V,C,S,S.

    center: the centre patch; flip: it and its mirror image (V=2); tencrop: the four corner
    patches and the centre patch, and the same five of the mirrored image (V=10), section 4.1,
    of whatever square it is given (`eval_prepare` makes it the training crops' square).
    Pixels in the net's units as `TrainAugment` makes them (the mean image subtracted, or
    standardised per channel). With `channels_last` the centre view comes out NHWC in memory.
    """

    def __init__(self, *, size: int, channels: int, mean: Sequence[float], std: Sequence[float], tta: str = "center",
                 channels_last: bool = False, mean_image: Tensor | None = None) -> None:
        super().__init__()
        if tta not in TTA_MODES:
            raise UsageError(f"unknown test-time augmentation '{tta}'; choose from: {', '.join(TTA_MODES)}")
        self.size, self.tta, self.channels_last = size, tta, channels_last
        self.normalise = _Normalise(mean, std, channels)
        self.mean_image = MeanImage(mean_image) if mean_image is not None else None

    def forward(self, x: Tensor) -> Tensor:
        units = self.normalise if self.mean_image is None else (lambda t: t)
        if self.mean_image is not None:
            x = self.mean_image(x)  # N,C,R,R float
        if self.tta == "tencrop":
            views = torch.stack(five_crops(x, self.size) + five_crops(x.flip(-1), self.size), dim=1)  # N,10,C,S,S
            return units(views)
        centre = five_crops(x, self.size)[4]  # N,C,S,S
        if self.channels_last and centre.dim() == 4:
            centre = centre.contiguous(memory_format=torch.channels_last)
        centre = units(centre)
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

    Ten-crop's patches come from the square training cropped from (`eval_prepare`): paper the
    R-square, small the image with its size/8 reflected border; none refuses it.
    """
    prepare = eval_prepare(preset, size=size, channels=channels, tta=tta)
    views = EvalViews(size=size, channels=channels, mean=mean, std=std, tta=tta)
    return lambda sample: views(prepare(sample)[None])[0]


def _check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise UsageError(f"unknown augmentation preset '{preset}'; choose from: {', '.join(PRESETS)}")
