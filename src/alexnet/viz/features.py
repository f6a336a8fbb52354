"""Activation maps of one layer for one input picture: the picture on the left, a grid of maps on the right.

A feature-map view in the spirit of the paper's Section 6.1 (what the learned features respond to);
the paper itself shows only the conv1 kernels (Figure 3), so the layout here is this package's own.
The caller runs the forward pass with a hook and passes the layer's C,h,w output.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alexnet.errors import UsageError
from alexnet.viz.figure import finish, pyplot, text_height, to_display, wrap

HEAD = 9  # the heading's font size (points)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _maps(maps: Any) -> np.ndarray:
    a = maps.detach().cpu().numpy() if hasattr(maps, "detach") else np.asarray(maps)
    a = a.astype(np.float64)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]  # 1,C,h,w (a batch of one) -> C,h,w
    if a.ndim != 3 or 0 in a.shape:
        raise UsageError(f"activation maps must be C,h,w, got shape {tuple(a.shape)}")
    return a  # C,h,w


def select_maps(maps: Any, max_maps: int) -> tuple[np.ndarray, np.ndarray]:
    """The `max_maps` channels with the largest mean activation: (indices ascending, maps[indices]).

    Ties keep the lower channel index (stable sort), so the choice is deterministic.
    """
    if max_maps < 1:
        raise UsageError(f"max_maps must be at least 1, got {max_maps}")
    a = _maps(maps)  # C,h,w
    means = a.reshape(a.shape[0], -1).mean(axis=1)  # C
    idx = np.sort(np.argsort(-means, kind="stable")[:max_maps])  # n, ascending so the grid reads in channel order
    return idx, a[idx]  # n ; n,h,w


def plot_features(image: Any, maps: Any, path: str | Path | None = None, *, title: str = "", max_maps: int = 64,
                  layer: str = "") -> Path | Figure:
    """Draw `image` and up to `max_maps` of the layer's maps (C,h,w), each scaled to its own range."""
    plt = pyplot()
    a = _maps(maps)  # C,h,w
    c, h, w = a.shape
    idx, shown = select_maps(a, max_maps)  # n ; n,h,w
    n = len(idx)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    # Everything is placed by hand in inches (save(tight=False)): tight_layout cannot pack a nested
    # grid of fixed-aspect images and leaves wide white bands. Cells of about 0.85 inch, smaller for
    # big grids so the figure stays under ~16 inches wide.
    cell = min(0.85, 11.0 / cols)
    labelled = cell >= 0.45  # below that a channel number would crowd the next map's label
    label_h = 0.18 if labelled else 0.0  # a 7 pt number, its pad, and a gap to the map above
    gap = 0.06
    cell_h = cell * h / w
    margin = 0.2
    pic = to_display(image)
    img_w = 3.0
    img_h = img_w * pic.shape[0] / pic.shape[1]
    grid_w = cols * cell + (cols - 1) * gap
    grid_h = rows * (label_h + cell_h) + (rows - 1) * gap
    fig_w = margin + img_w + 3 * margin + grid_w + margin
    name = layer or "layer"
    what = f"{name}: {c} maps of {h} x {w}"
    if n < c:
        what += f", the {n} with the largest mean shown"
    note = "each map scaled to its own range (viridis)" + ("; numbers are channel indices" if labelled else "")
    heading = wrap(f"{title}\n{what}\n{note}" if title else f"{what}\n{note}", fig_w - 2 * margin, HEAD)
    head_h = text_height(heading.count("\n") + 1, HEAD) + 0.3  # the heading wraps to the figure's width
    fig_h = head_h + max(grid_h, img_h + 0.25) + margin
    fig = plt.figure(figsize=(fig_w, fig_h))

    def axes(left: float, top: float, width: float, height: float) -> Any:  # inches from the top-left
        return fig.add_axes((left / fig_w, 1 - (top + height) / fig_h, width / fig_w, height / fig_h))

    ax = axes(margin, head_h + 0.25, img_w, img_h)
    ax.imshow(pic, cmap="gray" if pic.ndim == 2 else None)
    ax.set_title("input", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])

    x0 = margin + img_w + 3 * margin
    for i in range(n):
        r, col = divmod(i, cols)
        m = shown[i]  # h,w
        lo, hi = float(m.min()), float(m.max())
        sub = axes(x0 + col * (cell + gap), head_h + r * (label_h + cell_h + gap) + label_h, cell, cell_h)
        # own range per map; a constant (dead) map is drawn at the bottom colour, not mid-grey
        sub.imshow(m, cmap="viridis", vmin=lo, vmax=hi if hi > lo else lo + 1.0, interpolation="nearest",
                   aspect="auto")
        sub.set_xticks([])
        sub.set_yticks([])
        if labelled:
            sub.set_title(str(int(idx[i])), fontsize=7, pad=3)

    fig.suptitle(heading, fontsize=HEAD, y=1 - 0.06 / fig_h, va="top")
    return finish(fig, path, tight=False)
