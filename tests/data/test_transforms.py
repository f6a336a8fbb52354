"""The paper's augmentation and test-time views, against torchvision's functional ops and formulas."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from alexnet.data.transforms import (
    IMAGENET_PCA_STD,
    IMAGENET_PCA_VEC,
    EvalViews,
    Lighting,
    ToChannels,
    TrainAugment,
    eval_transform,
    resize_for,
    train_transform,
)
from alexnet.errors import UsageError

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def photo(w: int = 500, h: int = 375, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(arr).convert(mode)


@pytest.mark.parametrize("size", [224, 227])
def test_paper_train_crop_size_and_channels(size):
    t = train_transform("paper", size=size, channels=3, mean=MEAN, std=STD)
    out = t(photo())
    assert out.shape == (3, size, size) and out.dtype == torch.float32
    assert resize_for(224, "paper") == 256


def test_any_mode_and_size_fits_the_model():
    gray_tensor = torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8)
    assert train_transform("small", size=32, channels=3, mean=(0.5,), std=(0.5,))(gray_tensor).shape == (3, 32, 32)
    assert eval_transform("none", size=224, channels=1, mean=MEAN, std=STD)(photo(64, 40)).shape == (1, 224, 224)
    assert eval_transform("paper", size=227, channels=3, mean=MEAN, std=STD)(photo(68, 121, "L")).shape == (3, 227, 227)


def test_eval_center_equals_resize_then_center_crop():
    img = photo()
    got = eval_transform("paper", size=224, channels=3, mean=(0, 0, 0), std=(1, 1, 1))(img)
    ref = TF.center_crop(TF.resize(TF.pil_to_tensor(img), 256, antialias=True), 224).float() / 255
    torch.testing.assert_close(got.as_subclass(torch.Tensor), ref)


def test_flip_tta_is_image_and_mirror():
    views = eval_transform("small", size=32, channels=3, mean=MEAN, std=STD, tta="flip")(photo(32, 32))
    assert views.shape == (2, 3, 32, 32)
    torch.testing.assert_close(views[1], views[0].flip(-1))


def test_ten_crop_views():
    img = photo()
    views = eval_transform("paper", size=224, channels=3, mean=(0, 0, 0), std=(1, 1, 1), tta="tencrop")(img)
    assert views.shape == (10, 3, 224, 224)
    square = TF.center_crop(TF.resize(TF.pil_to_tensor(img), 256, antialias=True), 256).float() / 255
    corners = {0: square[:, :224, :224], 1: square[:, :224, -224:], 2: square[:, -224:, :224],
               3: square[:, -224:, -224:], 4: square[:, 16:240, 16:240]}
    for i, ref in corners.items():
        torch.testing.assert_close(views[i], ref)
    # views 5..9 are the same five crops of the mirrored image: the centre mirrors the centre,
    # the top-left of the mirror is the mirror of the top-right.
    torch.testing.assert_close(views[9], views[4].flip(-1))
    torch.testing.assert_close(views[5], views[1].flip(-1))


def test_random_flip_happens_about_half_the_time():
    torch.manual_seed(0)
    ramp = torch.arange(32, dtype=torch.uint8).mul(4).expand(3, 32, 32).contiguous()  # brighter to the right
    t = train_transform("small", size=32, channels=3, mean=(0,) * 3, std=(1,) * 3, flip=True)
    outs = [t(ramp) for _ in range(200)]
    mirrored = sum(bool(o[0, 16, 10] > o[0, 16, 20]) for o in outs)  # a flipped ramp falls to the right
    assert 60 < mirrored < 140, mirrored
    no_flip = train_transform("small", size=32, channels=3, mean=(0,) * 3, std=(1,) * 3, flip=False)
    assert all(bool(no_flip(ramp)[0, 16, 10] < no_flip(ramp)[0, 16, 20]) for _ in range(50))


def test_lighting_covariance_matches_pca_formula():
    torch.manual_seed(0)
    n, sigma = 40000, 0.1
    x = torch.zeros(n, 3, 1, 1)
    # without statistics of its own: cuda-convnet2's ImageNet components, 0-255 units
    shift = Lighting(sigma)(x)[:, :, 0, 0]  # N,3
    V, std = torch.tensor(IMAGENET_PCA_VEC), torch.tensor(IMAGENET_PCA_STD)
    expected = V @ torch.diag((std * sigma) ** 2) @ V.T  # Cov(V (alpha*sqrt(lambda))) with alpha ~ N(0, sigma^2)
    cov = torch.cov(shift.T)
    torch.testing.assert_close(cov, expected, atol=0.05, rtol=0.05)
    assert shift.mean(0).abs().max() < 0.25  # 4 standard errors of a mean of 40,000 (std 12.2 / 200)
    # one draw per image: every pixel of an image shifts by the same amount
    img = torch.rand(3, 8, 8)
    diff = Lighting(sigma)(img) - img
    torch.testing.assert_close(diff, diff[:, :1, :1].expand_as(diff))


def test_lighting_off_and_one_channel():
    img = torch.rand(1, 5, 5)
    assert torch.equal(Lighting(0.0)(img), img)
    out = Lighting(0.1)(img)
    assert out.shape == img.shape


def test_to_channels_formula():
    rgb = torch.rand(3, 4, 4)
    gray = ToChannels(1)(rgb)
    torch.testing.assert_close(gray[0], 0.2989 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2], atol=1e-4, rtol=0)
    g = torch.rand(1, 4, 4)
    assert torch.equal(ToChannels(3)(g), g.expand(3, 4, 4))


def test_normalisation_uses_dataset_statistics():
    img = torch.full((3, 8, 8), 128, dtype=torch.uint8)
    out = eval_transform("none", size=8, channels=3, mean=MEAN, std=STD)(img)
    expected = (128 / 255 - torch.tensor(MEAN)) / torch.tensor(STD)
    torch.testing.assert_close(out[:, 0, 0], expected)


def test_bad_names():
    with pytest.raises(UsageError, match="augmentation preset"):
        train_transform("fancy", size=32, channels=3, mean=MEAN, std=STD)
    with pytest.raises(UsageError, match="test-time"):
        eval_transform("small", size=32, channels=3, mean=MEAN, std=STD, tta="twelve")


def test_crops_by_slicing_and_by_gather_are_the_same_patches():
    """The CPU path (one slice per image) and the GPU path (one gather) cut the same windows."""
    from alexnet.data.transforms import crops_by_gather, crops_by_slicing

    torch.manual_seed(0)
    x = torch.randint(0, 256, (5, 3, 12, 10), dtype=torch.uint8)
    oy, ox = torch.tensor([0, 4, 2, 1, 4]), torch.tensor([2, 0, 2, 1, 2])
    expected = torch.stack([x[i, :, int(oy[i]):int(oy[i]) + 8, int(ox[i]):int(ox[i]) + 8] for i in range(5)])
    assert torch.equal(crops_by_slicing(x, oy, ox, 8), expected)
    assert torch.equal(crops_by_gather(x, oy, ox, 8), expected)


@pytest.mark.parametrize("preset", ["paper", "small", "none"])
def test_channels_last_batches_hold_the_same_numbers(preset):
    """channels_last changes the memory layout the model reads, nothing else (same draws, same values)."""
    x = torch.randint(0, 256, (4, 3, 37, 37), dtype=torch.uint8)  # N,C,R,R
    stats = dict(size=32, channels=3, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    torch.manual_seed(0)
    plain = TrainAugment(preset, **stats)(x)
    torch.manual_seed(0)
    nhwc = TrainAugment(preset, channels_last=True, **stats)(x)
    assert nhwc.is_contiguous(memory_format=torch.channels_last) and torch.equal(nhwc, plain)
    views = EvalViews(channels_last=True, **stats)(x)
    assert views.is_contiguous(memory_format=torch.channels_last) and torch.equal(views, EvalViews(**stats)(x))
    mean, std = torch.tensor([0.5, 0.4, 0.3])[:, None, None], torch.tensor([0.2, 0.25, 0.3])[:, None, None]
    expected = (x[..., 2:34, 2:34].float() / 255 - mean) / std
    torch.testing.assert_close(views, expected)  # the centre patch, normalised by the formula


@pytest.mark.parametrize("translate", [None, 0, 1, 3, 7])
def test_small_crops_are_every_window_of_the_reflected_border_and_no_other(translate):
    """augment small with `translate` t: each crop is one of the (2t+1)^2 windows of the image
    reflect-padded by t (torchvision's pad as the reference), and 3,000 draws show all of them;
    None is the default border, size/8 (2 px for 16)."""
    torch.manual_seed(0)
    image = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8)  # 1,C,R,R
    stats = dict(size=16, channels=3, mean=[0.0] * 3, std=[1 / 255] * 3)  # units: the 0-255 pixels themselves
    augment = TrainAugment("small", flip=False, lighting=0, translate=translate, **stats)
    t = 2 if translate is None else translate
    assert augment.pad == t
    drawn = augment(image.expand(3000, -1, -1, -1)).flatten(1)  # N,C*S*S
    padded = TF.pad(image[0], [t] * 4, padding_mode="reflect").float()  # C,R+2t,R+2t
    windows = torch.stack([padded[:, y:y + 16, x:x + 16] for y in range(2 * t + 1)
                           for x in range(2 * t + 1)]).flatten(1)
    assert torch.equal(torch.unique(drawn, dim=0), torch.unique(windows, dim=0))


@pytest.mark.parametrize("translate", [-1, 16, 40])
def test_a_border_the_image_cannot_reflect_is_refused(translate):
    with pytest.raises(UsageError, match=r"translate must be in \[0, 15\] for 16x16 images"):
        TrainAugment("small", size=16, channels=3, mean=MEAN, std=STD, translate=translate)
