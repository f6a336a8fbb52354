"""Pictures of what the network predicts for some images: a titled grid, and top-5 bar charts.

`plot_prediction_grid` is the grid the AlexNet teaching notebooks (d2l, the PyTorch tutorials)
draw after training: each image titled with the predicted class and its confidence, green when
right and red when wrong. `plot_top5` follows the paper's Figure 4 (left): "Eight ILSVRC-2010
test images and the five labels considered most probable by our model. The correct label is
written under each image, and the probability assigned to the correct label is also shown with
a red bar (if it happens to be in the top 5)."

A "topk" is one image's prediction as `alexnet predict` returns it: a list of dicts
{"class": str, "index": int, "prob": float}, most probable first.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alexnet.errors import UsageError
from alexnet.viz.figure import finish, fit, pyplot, short, text_height, to_display, wrap

Topk = Sequence[dict[str, Any]]

RIGHT, WRONG, NEUTRAL = "#1a7f37", "#cf222e", "black"  # title colours: top-1 right / wrong / no label
BAR, TRUE_BAR = "#9ecae1", "#f07070"  # the paper draws the correct label's bar in red
MAX_TOP5 = 8  # Figure 4 shows eight images; more would make the bar labels unreadable
CELL, GAP, EDGE = 2.4, 0.2, 0.15  # the grid's image side, the gap between columns, the margin (inches)
TILE, HEAD, PAD = 9, 11, 6  # title and heading font sizes, the title's distance from its image (points)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_prediction_grid(images: Sequence[Any], topks: Sequence[Topk], path: str | os.PathLike | None = None, *,
                         title: str = "", true: Sequence[str | None] | None = None, cols: int = 4,
                         names: Sequence[str] | None = None) -> Path | Figure:
    """A grid of `images`, each titled "<top-1 class> <confidence>%" (and "true: X" when known).

    Images may be uint8 H,W,3 / H,W / C,H,W tensors or arrays of different sizes. With `true`,
    a title is green when the top-1 class is the true one and red when not, and the heading
    counts the right ones; a None in `true` means that image's label is unknown. `names` (file
    names, say) head each title in black, shortened in the middle when wider than the image.
    """
    _check(images, topks, true, names)
    if cols < 1:
        raise UsageError(f"the grid needs at least 1 column, got cols={cols}")
    n = len(images)
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    lines = (1 if true is None else 2) + (names is not None)  # title lines over each image
    right = labelled = 0
    texts = []  # (name or None, prediction title, colour) per image
    for i in range(n):
        top1 = topks[i][0] if len(topks[i]) else None
        text = f"{_name(top1['class'])} {_percent(top1['prob'])}" if top1 else "no prediction"
        colour = NEUTRAL
        label = None if true is None else true[i]
        if label is not None:
            labelled += 1
            ok = top1 is not None and _same(top1["class"], label)
            right += ok
            colour = RIGHT if ok else WRONG
            text += f"\ntrue: {_name(label)}"
        texts.append((None if names is None else fit(str(names[i]), CELL, TILE), text, colour))
    heading = f"{n} image{'s' if n != 1 else ''}"
    if labelled:
        of = "" if labelled == n else f", {labelled} labelled"
        heading += f"{of}: {right} right ({right / labelled:.0%})"

    # Placed by hand in inches (save(tight=False)): each row's title block is measured from its
    # line count, so a title never reaches the image above it (tight_layout let them touch).
    width = cols * CELL + (cols - 1) * GAP + 2 * EDGE
    heading = wrap(f"{title}\n{heading}" if title else heading, width - 2 * EDGE, HEAD)
    head_h = text_height(heading.count("\n") + 1, HEAD) + 0.25
    title_h = text_height(lines, TILE) + PAD / 72 + 0.12  # the lines, the pad under them, a gap over them
    height = head_h + rows * (title_h + CELL) + (rows - 1) * 0.05 + EDGE
    plt = pyplot()
    fig = plt.figure(figsize=(width, height))
    for i in range(n):
        r, c = divmod(i, cols)
        left, top = EDGE + c * (CELL + GAP), head_h + r * (title_h + CELL + 0.05) + title_h
        ax = fig.add_axes((left / width, 1 - (top + CELL) / height, CELL / width, CELL / height))
        ax.imshow(to_display(images[i]), cmap="gray", vmin=0, vmax=255)  # grey: no contrast stretch
        ax.axis("off")
        name, text, colour = texts[i]
        ax.set_title(text, fontsize=TILE, color=colour, pad=PAD)
        if name is not None:
            # one title has one colour: the name is its own text, one line above the coloured ones
            above = PAD + text_height(text.count("\n") + 1, TILE) * 72 + 1
            ax.annotate(name, (0.5, 1.0), xycoords="axes fraction", xytext=(0, above), textcoords="offset points",
                        ha="center", va="baseline", fontsize=TILE, color=NEUTRAL, parse_math=False)
    fig.suptitle(heading, fontsize=HEAD, y=1 - 0.1 / height, va="top")
    return finish(fig, path, tight=False)


def plot_top5(
    images: Sequence[Any], topks: Sequence[Topk], path: str | os.PathLike | None = None, *,
    title: str = "", true: Sequence[str | None] | None = None, names: Sequence[str] | None = None,
) -> Path | Figure:
    """The paper's Figure 4 (left): each image over a bar chart of its five most probable classes.

    Up to 8 images (more: the first 8 are drawn and the heading says so), in one row of up to 4
    or two rows. The true class, when given, is written under the image and its bar is red when
    it is among the five. `names` (file names, say) title the images, shortened in the middle
    when wider than the column.
    """
    _check(images, topks, true, names)
    total = len(images)
    n = min(total, MAX_TOP5)
    cols = n if n <= 4 else math.ceil(n / 2)
    rows = math.ceil(n / cols)
    plt = pyplot()
    # each image column: a square picture over a bar chart about 3/4 its height
    fig = plt.figure(figsize=(2.6 * cols, 4.3 * rows + 0.5))
    grid = fig.add_gridspec(2 * rows, cols, height_ratios=[1.0, 0.75] * rows)
    for i in range(n):
        r, c = divmod(i, cols)
        label = None if true is None else true[i]
        pic = fig.add_subplot(grid[2 * r, c])
        pic.imshow(to_display(images[i]), cmap="gray", vmin=0, vmax=255)  # grey: no contrast stretch
        pic.axis("off")
        if names is not None:
            pic.set_title(fit(str(names[i]), 2.4, TILE), fontsize=TILE, parse_math=False)
        bars = fig.add_subplot(grid[2 * r + 1, c])
        _bars(bars, list(topks[i])[:5], label)
        if label is not None:
            # the true label heads the bar chart: right under the image, whatever the image's shape
            bars.set_title(_name(label, 26), fontsize=9, fontweight="bold")
    heading = title or "top-5 predictions"
    if total > n:
        heading += f" (first {n} of {total} images)"
    fig.suptitle(wrap(heading, 2.6 * cols - 0.3, HEAD), fontsize=HEAD)
    return finish(fig, path)


def _bars(ax: Any, top: list[dict[str, Any]], label: str | None) -> None:
    """Horizontal bars of up to five probabilities, the class name written on each bar as in Figure 4."""
    y = range(len(top))
    probs = [float(t["prob"]) for t in top]
    colours = [TRUE_BAR if label is not None and _same(t["class"], label) else BAR for t in top]
    ax.barh(y, probs, color=colours, height=0.8)
    for k, t in enumerate(top):
        # names sit inside the axes over the bars: tick labels would eat half the column's width
        ax.text(0.02, k, _name(t["class"], 24), va="center", ha="left", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(4.5, -0.5)  # most probable on top; five slots even when fewer are given
    ax.set_yticks([])
    ax.set_xticks([0, 0.5, 1], ["0", "50%", "100%"], fontsize=7)
    ax.tick_params(axis="x", length=2, pad=1)


def file_labels(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Names that tell the pictures apart: the file names, or folder/name where file names repeat
    (CIFAR's test/<class>/0000.jpg has a 0000.jpg in every class folder)."""
    bare = [Path(p).name for p in paths]
    if len(set(bare)) == len(bare):
        return bare
    return [f"{Path(p).parent.name}/{Path(p).name}" for p in paths]


def _check(images: Sequence[Any], topks: Sequence[Topk], true: Sequence[str | None] | None,
           names: Sequence[str] | None = None) -> None:
    if len(images) == 0:
        raise UsageError("nothing to draw: give at least one image")
    if len(images) != len(topks):
        raise UsageError(f"{len(images)} images but {len(topks)} predictions; give one top-k list per image")
    if true is not None and len(true) != len(images):
        raise UsageError(f"{len(images)} images but {len(true)} true labels; give one label (or None) per image")
    if names is not None and len(names) != len(images):
        raise UsageError(f"{len(images)} images but {len(names)} names; give one name per image")


def _name(text: Any, width: int = 22) -> str:
    """A class name for a label: ImageNet's first synonym only ("African hunting dog, hyena dog, ..."
    -> "African hunting dog"), underscores as spaces, cut to `width` characters."""
    return short(str(text).split(",")[0].strip().replace("_", " "), width)


def _same(predicted: Any, label: Any) -> bool:
    """Whether two class names are the same class, ignoring case, underscores and spacing; a name
    without synonyms also matches a full ImageNet name by its first synonym."""
    def norm(s: Any) -> str:
        return " ".join(str(s).replace("_", " ").lower().split())
    a, b = norm(predicted), norm(label)
    if a == b:
        return True
    if ("," in a) == ("," in b):
        return False
    return a.split(",")[0].strip() == b.split(",")[0].strip()


def _percent(p: float) -> str:
    return "<1%" if 0 < p < 0.005 else f"{p:.0%}"
