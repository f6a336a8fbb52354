"""viz.heatmap: the softmax grid's shape and filling, against torch's own softmax and reshape."""

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text
from PIL import Image

from alexnet.errors import UsageError
from alexnet.viz.figure import layout_problems
from alexnet.viz.heatmap import grid_shape, plot_heatmap, softmax_grid


@pytest.fixture
def drawn(drawn_by):
    """The figures alexnet.viz.heatmap saves (tests/viz/conftest.py)."""
    return drawn_by.setdefault("heatmap", [])


def widest_empty_band(fig) -> float:
    """The widest run of figure columns (inches) that no axes and no text reaches, top to bottom."""
    fig.set_dpi(120)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    r = canvas.get_renderer()
    used = np.zeros(int(fig.bbox.width), dtype=bool)
    boxes = [ax.get_window_extent(r) for ax in fig.axes if ax.images or ax.axison]  # an axes switched off is blank
    boxes += [t.get_window_extent(r) for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    for b in boxes:
        used[max(0, int(b.x0)):max(0, int(b.x1))] = True
    best = run = 0
    for u in used:
        run = 0 if u else run + 1
        best = max(best, run)
    return best / 120


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
    assert 1400 <= w <= 1800 and 650 <= h <= 900  # image over the top-5 list | 8 x 5 inch grid
    small = plot_heatmap(np.full(10, 0.1), list("abcdefghij"), tmp_path / "s.png", top=3)
    with Image.open(small) as im:
        assert im.size[0] < w
    with pytest.raises(UsageError, match="class names"):
        plot_heatmap(np.full(10, 0.1), ["a"], tmp_path / "x.png")


@pytest.mark.parametrize("k", [10, 1000])
def test_heatmap_has_no_empty_columns_and_a_readable_top5(tmp_path, drawn, k):
    """The list of the top classes was 8 pt in a column twice its width, beside a grid with wide gaps."""
    probs = torch.softmax(torch.randn(k, generator=torch.Generator().manual_seed(k)) * 3, 0)
    classes = [f"class number {i}" for i in range(k)]
    plot_heatmap(probs, classes, tmp_path / "h.png", image=torch.rand(3, 32, 32), title="run: all softmax outputs")
    fig = drawn[0]
    assert layout_problems(fig) == []
    assert widest_empty_band(fig) < 0.6
    best = torch.argsort(probs, descending=True, stable=True)[:5].tolist()
    (listing,) = [t for t in fig.texts if classes[best[0]] in t.get_text()]
    assert listing.get_fontsize() >= 10
    rows = listing.get_text().split("\n")
    assert [row.split(". ")[1].split("  ")[0].strip() for row in rows] == [classes[i] for i in best]
    assert [float(row.split()[-1].rstrip("%")) for row in rows] == [round(100 * float(probs[i]), 1) for i in best]
