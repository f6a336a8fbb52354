"""viz.heatmap: the softmax grid's shape and filling, against torch's own softmax and reshape."""

import numpy as np
import pytest
import torch
from PIL import Image

from alexnet.errors import UsageError
from alexnet.viz.heatmap import grid_shape, plot_heatmap, softmax_grid


def test_grid_shape():
    assert grid_shape(1000) == (25, 40)
    assert grid_shape(10) == (3, 4)
    assert grid_shape(1) == (1, 1)
    for k in (2, 7, 100, 200, 1001):
        rows, cols = grid_shape(k)
        assert rows * cols >= k and (rows - 1) * cols < k  # no empty row
    with pytest.raises(UsageError):
        grid_shape(0)


def test_softmax_grid_is_the_row_major_reshape():
    probs = torch.softmax(torch.randn(1000, generator=torch.Generator().manual_seed(0)), dim=0)
    grid = softmax_grid(probs)
    assert grid.shape == (25, 40)
    np.testing.assert_array_equal(grid, probs.reshape(25, 40).numpy())
    np.testing.assert_array_equal(softmax_grid(probs[None]), grid)  # a batch of one


def test_softmax_grid_pads_with_nan():
    probs = np.arange(10) / 45.0
    grid = softmax_grid(probs)
    assert grid.shape == (3, 4)
    np.testing.assert_array_equal(grid.ravel()[:10], probs)
    assert np.isnan(grid.ravel()[10:]).all()


def test_plot_heatmap_png(tmp_path):
    logits = torch.randn(1000)
    logits[281] = 20.0
    classes = [f"class {i}" for i in range(1000)]
    path = plot_heatmap(torch.softmax(logits, 0), classes, tmp_path / "h.png", image=torch.rand(3, 64, 64))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        w, h = im.size
    assert 1600 <= w <= 1900 and 600 <= h <= 850  # image | 8 x 5 inch grid | top-5 list
    small = plot_heatmap(np.full(10, 0.1), list("abcdefghij"), tmp_path / "s.png", top=3)
    with Image.open(small) as im:
        assert im.size[0] < w
    with pytest.raises(UsageError, match="class names"):
        plot_heatmap(np.full(10, 0.1), ["a"], tmp_path / "x.png")
