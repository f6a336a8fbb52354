"""All softmax outputs for one image as a heatmap grid, the top classes numbered on it.

Follows the lab-notebook view of the 1000-way softmax (the paper's output layer, Section 3.5):
the 1000 ImageNet class probabilities laid out row-major as a 25 x 40 grid, so one picture shows
how sharply the net commits to a class and where the runners-up are (the top-5 of Figure 4, left).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alexnet.errors import UsageError
from alexnet.viz.figure import finish, pyplot, short, text_height, text_width, to_display, wrap

HEAD, LIST = 11, 11  # font sizes (points) of the heading and of the list of top classes
SPACING = 1.4  # the list's line spacing
EDGE = 0.2  # the figure's margin (inches)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def grid_shape(k: int) -> tuple[int, int]:
    """(rows, cols) holding k cells about 1.6 times as wide as tall: cols = ceil(sqrt(1.6 k)).

    Integer arithmetic on purpose: in floats 1000 * 1.6 is 1600.0000000000002 and would give 41.
    1000 -> (25, 40), 10 -> (3, 4), 1 -> (1, 1).
    """
    if k < 1:
        raise UsageError(f"a softmax grid needs at least one class, got {k}")
    need = -(-8 * k // 5)  # ceil(1.6 k)
    cols = math.isqrt(need)
    if cols * cols < need:
        cols += 1  # ceil(sqrt(...))
    cols = min(cols, k)  # k = 1 would otherwise get an empty second column
    return -(-k // cols), cols


def _probs(probs: Any) -> np.ndarray:
    p = probs.detach().cpu().numpy() if hasattr(probs, "detach") else np.asarray(probs)
    p = np.asarray(p, dtype=np.float64).squeeze()  # 1,K (a batch of one) -> K
    if p.ndim != 1 or p.size == 0:
        raise UsageError(f"softmax outputs must be one vector of K probabilities, got shape {np.shape(probs)}")
    return p  # K


def softmax_grid(probs: Any) -> np.ndarray:
    """Probabilities (K) as a rows x cols array filled row-major; cells past K are NaN."""
    p = _probs(probs)  # K
    rows, cols = grid_shape(p.size)
    grid = np.full(rows * cols, np.nan)  # rows*cols
    grid[: p.size] = p
    return grid.reshape(rows, cols)  # rows,cols


def plot_heatmap(probs: Any, classes: Sequence[str], path: str | Path | None = None, *, title: str = "", top: int = 5,
                 image: Any = None) -> Path | Figure:
    """Draw the softmax grid, the `top` classes numbered on it and listed with their probability.

    `classes` names the K outputs in order; `image` (optional) is drawn on the left, the list of
    the top classes under it.
    """
    plt = pyplot()
    p = _probs(probs)  # K
    k = p.size
    if len(classes) != k:
        raise UsageError(f"{k} softmax outputs but {len(classes)} class names")
    if top < 0:
        raise UsageError(f"top must be 0 or more, got {top}")
    top = min(top, k)
    grid = softmax_grid(p)  # rows,cols
    rows, cols = grid.shape
    best = np.argsort(-p, kind="stable")[:top]  # top; ties keep the lower class index

    names = [short(classes[int(c)]) for c in best]
    width = max((len(n) for n in names), default=0)
    lines = [f"{rank:>{len(str(top))}}. {name:<{width}}  {p[int(c)]:6.1%}"  # monospace: the columns line up
             for rank, (name, c) in enumerate(zip(names, best), start=1)]
    # Placed by hand in inches (save(tight=False)): the picture with the ranked list under it on the
    # left, the grid and its colourbar on the right, all top-aligned, so no column is left half empty.
    # About 0.2 inch per cell for 40 columns; a small K gets bigger cells, as tall as the left column.
    pic_side = 3.0 if image is not None else 0.0
    list_w = max(text_width("\n".join(lines), LIST, family="monospace"), text_width(f"top {top}", LIST)) if top else 0.0
    list_h = text_height(top + 1, LIST) * SPACING / 1.2 if top else 0.0
    left_w = max(pic_side, list_w)
    above = 0.35  # a 9 pt axes title and its pad
    left_h = (pic_side + (above if top else 0.0) if image is not None else 0.0) + list_h
    under = 0.6  # tick labels and the x label under the grid
    grid_w = min(max(cols * 0.2, (left_h - under) * cols / rows, 4.5), 9.0)
    grid_h = grid_w * rows / cols
    right_h = grid_h + under
    gap, ylab = 0.2, 0.6  # between the columns; the grid's y tick labels and y label
    # the grid, a 0.08 gap, the 0.18 colourbar, 0.7 for its ticks and label
    width = EDGE + (left_w + gap if left_w else 0.0) + ylab + grid_w + 0.08 + 0.18 + 0.7 + EDGE
    heading = wrap(title or "softmax output", width - 2 * EDGE, HEAD)
    head_h = text_height(heading.count("\n") + 1, HEAD) + 0.25
    height = head_h + above + max(left_h, right_h) + EDGE
    fig = plt.figure(figsize=(width, height))

    def axes(left: float, top_: float, w: float, h: float) -> Any:  # inches from the top-left corner
        return fig.add_axes((left / width, 1 - (top_ + h) / height, w / width, h / height))

    y0 = head_h + above
    if image is not None:
        ax = axes(EDGE + (left_w - pic_side) / 2, y0, pic_side, pic_side)
        pic = to_display(image)
        ax.imshow(pic, cmap="gray" if pic.ndim == 2 else None)
        ax.set_title("input", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])

    x = EDGE + (left_w + gap if left_w else 0.0) + ylab
    ax = axes(x, y0, grid_w, grid_h)
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")  # cells past K: blank
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0.0, vmax=max(float(p.max()), 1e-12),
                   interpolation="nearest", aspect="auto")
    cax = axes(x + grid_w + 0.08, y0, 0.18, grid_h)  # exactly the grid's height
    bar = fig.colorbar(im, cax=cax)
    bar.set_label("probability", fontsize=9)
    bar.ax.tick_params(labelsize=8)
    # y ticks name the class index of each row's first cell, so a cell's class = row start + column
    step = max(1, rows // 8)
    ax.set_yticks(range(0, rows, step), [str(r * cols) for r in range(0, rows, step)], fontsize=8)
    xstep = max(1, cols // 8)
    ax.set_xticks(range(0, cols, xstep), [str(c) for c in range(0, cols, xstep)], fontsize=8)
    ax.set_xlabel("column (class index = row start + column)", fontsize=9)
    ax.set_ylabel("row start (class index)", fontsize=9)
    size = 7 if cols >= 30 else 11
    for rank, cls in enumerate(best, start=1):
        r, c = divmod(int(cls), cols)
        # a white numbered box stays readable on any cell colour
        ax.text(c, r, str(rank), ha="center", va="center", fontsize=size, fontweight="bold", color="black",
                bbox={"boxstyle": "round,pad=0.12", "fc": "white", "ec": "red", "lw": 0.8})
    ax.set_title(f"{k} softmax outputs as {rows} x {cols} (row-major)", fontsize=9)

    if top:
        list_top = y0 + (pic_side + above if image is not None else 0.0)
        fig.text(
            EDGE / width, 1 - list_top / height, f"top {top}", ha="left", va="top", fontsize=LIST, fontweight="bold"
        )
        fig.text(EDGE / width, 1 - (list_top + text_height(1, LIST) * SPACING / 1.2) / height, "\n".join(lines),
                 ha="left", va="top", fontsize=LIST, family="monospace", linespacing=SPACING)

    fig.suptitle(heading, fontsize=HEAD, y=1 - 0.1 / height, va="top")
    return finish(fig, path, tight=False)
