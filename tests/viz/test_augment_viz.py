"""viz.augment: the views come from TrainAugment unchanged (checked pixel by pixel), and their picture."""

import numpy as np
import pytest
import torch
from PIL import Image

from alexnet.data.transforms import TrainAugment
from alexnet.errors import UsageError
from alexnet.viz.augment import augment_examples, plot_augmentations

PNG = b"\x89PNG\r\n\x1a\n"
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture
def drawn(drawn_by):
    """The figures alexnet.viz.augment saves (tests/viz/conftest.py)."""
    return drawn_by.setdefault("augment", [])


def image(side: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (channels, side, side), dtype=torch.uint8, generator=g)  # C,R,R


def windows(img: torch.Tensor, size: int) -> list[np.ndarray]:
    """Every size x size window of the image, as H,W,C floats in [0,1]: the independent answer."""
    a = img.permute(1, 2, 0).numpy().astype(np.float64) / 255  # R,R,C
    r = a.shape[0]
    return [a[y:y + size, x:x + size] for y in range(r - size + 1) for x in range(r - size + 1)]


def test_no_augmentation_gives_back_the_pixels():
    img = image(16)
    aug = TrainAugment("none", size=16, channels=3, mean=MEAN, std=STD)
    views = augment_examples(img, aug, 3, MEAN, STD)
    want = img.permute(1, 2, 0).numpy() / 255  # H,W,C
    assert len(views) == 3
    for v in views:
        assert v.shape == (16, 16, 3)
        np.testing.assert_allclose(v, want, rtol=0, atol=1e-6)


def test_grey_image_with_rgb_statistics():
    img = image(12, channels=1)
    aug = TrainAugment("none", size=12, channels=1, mean=MEAN, std=STD)  # grey model: averaged stats
    (v,) = augment_examples(img, aug, 1, MEAN, STD)
    np.testing.assert_allclose(v, img.permute(1, 2, 0).numpy() / 255, rtol=0, atol=1e-6)


def test_paper_crops_are_windows_of_the_original():
    img = image(20)
    aug = TrainAugment("paper", size=16, channels=3, mean=MEAN, std=STD, lighting=0.0, flip=False)
    views = augment_examples(img, aug, 8, MEAN, STD, seed=3)
    cands = windows(img, 16)
    where = []
    for v in views:
        assert v.shape == (16, 16, 3) and v.dtype == np.float64
        hits = [i for i, c in enumerate(cands) if np.abs(v - c).max() < 1e-6]
        assert len(hits) == 1  # random pixels: exactly one window matches
        where.append(hits[0])
    assert len(set(where)) > 1  # the 8 copies were cropped independently


def test_paper_flips_are_mirrored_windows_and_lighting_stays_in_range():
    img = image(20)
    flipped = torch.flip(img, dims=[-1])
    aug = TrainAugment("paper", size=16, channels=3, mean=MEAN, std=STD, lighting=0.0)
    cands = windows(img, 16) + windows(flipped, 16)
    for v in augment_examples(img, aug, 6, MEAN, STD):
        assert any(np.abs(v - c).max() < 1e-6 for c in cands)
    lit = TrainAugment("paper", size=16, channels=3, mean=MEAN, std=STD, lighting=5.0)
    views = augment_examples(img, lit, 4, MEAN, STD)
    assert all(v.min() >= 0 and v.max() <= 1 for v in views)  # clipped for display
    assert not any(any(np.abs(v - c).max() < 1e-3 for c in cands) for v in views)  # colours did change


def test_same_seed_same_views_and_caller_rng_untouched():
    img = image(20)
    aug = TrainAugment("paper", size=16, channels=3, mean=MEAN, std=STD)
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = augment_examples(img, aug, 5, MEAN, STD, seed=7)
    after = torch.rand(3)
    b = augment_examples(img, aug, 5, MEAN, STD, seed=7)
    c = augment_examples(img, aug, 5, MEAN, STD, seed=8)
    assert torch.equal(before, after)  # fork_rng: the caller's stream goes on as if nothing ran
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_augment_examples_bad_input():
    aug = TrainAugment("none", size=8, channels=3, mean=MEAN, std=STD)
    with pytest.raises(UsageError, match="at least 1"):
        augment_examples(image(8), aug, 0, MEAN, STD)
    with pytest.raises(UsageError, match="uint8"):
        augment_examples(image(8).float(), aug, 2, MEAN, STD)


def test_plot_augmentations(tmp_path, drawn):
    img = image(20)
    aug = TrainAugment("paper", size=16, channels=3, mean=MEAN, std=STD)
    views = augment_examples(img, aug, 8, MEAN, STD)
    out = plot_augmentations(img, views, tmp_path / "a.png", caption="random 16 crop + flip + PCA lighting")
    assert out.read_bytes()[:8] == PNG
    with Image.open(out) as im:
        w, h = im.size
    # original in a 3.55 in box + 4 x 1.6 in views: about 10.6 x 4.5 in at 120 dpi
    assert 1200 <= w <= 1350 and 500 <= h <= 580
    fig = drawn[0]
    pics = [ax for ax in fig.axes if ax.images]
    assert len(pics) == 9
    assert pics[0].get_title() == "original, 20 x 20"
    assert pics[0].images[0].get_array().shape == (20, 20, 3)
    assert [ax.get_title() for ax in pics[1:]] == [f"view {i}" for i in range(1, 9)]
    np.testing.assert_array_equal(pics[1].images[0].get_array(), np.rint(views[0] * 255).astype(np.uint8))
    assert fig._suptitle.get_text() == "8 random training views, 16 x 16"
    assert [t.get_text() for t in fig.texts if t is not fig._suptitle] == ["random 16 crop + flip + PCA lighting"]


def test_plot_augmentations_few_views_long_caption(tmp_path, drawn):
    img = np.zeros((30, 30, 3), dtype=np.uint8)  # H,W,C arrays are fine too
    views = [np.full((24, 24, 3), 0.5)] * 3
    caption = "a long caption " * 20
    out = plot_augmentations(img, views, tmp_path / "a.png", title="three", caption=caption)
    with Image.open(out) as im:
        w, h = im.size
    assert 900 <= w <= 1050 and 450 <= h <= 600
    fig = drawn[0]
    assert len([ax for ax in fig.axes if ax.images]) == 4  # one row of three views
    assert fig._suptitle.get_text() == "three\n3 random training views, 24 x 24"
    (text,) = [t.get_text() for t in fig.texts if t is not fig._suptitle]
    assert "\n" in text and text.split() == caption.split()  # wrapped, nothing lost


def test_plot_augmentations_bad_input(tmp_path):
    with pytest.raises(UsageError, match="at least one"):
        plot_augmentations(image(8), [], tmp_path / "a.png")
    with pytest.raises(UsageError, match="PNG"):
        plot_augmentations(image(8), [np.zeros((4, 4, 3))], tmp_path / "a.pdf")
