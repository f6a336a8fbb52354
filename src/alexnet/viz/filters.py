"""First-layer kernels as a grid of small pictures: the paper's Figure 3.

Krizhevsky et al. (2012), Figure 3: "96 convolutional kernels of size 11x11x3 learned by the first
convolutional layer on the 224x224x3 input images. The top 48 kernels were learned on GPU 1 while
the bottom 48 kernels were learned on GPU 2." Each kernel is shown as an RGB tile, min-max scaled
on its own (the paper does not say how it scaled them; per-kernel scaling is the common choice and
keeps weak kernels visible). Kernels with C != 3 input channels are drawn grey, per channel or summed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from alexnet.errors import UsageError
from alexnet.viz.figure import pyplot, save

MODES = ("auto", "rgb", "sum", "channels")
MAX_CHANNEL_TILES = 256  # "auto" draws every (kernel, channel) slice only up to this many tiles


def _array(x: Any) -> np.ndarray:
    """A torch tensor or array-like as a float64 numpy array (float64 so tests can compare exactly)."""
    a = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    return a.astype(np.float64)


def _scale(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Min-max scale `x` to [0, 1] over `axes`; a constant slice becomes 0.5 (no direction to show)."""
    lo = x.min(axis=axes, keepdims=True)
    hi = x.max(axis=axes, keepdims=True)
    span = hi - lo
    out = np.full_like(x, 0.5)
    np.divide(x - lo, span, out=out, where=np.broadcast_to(span > 0, x.shape))
    return out


def _resolve(mode: str, k: int, c: int) -> str:
    if mode not in MODES:
        raise UsageError(f"unknown filter mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "auto":
        return "rgb" if c == 3 else ("channels" if k * c <= MAX_CHANNEL_TILES else "sum")
    if mode == "rgb" and c != 3:
        raise UsageError(f"filter mode 'rgb' needs kernels with 3 input channels, these have {c}; "
                         "use --mode sum or channels")
    return mode


def _weight(weight: Any) -> np.ndarray:
    w = _array(weight)
    if w.ndim != 4 or 0 in w.shape:
        raise UsageError(f"conv kernels must be a K,C,h,w weight, got shape {tuple(w.shape)}")
    return w  # K,C,h,w


def filter_tiles(weight: Any, mode: str = "auto") -> np.ndarray:
    """Kernels K,C,h,w as tiles in [0, 1]: rgb -> K,h,w,3; sum -> K,h,w,1; channels -> (K*C),h,w,1.

    Every tile is scaled on its own: (t - t.min()) / (t.max() - t.min()), 0.5 where t is constant.
    "auto" is rgb for C == 3, else channels when K*C <= 256 tiles, else sum.
    """
    w = _weight(weight)  # K,C,h,w
    k, c, h, wd = w.shape
    mode = _resolve(mode, k, c)
    if mode == "rgb":
        return _scale(w.transpose(0, 2, 3, 1), (1, 2, 3))  # K,h,w,3
    if mode == "sum":
        return _scale(w.sum(axis=1)[..., None], (1, 2, 3))  # K,h,w,1
    # channels: slice (k, c) lands at k*C + c, so one kernel's channels stay next to each other
    return _scale(w.reshape(k * c, h, wd, 1), (1, 2, 3))  # K*C,h,w,1


def tile_grid(tiles: np.ndarray, cols: int, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Tiles T,h,w,c laid out row-major on a (rows*(h+pad)+pad, cols*(w+pad)+pad, c) canvas.

    Tile t sits at row t // cols, column t % cols, top-left corner (pad + r*(h+pad), pad + col*(w+pad));
    the gaps and any unused cells are `fill`.
    """
    t = _array(tiles)
    if t.ndim == 3:
        t = t[..., None]  # T,h,w -> T,h,w,1
    if t.ndim != 4:
        raise UsageError(f"tiles must be T,h,w,c, got shape {tuple(t.shape)}")
    if cols < 1 or pad < 0:
        raise UsageError(f"tile_grid needs cols >= 1 and pad >= 0, got cols={cols}, pad={pad}")
    n, h, w, c = t.shape
    rows = max(1, math.ceil(n / cols))
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), fill, dtype=np.float64)  # H,W,c
    for i in range(n):
        top, left = pad + (i // cols) * (h + pad), pad + (i % cols) * (w + pad)
        grid[top:top + h, left:left + w] = t[i]
    return grid


def _columns(total: int, per_kernel: int) -> int:
    """Columns for `total` tiles so the whole picture is about 8:3 wide, as the paper's 16 x 6 grid.

    Columns are then trimmed to the fewest that keep the same number of rows (fewer empty cells), and
    rounded up to a multiple of `per_kernel` so one kernel's channel slices share a row.
    """
    cols = max(1, math.isqrt(max(0, math.ceil(total * 8 / 3) - 1)) + 1)  # ceil(sqrt(total * 8/3))
    rows = math.ceil(total / cols)
    cols = math.ceil(total / rows)
    if per_kernel > 1:
        cols = per_kernel * math.ceil(cols / per_kernel)
    return cols


def plot_filters(weight: Any, path: str | Path, *, title: str = "", mode: str = "auto", towers: int = 1,
                 before: Any = None, labels: tuple[str, str] = ("initial", "trained")) -> Path:
    """Draw conv kernels K,C,h,w as a tile grid (Figure 3) to `path`.

    towers > 1 splits the kernels into that many equal consecutive blocks, one panel each, stacked
    vertically as the paper's two GPUs. `before` (same shape, e.g. the initial weights) is drawn to
    the left of `weight`, the columns titled with `labels`.
    """
    plt = pyplot()
    w = _weight(weight)  # K,C,h,w
    k, c, h, wd = w.shape
    used = _resolve(mode, k, c)
    if towers < 1 or k % towers:
        raise UsageError(f"cannot split {k} kernels into {towers} equal towers")
    weights = [w]
    if before is not None:
        b = _weight(before)
        if b.shape != w.shape:
            raise UsageError(f"'before' kernels have shape {tuple(b.shape)}, the trained ones {tuple(w.shape)}")
        weights = [b, w]
    per_kernel = c if used == "channels" else 1  # tiles per kernel
    cols = _columns(k * per_kernel, per_kernel)
    per_tower = k // towers

    # one grid per (tower, weight); all share cols so the panels line up
    grids = [[tile_grid(filter_tiles(x, used)[i * per_tower * per_kernel:(i + 1) * per_tower * per_kernel], cols)
              for x in weights] for i in range(towers)]
    gh, gw = grids[0][0].shape[:2]
    ncols = len(weights)
    # Panels are placed by hand in inches (save(tight=False)): tight_layout would shrink the
    # fixed-aspect images and leave white bands. About 0.45 inch per tile, within a page.
    margin, head_h, sub_h = 0.15, 0.6, 0.3 if (towers > 1 or ncols > 1) else 0.0
    panel_w = min(max(cols * 0.45, 4.0), 15.0 / ncols)
    panel_h = panel_w * gh / gw
    fig_w = ncols * panel_w + (ncols + 1) * margin
    fig_h = head_h + towers * (sub_h + panel_h + margin)
    fig = plt.figure(figsize=(fig_w, fig_h))
    for i in range(towers):
        first, last = i * per_tower + 1, (i + 1) * per_tower
        bottom = fig_h - head_h - (i + 1) * (sub_h + panel_h) - i * margin
        for j in range(ncols):
            left = margin + j * (panel_w + margin)
            ax = fig.add_axes((left / fig_w, bottom / fig_h, panel_w / fig_w, panel_h / fig_h))
            g = grids[i][j]  # H,W,c
            if g.shape[-1] == 3:
                ax.imshow(g, interpolation="nearest", aspect="auto")
            else:
                ax.imshow(g[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
            ax.set_xticks([])
            ax.set_yticks([])
            parts = [labels[j]] if ncols > 1 else []
            if towers > 1:
                parts.append(f"tower {i + 1} (GPU {i + 1}): kernels {first}-{last}")
            if parts:
                ax.set_title(" | ".join(parts), fontsize=9, pad=4)
    shown = {"rgb": "RGB", "sum": "summed over input channels",
             "channels": "grey" if c == 1 else f"one tile per input channel ({c} per kernel, side by side)"}[used]
    head = title or f"conv1 kernels: {k} x {c} x {h} x {wd}"
    fig.suptitle(f"{head}\n{shown}; each tile scaled to its own range", fontsize=10, y=1 - 0.08 / fig_h, va="top")
    return save(fig, path, tight=False)
