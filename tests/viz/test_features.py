"""viz.features: which maps are shown (the largest means) and the picture's size."""

import numpy as np
import pytest
import torch
from PIL import Image

from alexnet.errors import UsageError
from alexnet.viz.features import plot_features, select_maps


def test_select_maps_matches_argsort_of_means():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(40, 6, 5))  # C,h,w
    idx, chosen = select_maps(torch.tensor(maps), 7)
    expected = np.sort(np.argsort(maps.mean(axis=(1, 2)))[::-1][:7])
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_array_equal(chosen, maps[expected])
    assert np.all(np.diff(idx) > 0)
    all_idx, all_maps = select_maps(maps, 64)  # fewer maps than max_maps: all, in channel order
    np.testing.assert_array_equal(all_idx, np.arange(40))
    np.testing.assert_array_equal(all_maps, maps)
    with pytest.raises(UsageError):
        select_maps(maps, 0)
    with pytest.raises(UsageError, match="C,h,w"):
        select_maps(np.zeros((4, 4)), 3)


def test_plot_features_png(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, size=(224, 224, 3), dtype=np.uint8)
    maps = torch.relu(torch.randn(96, 27, 27))
    path = plot_features(image, maps, tmp_path / "conv1.png", layer="conv1", title="img 1")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        w, h = im.size
    # 8 x 8 maps of 0.85 inch + the 3 inch input picture, about 11 x 9.5 inches at 120 dpi
    assert 1200 <= w <= 1500 and 1000 <= h <= 1250
    small = plot_features(torch.rand(3, 32, 32), np.zeros((4, 8, 8)), tmp_path / "s.png")  # dead maps are fine
    with Image.open(small) as im:
        assert im.size[0] < w and im.size[1] < h
