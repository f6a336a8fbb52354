"""viz.filters: kernel tiles and their grid (Figure 3), checked against an independent min-max scaling."""

import numpy as np
import pytest
import torch
from PIL import Image

from alexnet.errors import UsageError
from alexnet.viz.filters import filter_tiles, plot_filters, tile_grid

PNG = b"\x89PNG\r\n\x1a\n"


def scaled(x: np.ndarray) -> np.ndarray:
    return (x - x.min()) / (x.max() - x.min())


def cut(grid: np.ndarray, t: int, cols: int, h: int, w: int, pad: int) -> np.ndarray:
    r, c = divmod(t, cols)
    top, left = pad + r * (h + pad), pad + c * (w + pad)
    return grid[top:top + h, left:left + w]


def test_rgb_tiles_cut_from_grid_equal_each_kernel_scaled_on_its_own():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(10, 3, 5, 7))  # K,C,h,w; h != w catches a swapped transpose
    w[3] *= 100.0  # a strong kernel must not wash out the others
    tiles = filter_tiles(torch.tensor(w), "rgb")
    assert tiles.shape == (10, 5, 7, 3)
    grid = tile_grid(tiles, cols=4, pad=2, fill=0.25)
    assert grid.shape == (3 * (5 + 2) + 2, 4 * (7 + 2) + 2, 3)
    for k in range(10):
        expected = scaled(w[k].transpose(1, 2, 0))  # h,w,3
        np.testing.assert_array_equal(cut(grid, k, 4, 5, 7, 2), expected)
    assert grid[0, 0, 0] == 0.25 and grid[1, 3, 1] == 0.25  # padding
    np.testing.assert_array_equal(cut(grid, 10, 4, 5, 7, 2), 0.25)  # unused cells keep the fill
    np.testing.assert_array_equal(filter_tiles(w, "auto"), tiles)  # C == 3 -> rgb


def test_channels_mode_order_and_sum_mode():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(4, 5, 3, 3))
    tiles = filter_tiles(w, "channels")
    assert tiles.shape == (20, 3, 3, 1)
    for k in range(4):
        for c in range(5):
            np.testing.assert_array_equal(tiles[k * 5 + c, :, :, 0], scaled(w[k, c]))
    np.testing.assert_array_equal(filter_tiles(w), tiles)  # auto: K*C = 20 <= 256
    summed = filter_tiles(w, "sum")
    assert summed.shape == (4, 3, 3, 1)
    np.testing.assert_array_equal(summed[2, :, :, 0], scaled(w[2].sum(axis=0)))
    big = rng.normal(size=(64, 5, 3, 3))  # 320 slices: auto falls back to sum
    assert filter_tiles(big).shape == (64, 3, 3, 1)


def test_constant_kernel_is_mid_grey():
    w = np.zeros((2, 3, 4, 4))
    w[1] = np.arange(48).reshape(3, 4, 4)
    tiles = filter_tiles(w, "rgb")
    assert np.all(tiles[0] == 0.5)
    assert tiles[1].min() == 0.0 and tiles[1].max() == 1.0


def test_bad_modes():
    w = np.zeros((2, 3, 4, 4))
    with pytest.raises(UsageError, match="rgb, sum, channels"):
        filter_tiles(w, "colour")
    with pytest.raises(UsageError, match="3 input channels"):
        filter_tiles(np.zeros((2, 1, 4, 4)), "rgb")
    with pytest.raises(UsageError):
        filter_tiles(np.zeros((3, 4, 4)))


def png_size(path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == PNG
    with Image.open(path) as im:
        return im.size


def test_plot_filters_layouts(tmp_path):
    w = torch.randn(96, 3, 11, 11)  # the paper's conv1
    plain = png_size(plot_filters(w, tmp_path / "f.png", title="conv1"))
    towers = png_size(plot_filters(w, tmp_path / "t.png", towers=2))
    both = png_size(plot_filters(w, tmp_path / "b.png", towers=2, before=torch.randn(96, 3, 11, 11)))
    # 16 columns x 0.45 inch + margins = 7.5 inch at 120 dpi; 6 rows of tiles make it about 8:3 wide
    assert 850 <= plain[0] <= 950 and 350 <= plain[1] <= 500
    assert towers[0] == plain[0] and plain[1] < towers[1] <= 650  # two panels, each with a subtitle
    assert 1700 <= both[0] <= 1900 and both[1] == towers[1]  # before | after side by side
    grey = png_size(plot_filters(torch.randn(96, 1, 11, 11), tmp_path / "g.png"))
    assert 850 <= grey[0] <= 950
    with pytest.raises(UsageError, match="equal towers"):
        plot_filters(w, tmp_path / "x.png", towers=5)
    with pytest.raises(UsageError, match="shape"):
        plot_filters(w, tmp_path / "x.png", before=torch.randn(64, 3, 11, 11))
    with pytest.raises(UsageError, match=".png"):
        plot_filters(w, tmp_path / "f.jpg")
