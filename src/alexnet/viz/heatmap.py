"""All softmax outputs for one image as a heatmap grid, the top classes numbered on it.

Follows the lab-notebook view of the 1000-way softmax (the paper's output layer, Section 3.5):
the 1000 ImageNet class probabilities laid out row-major as a 25 x 40 grid, so one picture shows
how sharply the net commits to a class and where the runners-up are (the top-5 of Figure 4, left).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from alexnet.errors import UsageError
from alexnet.viz.figure import pyplot, save, short, to_display


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


def plot_heatmap(probs: Any, classes: Sequence[str], path: str | Path, *, title: str = "", top: int = 5,
                 image: Any = None) -> Path:
    """Draw the softmax grid, the `top` classes numbered on it and listed with their probability.

    `classes` names the K outputs in order; `image` (optional) is drawn on the left.
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

    # about 0.2 inch per cell for 40 columns, bigger cells for small K; the list column fits 22+ chars
    grid_w = min(max(cols * 0.2, 3.5), 9.0)
    grid_h = grid_w * rows / cols
    img_w = 2.6 if image is not None else 0.0
    list_w = 2.6 if top else 0.0
    fig_h = max(grid_h, img_w, 0.22 * top + 0.6, 2.0) + 1.2
    ratios = ([img_w] if image is not None else []) + [grid_w + 1.0] + ([list_w] if top else [])
    fig, axes = plt.subplots(1, len(ratios), figsize=(sum(ratios) + 0.6, fig_h),
                             gridspec_kw={"width_ratios": ratios}, squeeze=False)
    axes = list(axes[0])

    if image is not None:
        ax = axes.pop(0)
        pic = to_display(image)
        ax.imshow(pic, cmap="gray" if pic.ndim == 2 else None)
        ax.set_title("input", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])

    ax = axes.pop(0)
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")  # cells past K: blank
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0.0, vmax=max(float(p.max()), 1e-12),
                   interpolation="nearest")
    cax = ax.inset_axes((1.02, 0.0, 0.025, 1.0))  # exactly the grid's height, whatever its aspect
    fig.colorbar(im, cax=cax, label="probability")
    # y ticks name the class index of each row's first cell, so a cell's class = row start + column
    step = max(1, rows // 8)
    ax.set_yticks(range(0, rows, step), [str(r * cols) for r in range(0, rows, step)], fontsize=7)
    xstep = max(1, cols // 8)
    ax.set_xticks(range(0, cols, xstep), [str(c) for c in range(0, cols, xstep)], fontsize=7)
    ax.set_xlabel("column (class index = row start + column)", fontsize=8)
    ax.set_ylabel("row start (class index)", fontsize=8)
    size = 7 if cols >= 30 else 9
    for rank, cls in enumerate(best, start=1):
        r, c = divmod(int(cls), cols)
        # a white numbered box stays readable on any cell colour
        ax.text(c, r, str(rank), ha="center", va="center", fontsize=size, fontweight="bold", color="black",
                bbox={"boxstyle": "round,pad=0.12", "fc": "white", "ec": "red", "lw": 0.8})
    ax.set_title(f"{k} softmax outputs as {rows} x {cols} (row-major)", fontsize=9)

    if top:
        ax = axes.pop(0)
        ax.axis("off")
        lines = [f"{rank:>2}. {short(classes[int(c)])}  {p[int(c)]:.2f}" for rank, c in enumerate(best, start=1)]
        ax.text(0.0, 1.0, f"top {top}\n" + "\n".join(lines), transform=ax.transAxes, ha="left", va="top",
                fontsize=8, family="monospace", linespacing=1.5)

    fig.suptitle(title or "softmax output", fontsize=10)
    return save(fig, path)
