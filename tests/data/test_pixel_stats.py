"""The training set's pixel statistics (data/stats.py) against numpy on real photographs, the
cache, and the paper's input pipeline built on them (mean image, PCA lighting in pixel units)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED

from alexnet.data.datasets import ImageFiles, TensorImages
from alexnet.data.images import load_image
from alexnet.data.loader import make_loader
from alexnet.data.stats import accumulate, cached_pixel_stats, split_key
from alexnet.data.transforms import EvalViews, Lighting, Prepare, TrainAugment, imagenet_pca, resize_for

IMAGENET_SAMPLE = SHARED / "imagenet-sample"
needs_imagenet = pytest.mark.skipif(not IMAGENET_SAMPLE.is_dir(), reason=f"{IMAGENET_SAMPLE} is absent")


def sample_photos(n: int) -> list[str]:
    return [str(p) for p in sorted(IMAGENET_SAMPLE.glob("*/*.JPEG"))[:n]]


@needs_imagenet
def test_mean_image_and_pca_of_real_photos_match_numpy(tmp_path: Path):
    paths = sample_photos(12)
    prepare = Prepare("paper", 227, 3)
    split = ImageFiles(paths, list(range(len(paths))))
    loader = make_loader(split, prepare, batch_size=5, shuffle=False, workers=0)
    stats = cached_pixel_stats(split, lambda: iter(loader), channels=3, side=prepare.side, preset="paper",
                               root=tmp_path)

    # numpy, independently: the same prepared 256x256 squares, float64 throughout
    images = np.stack([prepare(load_image(p)).numpy() for p in paths]).astype(np.float64)  # N,3,256,256
    assert stats.mean_image.shape == (3, 256, 256) and stats.images == len(paths)
    np.testing.assert_allclose(stats.mean_image.numpy(), images.mean(axis=0), atol=1e-3)
    pixels = images.transpose(1, 0, 2, 3).reshape(3, -1)  # 3, N*256*256
    cov = np.cov(pixels, bias=True)
    val, vec = np.linalg.eigh(cov)
    order = np.argsort(val)[::-1]
    np.testing.assert_allclose(stats.eigval.numpy(), val[order], rtol=1e-4)
    for i in range(3):  # eigenvectors are defined up to sign
        assert abs(float(np.dot(stats.eigvec[:, i].numpy(), vec[:, order[i]]))) == pytest.approx(1.0, abs=1e-4)
    # photographs: the first component is close to the grey axis and carries most of the variance
    assert abs(float(stats.eigvec[:, 0].sum())) / math.sqrt(3) > 0.95
    assert float(stats.eigval[0] / stats.eigval.sum()) > 0.8

    # the second call reads the cache: same numbers, no pass over the images
    again = cached_pixel_stats(split, lambda: (_ for _ in ()).throw(AssertionError("recomputed")), channels=3,
                               side=prepare.side, preset="paper", root=tmp_path)
    assert torch.equal(again.mean_image, stats.mean_image) and torch.equal(again.eigvec, stats.eigvec)


def test_the_cache_key_follows_the_content_and_the_preparation(tmp_path: Path):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8, generator=g)
    a, b = TensorImages(images, [0] * 20), TensorImages(images.clone(), [0] * 20)
    assert split_key(a) == split_key(b)
    changed = images.clone()
    changed[3, 1, 2, 2] ^= 1
    assert split_key(TensorImages(changed, [0] * 20)) != split_key(a)
    assert split_key(TensorImages(images, [1] + [0] * 19)) != split_key(a)

    def batches(split):
        loader = make_loader(split, Prepare("none", 8, 3), batch_size=7, shuffle=False, workers=0)
        return lambda: iter(loader)

    first = cached_pixel_stats(a, batches(a), channels=3, side=8, preset="none", root=tmp_path)
    np.testing.assert_allclose(first.mean_image.numpy(), images.double().mean(dim=0).numpy(), atol=1e-4)
    other = cached_pixel_stats(TensorImages(changed, [0] * 20), batches(TensorImages(changed, [0] * 20)),
                               channels=3, side=8, preset="none", root=tmp_path)
    assert not torch.equal(other.mean_image, first.mean_image)
    assert len(list((tmp_path / "stats").glob("pixels-*.pt"))) == 2


def test_one_channel_statistics_are_the_variance():
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (30, 1, 6, 6), dtype=torch.uint8, generator=g)
    loader = make_loader(TensorImages(images, [0] * 30), Prepare("none", 6, 1), batch_size=8, shuffle=False, workers=0)
    stats = accumulate(lambda: iter(loader), 1, 6)
    assert stats.eigvec.abs().item() == pytest.approx(1.0)
    assert stats.eigval.item() == pytest.approx(float(images.double().var(unbiased=False)), rel=1e-6)


def test_prepared_side_is_256_for_the_papers_crops():
    assert resize_for(224, "paper") == 256 and resize_for(227, "paper") == 256
    assert resize_for(32, "paper") == 37 and resize_for(32, "small") == 32


def test_lighting_shifts_along_each_component_by_alpha_times_its_std():
    eigval, eigvec = imagenet_pca()
    lighting = Lighting(0.1, eigval, eigvec)
    torch.manual_seed(0)
    n = 20_000
    x = torch.zeros(n, 3, 1, 1)
    shift = lighting(x)[:, :, 0, 0]  # N,3: each image's colour shift in 0-255 units
    coeff = shift @ eigvec  # N,3: the shift along each component
    measured = coeff.std(dim=0)
    expected = 0.1 * eigval.sqrt()  # 0.1 x [121.8, 37.1, 19.7] grey levels
    # the std of 20,000 normal draws is within 3% of the true one with probability ~1 - 1e-9
    torch.testing.assert_close(measured, expected, rtol=0.03, atol=0)
    # cuda-convnet2's convdata.py, written out in numpy on the same N(0,1) draws:
    # noise = dot(randn(n, 3) * pca_stdevs.T, pca_vecs.T) * color_noise_coeff
    torch.manual_seed(1)
    draws = torch.randn(4, 3).numpy().astype(np.float64)
    torch.manual_seed(1)
    ours = lighting(torch.zeros(4, 3, 1, 1))[:, :, 0, 0].numpy()
    reference = np.dot(draws * eigval.sqrt().numpy()[None, :], eigvec.numpy().T) * 0.1
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4)


def test_mean_image_inputs_are_the_raw_pixels_minus_the_mean_at_each_place():
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 256, (4, 3, 10, 10), dtype=torch.uint8, generator=g)
    mean = torch.rand(3, 10, 10, generator=g) * 255
    stats = dict(size=10, channels=3, mean=[0.5] * 3, std=[0.25] * 3, mean_image=mean)
    out = TrainAugment("none", lighting=0.0, **stats)(x)
    torch.testing.assert_close(out, x.float() - mean)
    views = EvalViews(tta="tencrop", **{**stats, "size": 8})(x)  # N,10,3,8,8
    torch.testing.assert_close(views[:, 4], (x.float() - mean)[:, :, 1:9, 1:9])  # the centre patch
    torch.testing.assert_close(views[:, 0], (x.float() - mean)[:, :, :8, :8])  # top left: the mean at its own place
    # without a mean image: (x/255 - mean) / std per channel
    plain = EvalViews(size=10, channels=3, mean=[0.5] * 3, std=[0.25] * 3)(x)
    torch.testing.assert_close(plain, (x.float() / 255 - 0.5) / 0.25)


@pytest.mark.parametrize("damage", ["NaN mean", "wrong shape", "no images", "a list", "not torch", "a named pipe"])
def test_a_damaged_statistics_cache_is_computed_again(tmp_path, damage):
    """Our own cache file, damaged: never used (a NaN mean image would poison every input), never
    waited on (a pipe in its place), computed again from the images."""
    import os

    g = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (12, 3, 8, 8), dtype=torch.uint8, generator=g)
    split = TensorImages(images, [0] * 12)
    loader = make_loader(split, Prepare("none", 8, 3), batch_size=5, shuffle=False, workers=0)
    first = cached_pixel_stats(split, lambda: iter(loader), channels=3, side=8, preset="none", root=tmp_path)
    [path] = (tmp_path / "stats").glob("pixels-*.pt")
    good = torch.load(path, weights_only=True)
    path.unlink()
    if damage == "a named pipe":
        os.mkfifo(path)
    elif damage == "not torch":
        path.write_text("hello")
    else:
        bad = {"NaN mean": {**good, "mean_image": torch.full_like(good["mean_image"], float("nan"))},
               "wrong shape": {**good, "mean_image": good["mean_image"][:, :4]},
               "no images": {**good, "images": 0}, "a list": [1, 2]}[damage]
        torch.save(bad, path)
    again = cached_pixel_stats(split, lambda: iter(loader), channels=3, side=8, preset="none", root=tmp_path)
    assert torch.equal(again.mean_image, first.mean_image) and again.images == 12
