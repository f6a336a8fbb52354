"""viz.filters: kernel tiles and their grid (Figure 3), checked against an independent min-max scaling."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

from alexnet.errors import UsageError
from alexnet.viz.figure import layout_problems
from alexnet.viz.filters import change_tiles, filter_tiles, plot_filters, relative_change, tile_grid

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def drawn(drawn_by):
    """The figures alexnet.viz.filters saves (tests/viz/conftest.py)."""
    return drawn_by.setdefault("filters", [])


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
    # initial | trained | change side by side: three panels of 5 inches (15 inches shared) + margins
    assert 1800 <= both[0] <= 1900 and both[1] < towers[1]
    grey = png_size(plot_filters(torch.randn(96, 1, 11, 11), tmp_path / "g.png"))
    assert 850 <= grey[0] <= 950
    with pytest.raises(UsageError, match="equal towers"):
        plot_filters(w, tmp_path / "x.png", towers=5)
    with pytest.raises(UsageError, match="shape"):
        plot_filters(w, tmp_path / "x.png", before=torch.randn(64, 3, 11, 11))
    with pytest.raises(UsageError, match=r"\.png"):
        plot_filters(w, tmp_path / "f.jpg")


def test_a_long_title_wraps_inside_the_figure(tmp_path, drawn):
    """The run-name title of `alexnet viz filters --checkpoint RUN` was cut at both edges of the narrow figure."""
    title = "alexnet_mini (alexnet_mini-shapes-20261201-101530): features.conv1, 24 kernels of 5x5x3"
    plot_filters(torch.randn(24, 3, 5, 5), tmp_path / "f.png", title=title)
    fig = drawn[0]
    assert layout_problems(fig) == []
    heading = fig._suptitle.get_text()
    assert "\n" in heading.split("RGB")[0]  # wrapped, not shrunk or cut
    assert re.sub(r"\s+", "", title) in re.sub(r"\s+", "", heading)


def percents(text: str) -> list[float]:
    return [float(x) / 100 for x in re.findall(r"‖W₀‖ = ([0-9.e+-]+)%", text)]


def test_before_after_states_the_measured_change(tmp_path, drawn):
    """Heading and change panel state ||W - W0|| / ||W0||, equal to numpy's from the two tensors."""
    rng = np.random.default_rng(3)
    before = rng.normal(size=(24, 3, 5, 5))
    after = before + 0.03 * rng.normal(size=before.shape)
    plot_filters(torch.tensor(after), tmp_path / "b.png", before=torch.tensor(before), title="run")
    fig = drawn[0]
    assert layout_problems(fig) == []
    expected = np.linalg.norm(after - before) / np.linalg.norm(before)
    (stated,) = percents(fig._suptitle.get_text())
    assert stated == pytest.approx(expected, rel=5e-3)  # printed to 3 significant digits
    assert relative_change(before, after) == pytest.approx(expected, rel=1e-12)
    initial, trained, change = fig.axes
    assert (initial.get_title(), trained.get_title()) == ("initial", "trained")
    assert percents(change.get_title()) == [stated]
    amp = float(re.search(r"×([0-9.]+)", change.get_title()).group(1))
    # the change panel's tile 7 is 0.5 + amp * (after - before) / (the initial tile's range), as its title says
    cols = 8  # 24 tiles at about 8:3
    got = cut(change.images[0].get_array(), 7, cols, 5, 5, 1)
    d, b = (after[7] - before[7]).transpose(1, 2, 0), before[7]
    np.testing.assert_allclose(got, np.clip(0.5 + amp * d / (b.max() - b.min()), 0, 1), atol=1e-12)


def test_before_after_per_tower_change(tmp_path, drawn):
    rng = np.random.default_rng(4)
    before = rng.normal(size=(8, 3, 3, 3))
    after = before.copy()
    after[4:] += 0.2 * rng.normal(size=(4, 3, 3, 3))  # only the second tower learns
    plot_filters(after, tmp_path / "t.png", before=before, towers=2)
    fig = drawn[0]
    assert layout_problems(fig) == []
    changes = [ax for ax in fig.axes if "‖ΔW‖" in ax.get_title()]
    assert [percents(ax.get_title()) for ax in changes] == [[0.0], [pytest.approx(
        np.linalg.norm(after[4:] - before[4:]) / np.linalg.norm(before[4:]), rel=5e-3)]]
    assert "tower 2" in changes[1].get_title()


def test_change_tiles_amplification():
    rng = np.random.default_rng(5)
    before = rng.normal(size=(16, 3, 4, 4))
    tiles, amp, saturated = change_tiles(before, before)
    assert np.all(tiles == 0.5) and amp == 1.0 and saturated == 0.0  # nothing moved: all mid-grey
    after = before + 0.001 * rng.normal(size=before.shape)
    tiles, amp, saturated = change_tiles(before, after)
    assert tiles.shape == (16, 4, 4, 3) and 0.0 <= tiles.min() and tiles.max() <= 1.0
    decade = 10 ** np.floor(np.log10(amp))
    mantissa = round(amp / decade, 9)
    assert mantissa in (1.0, 2.0, 5.0)  # a round factor a reader can take in
    bigger = {1.0: 2.0, 2.0: 5.0, 5.0: 10.0}[mantissa] * decade
    span = np.ptp(before.transpose(0, 2, 3, 1).reshape(16, -1), axis=1)[:, None, None, None]
    rel = (after - before).transpose(0, 2, 3, 1) / span
    assert np.mean(np.abs(amp * rel) > 0.5) == pytest.approx(saturated) and saturated <= 0.02
    assert np.mean(np.abs(bigger * rel) > 0.5) > 0.02  # the next round factor would saturate too much
    with pytest.raises(UsageError, match="all zero"):
        relative_change(np.zeros((2, 3, 3, 3)), np.ones((2, 3, 3, 3)))
    with pytest.raises(UsageError, match="shape"):
        change_tiles(before, before[:4])
