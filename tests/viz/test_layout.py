"""Every picture's text, as drawn: inside the figure, clear of the images and of other text, readable.

`layout_problems` measures each drawn text's window extent against the figure's bbox, every axes
image's extent and every other text; these tests first check that it catches each kind of fault,
then run it on every plot with the long titles, file names and small grids that used to clip.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import torch

from alexnet.viz.figure import fit, layout_problems, pyplot, text_width, wrap

RUN = "alexnet_mini (alexnet_mini-shapes-20261201-101530)"  # the run-name title that was cut at both edges
LONG_FILE = "val_image_number_0012_with_a_rather_long_name.png"


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


# ---- the checker catches each fault ----------------------------------------------------------

def test_layout_problems_catches_clipping_overlap_touching_and_tiny_text() -> None:
    plt = pyplot()
    fig = plt.figure(figsize=(3, 3))
    a = fig.add_axes((0.1, 0.1, 0.35, 0.35))
    a.imshow(np.zeros((4, 4)))
    b = fig.add_axes((0.1, 0.5, 0.35, 0.35))
    b.imshow(np.zeros((4, 4)))
    b.text(1.5, 1.5, "on its own image", fontsize=8)  # allowed: written into its axes on purpose
    fig.suptitle("a title far too wide for a three inch figure, so cut at both edges")
    a.set_title("touches the image above", fontsize=9, pad=30)
    fig.text(0.6, 0.2, "tiny", fontsize=5)
    fig.text(0.6, 0.5, "one")
    fig.text(0.62, 0.5, "two")
    problems = "\n".join(layout_problems(fig))
    plt.close(fig)
    assert "runs off the figure" in problems and "a title far too wide" in problems
    assert "'touches the image above' comes within" in problems
    assert "'tiny' is 5 pt" in problems
    assert "'one' overlaps 'two'" in problems
    assert "on its own image" not in problems

    clean = plt.figure(figsize=(3, 3))
    clean.add_axes((0.1, 0.1, 0.8, 0.6)).imshow(np.zeros((4, 4)))
    clean.axes[0].set_title("fits", fontsize=9)
    clean.suptitle("short")
    assert layout_problems(clean) == []
    plt.close(clean)


def test_wrap_and_fit_measure_the_text() -> None:
    wrapped = wrap(f"{RUN}: features.conv1, 24 kernels of 5x5x3", 4.0, 10)
    assert all(text_width(line, 10) <= 4.0 for line in wrapped.split("\n"))
    assert squash(wrapped) == squash(f"{RUN}: features.conv1, 24 kernels of 5x5x3")  # nothing lost, only broken
    narrow = wrap(RUN, 1.5, 11)  # the run name alone is wider: broken after its - and _
    assert squash(narrow) == squash(RUN) and all(text_width(line, 11) <= 1.5 for line in narrow.split("\n"))
    short = fit(LONG_FILE, 1.5, 9)
    assert text_width(short, 9) <= 1.5 and "…" in short
    head, tail = short.split("…")
    assert LONG_FILE.startswith(head) and LONG_FILE.endswith(tail) and tail.endswith(".png")
    assert fit("0000.jpg", 1.5, 9) == "0000.jpg"


# ---- every plot, with the inputs that used to clip -------------------------------------------

def images(n: int, size: int = 32) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (size, size + 8 * (i % 3), 3), dtype=np.uint8) for i in range(n)]


def topk(k: int = 5) -> list[dict[str, Any]]:
    names = ["horizontal_stripes", "African hunting dog, hyena dog", "circle", "square", "cross"]
    return [{"class": names[i], "index": i, "prob": 0.5 / (i + 1)} for i in range(k)]


def _filters(tmp: Any) -> None:
    from alexnet.viz.filters import plot_filters

    w = torch.randn(24, 3, 5, 5)
    plot_filters(w, tmp / "f.png", title=f"{RUN}: features.conv1, 24 kernels of 5x5x3")
    plot_filters(w, tmp / "b.png", title=RUN, before=w + 0.01 * torch.randn(24, 3, 5, 5))
    plot_filters(torch.randn(96, 3, 11, 11), tmp / "t.png", towers=2, before=torch.randn(96, 3, 11, 11))


def _features(tmp: Any) -> None:
    from alexnet.viz.features import plot_features

    plot_features(images(1)[0], torch.rand(24, 32, 32), tmp / "f.png", title=f"{RUN}: relu1 on {LONG_FILE}", max_maps=3)
    plot_features(images(1)[0], torch.rand(24, 32, 32), tmp / "g.png", title=RUN)


def _predictions(tmp: Any) -> None:
    from alexnet.viz.predictions import plot_prediction_grid, plot_top5

    names = [LONG_FILE, "0000.jpg", "cat/0001.jpg", "n02123045_tabby.JPEG", "x.png", "y.png"]
    true = ["horizontal stripes", "circle", None, "square", "cross", "dingo"]
    plot_prediction_grid(images(6), [topk()] * 6, tmp / "g.png", title=RUN, true=true, names=names)
    plot_prediction_grid(images(6), [topk()] * 6, tmp / "n.png", title=RUN, names=names)
    plot_prediction_grid(images(1), [topk()], tmp / "one.png", title=RUN, true=["circle"], names=[LONG_FILE])
    plot_top5(images(1), [topk()], tmp / "t1.png", title=f"{RUN}: top-5 predictions", true=["circle"],
              names=[LONG_FILE])
    plot_top5(images(6), [topk()] * 6, tmp / "t6.png", title=RUN, true=true, names=names)


def _heatmap(tmp: Any) -> None:
    from alexnet.viz.heatmap import plot_heatmap

    probs = torch.softmax(torch.randn(1000, generator=torch.Generator().manual_seed(0)) * 3, 0)
    classes = [f"class number {i}, a synonym" for i in range(1000)]
    plot_heatmap(probs, classes, tmp / "h.png", title=f"{RUN}: all 1000 softmax outputs for {LONG_FILE}",
                 image=images(1)[0])
    plot_heatmap(np.full(10, 0.1), [f"c{i}" for i in range(10)], tmp / "s.png", title=f"{RUN}: {LONG_FILE}", top=10)


def _neighbors(tmp: Any) -> None:
    from alexnet.viz.neighbors import plot_neighbors

    title = f"{RUN}: nearest training images in fc7 space (of 100 from shapes:train=320,test=80,size=32)"
    plot_neighbors(images(2), [images(1), images(1)], tmp / "n.png", title=title,
                   query_labels=["vertical_stripes", None],
                   neighbor_labels=[["horizontal_stripes"], ["circle"]], distances=[[1.0], [2.0]])


def _curves(tmp: Any) -> None:
    from alexnet.viz.curves import plot_curves

    one = [{"epoch": 1, "lr": 0.01, "train_loss": 2.0, "val_loss": 2.1, "train_top1": 0.2, "val_top1": 0.25}]
    plot_curves([(RUN, one), ("b", one)], tmp / "c.png",
                title=f"{RUN} against a second run with a title that goes on " * 3)


def _augment(tmp: Any) -> None:
    from alexnet.viz.augment import plot_augmentations

    plot_augmentations(torch.randint(0, 256, (3, 40, 40), dtype=torch.uint8), [np.random.rand(32, 32, 3)],
                       tmp / "a.png",
                       title=f"training augmentation 'paper' of {LONG_FILE} for {RUN}",
                       caption="random crop + flip " * 8)


def _confusion(tmp: Any) -> None:
    from alexnet.viz.confusion import plot_confusion

    plot_confusion(np.array([[5, 1], [2, 7]]), ["cat", "dog"], tmp / "c.png",
                   title="alexnet_mini on cifar10:../shared/datasets/cifar10-jpeg.tar.gz (val, center): top-1 80.00%")


PLOTS = {"filters": _filters, "features": _features, "predictions": _predictions, "heatmap": _heatmap,
         "neighbors": _neighbors, "curves": _curves, "augment": _augment, "confusion": _confusion}


@pytest.mark.parametrize("module", list(PLOTS))
def test_every_text_fits_and_clears_the_images(module: str, tmp_path: Any, drawn_by: dict[str, list[Any]]) -> None:
    PLOTS[module](tmp_path)
    assert drawn_by[module]
    for i, fig in enumerate(drawn_by[module]):
        assert layout_problems(fig) == [], f"{module} figure {i}"
