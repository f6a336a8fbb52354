"""viz.predictions: the prediction grid and Figure 4 (left), checked through the figure they draw."""

import matplotlib.colors as mcolors
import numpy as np
import pytest
import torch
from PIL import Image

import alexnet.viz.predictions as P
from alexnet.errors import UsageError
from alexnet.viz.figure import layout_problems
from alexnet.viz.predictions import file_labels, plot_prediction_grid, plot_top5

PNG = b"\x89PNG\r\n\x1a\n"
LONG = "African hunting dog, hyena dog, Cape hunting dog, Lycaon pictus"


@pytest.fixture
def drawn(drawn_by):
    """The figures alexnet.viz.predictions saves (tests/viz/conftest.py)."""
    return drawn_by.setdefault("predictions", [])


def images(n: int) -> list:
    """Mixed kinds and sizes: H,W,3 uint8, H,W grey, C,H,W torch uint8, H,W,3 float in [0,1]."""
    rng = np.random.default_rng(0)
    kinds = [
        lambda: rng.integers(0, 256, (40, 60, 3), dtype=np.uint8),
        lambda: rng.integers(0, 256, (32, 32), dtype=np.uint8),
        lambda: torch.randint(0, 256, (3, 50, 30), dtype=torch.uint8),
        lambda: rng.random((24, 24, 3)),
    ]
    return [kinds[i % 4]() for i in range(n)]


def topk(*pairs) -> list[dict]:
    return [{"class": c, "index": i, "prob": p} for i, (c, p) in enumerate(pairs)]


def png_size(path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == PNG
    with Image.open(path) as im:
        return im.size


def rgb(colour) -> tuple:
    return tuple(np.round(mcolors.to_rgb(colour), 3))


def test_grid_titles_colours_and_score(tmp_path, drawn):
    topks = [topk(("tabby cat", 0.87), ("tiger cat", 0.1)),
             topk((LONG, 0.6), ("dingo", 0.3)),
             topk(("great_white_shark", 0.004)),
             topk(("banjo", 0.5))]
    true = ["tabby cat", "dingo", "great white shark", None]  # right, wrong, right (spelling differs), unknown
    out = plot_prediction_grid(images(4), topks, tmp_path / "g.png", true=true, cols=3)
    assert out == tmp_path / "g.png"
    w, _h = png_size(out)
    assert w == round((3 * P.CELL + 2 * P.GAP + 2 * P.EDGE) * 120)  # 3 columns of 2.4 in at 120 dpi
    fig = drawn[0]
    axes = fig.axes
    assert len(axes) == 4  # 2 rows x 3 columns, the last two cells not drawn
    titles = [ax.get_title() for ax in axes[:4]]
    assert titles[0] == "tabby cat 87%\ntrue: tabby cat"
    assert titles[1] == "African hunting dog 60%\ntrue: dingo"  # first synonym only
    assert titles[2] == "great white shark <1%\ntrue: great white shark"
    assert titles[3] == "banjo 50%"
    colours = [rgb(ax.title.get_color()) for ax in axes[:4]]
    assert colours == [rgb(P.RIGHT), rgb(P.WRONG), rgb(P.RIGHT), rgb(P.NEUTRAL)]
    assert fig._suptitle.get_text() == "4 images, 3 labelled: 2 right (67%)"
    assert axes[1].images[0].get_clim() == (0, 255)  # a grey image is not contrast-stretched
    assert layout_problems(fig) == []


def test_grid_without_labels_and_with_title(tmp_path, drawn):
    out = plot_prediction_grid(images(5), [topk(("x", 0.5))] * 5, tmp_path / "g.png", title="my photos")
    w, _h = png_size(out)
    assert w == round((4 * P.CELL + 3 * P.GAP + 2 * P.EDGE) * 120)
    assert drawn[0]._suptitle.get_text() == "my photos\n5 images"
    assert all(rgb(ax.title.get_color()) == rgb("black") for ax in drawn[0].axes[:5])
    one = plot_prediction_grid(images(1), [topk(("x", 0.5))], tmp_path / "one.png", true=["y"])
    assert png_size(one)[0] == round((P.CELL + 2 * P.EDGE) * 120)  # cols capped at n
    assert drawn[1]._suptitle.get_text() == "1 image: 0 right (0%)"


def test_top5_bars_and_true_class(tmp_path, drawn):
    five = [("tabby cat", 0.5), ("tiger cat", 0.2), (LONG, 0.15), ("lynx", 0.1), ("fox", 0.05)]
    topks = [topk(*five), topk(*five), topk(*five[:3])]
    true = ["tiger cat", "zebra", None]
    out = plot_top5(images(3), topks, tmp_path / "t.png", true=true)
    w, h = png_size(out)
    assert (w, h) == (round(3 * 2.6 * 120), round((4.3 + 0.5) * 120))
    fig = drawn[0]
    pics, bars = fig.axes[0::2], fig.axes[1::2]
    assert all(ax.images for ax in pics) and len(bars) == 3
    for ax, probs in zip(bars, ([p for _, p in five],) * 2 + ([p for _, p in five[:3]],)):
        assert [round(b.get_width(), 6) for b in ax.patches] == probs  # bar lengths are the probabilities
    colours = [rgb(b.get_facecolor()) for b in bars[0].patches]
    assert colours == [rgb(P.BAR), rgb(P.TRUE_BAR)] + [rgb(P.BAR)] * 3  # the true class's bar only
    assert all(rgb(b.get_facecolor()) == rgb(P.BAR) for b in bars[1].patches)  # true class not in the five
    names = [t.get_text() for t in bars[0].texts]
    assert names == ["tabby cat", "tiger cat", "African hunting dog", "lynx", "fox"]
    assert [ax.get_title() for ax in bars] == ["tiger cat", "zebra", ""]  # the true label under the image


def test_top5_two_rows_and_at_most_eight(tmp_path, drawn):
    ten = [topk(("a" * 40, 0.9), ("b", 0.1))] * 10
    out = plot_top5(images(10), ten, tmp_path / "t.png", title="ten")
    w, h = png_size(out)
    assert (w, h) == (round(4 * 2.6 * 120), round((4.3 * 2 + 0.5) * 120))
    fig = drawn[0]
    assert sum(bool(ax.images) for ax in fig.axes) == 8
    assert fig._suptitle.get_text() == "ten (first 8 of 10 images)"
    assert all(len(t.get_text()) <= 24 for ax in fig.axes for t in ax.texts)  # long names cut


@pytest.mark.parametrize("plot", [plot_prediction_grid, plot_top5])
def test_bad_input_is_a_usage_error(tmp_path, plot):
    with pytest.raises(UsageError, match="2 images but 1"):
        plot(images(2), [topk(("x", 1.0))], tmp_path / "a.png")
    with pytest.raises(UsageError, match="at least one image"):
        plot([], [], tmp_path / "a.png")
    with pytest.raises(UsageError, match="true labels"):
        plot(images(2), [topk(("x", 1.0))] * 2, tmp_path / "a.png", true=["x"])
    with pytest.raises(UsageError, match="2 images but 1 names"):
        plot(images(2), [topk(("x", 1.0))] * 2, tmp_path / "a.png", names=["a.png"])
    with pytest.raises(UsageError, match="PNG"):
        plot(images(1), [topk(("x", 1.0))], tmp_path / "a.jpg")
    assert not list(tmp_path.iterdir())


def test_grid_needs_a_column(tmp_path):
    with pytest.raises(UsageError, match="column"):
        plot_prediction_grid(images(1), [topk(("x", 1.0))], tmp_path / "a.png", cols=0)


def test_grid_tiles_are_titled_with_their_file_names(tmp_path, drawn):
    """Each tile: its file name (black, shortened in the middle when wider than the image), then the prediction."""
    names = ["0000.jpg", "cat/0001.jpg", "n02123045_tabby_with_a_very_long_file_name_indeed.JPEG", "x.png"]
    topks = [topk(("tabby cat", 0.87))] * 4
    plot_prediction_grid(images(4), topks, tmp_path / "g.png", true=["tabby cat", "dog", None, "tabby cat"],
                         names=names, cols=2)
    fig = drawn[0]
    for ax, name in zip(fig.axes, names):
        (shown,) = [t.get_text() for t in ax.texts]
        assert rgb(ax.texts[0].get_color()) == rgb(P.NEUTRAL)
        assert ax.get_title().startswith("tabby cat 87%")  # the prediction still titles the tile, in its colour
        if name == names[2]:
            head, tail = shown.split("…")
            assert name.startswith(head) and name.endswith(tail) and tail.endswith(".JPEG") and len(shown) < len(name)
        else:
            assert shown == name
    assert layout_problems(fig) == []


def test_grid_rows_keep_clear_of_the_images_above(tmp_path, drawn):
    """One-, two- and three-line titles: none may reach the row of images above (they touched before)."""
    square = [np.zeros((32, 32, 3), dtype=np.uint8)] * 6  # as `alexnet viz predictions --count 6` drew them
    for i, extra in enumerate([{}, {"true": ["cross", "circle"] * 3},
                               {"true": ["cross"] * 6, "names": [f"{i}.jpg" for i in range(6)]}]):
        plot_prediction_grid(square, [topk(("cross", 0.29))] * 6, tmp_path / f"{i}.png", title="alexnet_mini (run)",
                             **extra)
        assert layout_problems(drawn[i]) == [], extra


def test_top5_images_are_titled_with_their_file_names(tmp_path, drawn):
    names = ["airplane/0000.jpg", "n02123045_tabby_with_a_very_long_file_name_indeed.JPEG"]
    plot_top5(images(2), [topk(("tabby cat", 0.5))] * 2, tmp_path / "t.png", true=["tabby cat", None], names=names)
    pics = drawn[0].axes[0::2]
    assert pics[0].get_title() == names[0]
    head, tail = pics[1].get_title().split("…")
    assert names[1].startswith(head) and names[1].endswith(tail)
    assert layout_problems(drawn[0]) == []


def test_file_labels_tell_repeated_file_names_apart():
    assert file_labels(["a/1.png", "b/2.png"]) == ["1.png", "2.png"]
    assert file_labels(["test/cat/0000.jpg", "test/dog/0000.jpg", "test/dog/0001.jpg"]) == [
        "cat/0000.jpg", "dog/0000.jpg", "dog/0001.jpg"]  # CIFAR has a 0000.jpg in every class folder
