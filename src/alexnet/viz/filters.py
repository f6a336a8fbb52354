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
from typing import TYPE_CHECKING, Any

import numpy as np

from alexnet.errors import UsageError
from alexnet.viz.figure import finish, pyplot, text_height, wrap

MODES = ("auto", "rgb", "sum", "channels")
MAX_CHANNEL_TILES = 256  # "auto" draws every (kernel, channel) slice only up to this many tiles
HEAD, SUB = 10, 9  # font sizes (points) of the heading and of the panel titles
SATURATE_AT = 0.98  # the change panel's scale keeps this share of the values inside black..white

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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


def _views(w: np.ndarray, mode: str) -> np.ndarray:
    """Kernels K,C,h,w as unscaled tiles: rgb -> K,h,w,3; sum -> K,h,w,1; channels -> (K*C),h,w,1."""
    k, c, h, wd = w.shape
    if mode == "rgb":
        return w.transpose(0, 2, 3, 1)  # K,h,w,3
    if mode == "sum":
        return w.sum(axis=1)[..., None]  # K,h,w,1
    # channels: slice (k, c) lands at k*C + c, so one kernel's channels stay next to each other
    return w.reshape(k * c, h, wd, 1)  # K*C,h,w,1


def filter_tiles(weight: Any, mode: str = "auto") -> np.ndarray:
    """Kernels K,C,h,w as tiles in [0, 1]: rgb -> K,h,w,3; sum -> K,h,w,1; channels -> (K*C),h,w,1.

    Every tile is scaled on its own: (t - t.min()) / (t.max() - t.min()), 0.5 where t is constant.
    "auto" is rgb for C == 3, else channels when K*C <= 256 tiles, else sum.
    """
    w = _weight(weight)  # K,C,h,w
    return _scale(_views(w, _resolve(mode, w.shape[0], w.shape[1])), (1, 2, 3))


def relative_change(before: Any, after: Any) -> float:
    """||after - before|| / ||before||, Frobenius norms over the whole tensor: how far training moved the kernels."""
    b, a = _array(before), _array(after)
    if a.shape != b.shape:
        raise UsageError(f"'before' kernels have shape {tuple(b.shape)}, the trained ones {tuple(a.shape)}")
    norm = float(np.linalg.norm(b.ravel()))
    if norm == 0.0:
        raise UsageError("the initial kernels are all zero: their relative change is undefined")
    return float(np.linalg.norm((a - b).ravel())) / norm


def _nice_below(x: float) -> float:
    """The largest of ..., 0.5, 1, 2, 5, 10, 20, ... that is <= x (x > 0)."""
    decade = 10.0 ** math.floor(math.log10(x))
    return max(m * decade for m in (1, 2, 5) if m * decade <= x * (1 + 1e-12))


def change_tiles(before: Any, after: Any, mode: str = "auto") -> tuple[np.ndarray, float, float]:
    """(tiles in [0, 1], amplification A, share saturated) of after - before, laid out as filter_tiles.

    Tile = clip(0.5 + A * (after - before) / span, 0, 1), span = the initial tile's max - min (the
    range its own picture stretches to [0, 1]): mid-grey is "unchanged", and at A = 1 a change as
    large as the initial kernel's whole range reaches black or white. A is the largest of 1, 2, 5
    x 10^n that keeps 98% of the values unclipped (the largest change alone would set the scale for
    one outlier and leave the rest flat grey); the share that does saturate is returned to be stated.
    """
    b, a = _weight(before), _weight(after)
    if a.shape != b.shape:
        raise UsageError(f"'before' kernels have shape {tuple(b.shape)}, the trained ones {tuple(a.shape)}")
    used = _resolve(mode, b.shape[0], b.shape[1])
    vb, va = _views(b, used), _views(a, used)  # T,h,w,c
    span = vb.max(axis=(1, 2, 3), keepdims=True) - vb.min(axis=(1, 2, 3), keepdims=True)  # T,1,1,1
    rel = (va - vb) / np.where(span > 0, span, 1.0)  # a constant initial tile: its change in raw units
    scale = float(np.quantile(np.abs(rel), SATURATE_AT))
    if scale == 0.0:
        scale = float(np.abs(rel).max())  # almost nothing moved: let the few that did show
    amp = _nice_below(0.5 / scale) if scale > 0 else 1.0
    shown = 0.5 + amp * rel
    saturated = float(np.mean((shown < 0.0) | (shown > 1.0)))
    return np.clip(shown, 0.0, 1.0), amp, saturated


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


def _percent(r: float) -> str:
    return f"{100 * r:.3g}%"


def plot_filters(weight: Any, path: str | Path | None = None, *, title: str = "", mode: str = "auto", towers: int = 1,
                 before: Any = None, labels: tuple[str, str] = ("initial", "trained")) -> Path | Figure:
    """Draw conv kernels K,C,h,w as a tile grid (Figure 3) to `path`.

    towers > 1 splits the kernels into that many equal consecutive blocks, one panel each, stacked
    vertically as the paper's two GPUs. `before` (same shape, e.g. the initial weights) is drawn to
    the left of `weight`, the columns titled with `labels`, and a third column shows the change
    (change_tiles, amplified by the factor its title states); the heading and each change panel
    state the relative change ||W - W0|| / ||W0|| (relative_change) of the layer and of the tower.
    """
    plt = pyplot()
    w = _weight(weight)  # K,C,h,w
    k, c, h, wd = w.shape
    used = _resolve(mode, k, c)
    if towers < 1 or k % towers:
        raise UsageError(f"cannot split {k} kernels into {towers} equal towers")
    per_kernel = c if used == "channels" else 1  # tiles per kernel
    cols = _columns(k * per_kernel, per_kernel)
    per_tower = k // towers
    n = per_tower * per_kernel  # tiles per tower

    # panels: the tiles of each column (split into towers below); heads: each column's title;
    # notes[j][i]: a second title line for column j in tower i
    if before is None:
        panels, heads, notes, change = [filter_tiles(w, used)], [""], [[""] * towers], None
    else:
        b = _weight(before)
        if b.shape != w.shape:
            raise UsageError(f"'before' kernels have shape {tuple(b.shape)}, the trained ones {tuple(w.shape)}")
        delta, amp, saturated = change_tiles(b, w, used)
        change = relative_change(b, w)
        panels = [filter_tiles(b, used), filter_tiles(w, used), delta]
        beyond = f" ({saturated:.1%} of values off the scale)" if saturated >= 0.0005 else ""
        heads = [labels[0], labels[1], f"{labels[1]} − {labels[0]}, ×{amp:g}{beyond}"]
        # the change panel carries its own tower's number: the towers can move by different amounts
        notes = [[""] * towers, [""] * towers, [
            (f"tower {i + 1}: " if towers > 1 else "") + "‖ΔW‖ / ‖W₀‖ = "
            + _percent(relative_change(b[i * per_tower:(i + 1) * per_tower], w[i * per_tower:(i + 1) * per_tower]))
            + "; mid-grey = unchanged" for i in range(towers)]]
    ncols = len(panels)
    # all share cols: they line up
    grids = [[tile_grid(t[i * n:(i + 1) * n], cols) for t in panels] for i in range(towers)]
    gh, gw = grids[0][0].shape[:2]

    # Panels are placed by hand in inches (save(tight=False)): tight_layout would shrink the
    # fixed-aspect images and leave white bands. About 0.45 inch per tile, within a page; every
    # title is wrapped to the width it has, and the space above each panel follows its lines.
    margin = 0.15
    panel_w = min(max(cols * 0.45, 4.0), 15.0 / ncols)
    panel_h = panel_w * gh / gw
    fig_w = ncols * panel_w + (ncols + 1) * margin
    subs = []  # subs[i][j]: the title over tower i's panel j
    for i in range(towers):
        where = f"tower {i + 1} (GPU {i + 1}): kernels {i * per_tower + 1}-{(i + 1) * per_tower}" if towers > 1 else ""
        row = []
        for j in range(ncols):
            first = " | ".join(part for part in (heads[j], "" if notes[j][i] else where) if part)
            row.append(wrap("\n".join(line for line in (first, notes[j][i]) if line), panel_w, SUB))
        subs.append(row)
    sub_lines = max((text.count("\n") + 1 if text else 0) for row in subs for text in row)
    sub_h = text_height(sub_lines, SUB) + 0.15 if sub_lines else 0.0
    shown = {"rgb": "RGB", "sum": "summed over input channels",
             "channels": "grey" if c == 1 else f"one tile per input channel ({c} per kernel, side by side)"}[used]
    lines = [title or f"conv1 kernels: {k} x {c} x {h} x {wd}", f"{shown}; each tile scaled to its own range"]
    if change is not None:
        lines.append(f"training moved the kernels by ‖W − W₀‖ / ‖W₀‖ = "
                     f"{_percent(change)} (Frobenius norms, whole layer)")
    heading = wrap("\n".join(lines), fig_w - 2 * margin, HEAD)
    head_h = text_height(heading.count("\n") + 1, HEAD) + 0.2
    fig_h = head_h + towers * (sub_h + panel_h + margin)
    fig = plt.figure(figsize=(fig_w, fig_h))
    for i in range(towers):
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
            if subs[i][j]:
                ax.set_title(subs[i][j], fontsize=SUB, pad=6)
    fig.suptitle(heading, fontsize=HEAD, y=1 - 0.08 / fig_h, va="top")
    return finish(fig, path, tight=False)
