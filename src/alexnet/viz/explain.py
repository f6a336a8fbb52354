"""An attribution map laid over the photo it explains: the net's view on the left, the view with
the map over it on the right, the class, its probability and what the map shows in the title.

`alexnet.inference.explain` computes the map (Grad-CAM, occlusion or saliency, by captum); this
module only draws it. The colours follow the Grad-CAM paper's figures (jet: red is the most).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alexnet.errors import UsageError
from alexnet.viz.figure import finish, pyplot, text_height, to_display, wrap

HEAD = 10  # the heading's font size (points)
SIDE = 3.6  # each panel's side (inches)
EDGE = 0.2

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def scaled(heat: Any) -> np.ndarray:
    """The map (H,W) as 0..1: negative parts (occluding there raised the probability) as 0, the
    largest value as 1; a map that is zero everywhere stays zero."""
    h = np.asarray(heat.detach().cpu().numpy() if hasattr(heat, "detach") else heat, dtype=np.float64)
    if h.ndim != 2 or 0 in h.shape:
        raise UsageError(f"an attribution map must be H,W; got shape {h.shape}")
    if not np.isfinite(h).all():
        raise UsageError("the attribution map holds NaN or infinity: the net's outputs are not finite")
    h = np.clip(h, 0.0, None)
    top = float(h.max())
    return h / top if top > 0 else h  # H,W


def overlay(view: Any, heat: Any, alpha: float = 0.5) -> np.ndarray:
    """uint8 H,W,3: the view blended with the map in jet colours (alpha of map, 1 - alpha of photo)."""
    from matplotlib import colormaps

    pic = to_display(view)  # H,W,3 or H,W
    if pic.ndim == 2:
        pic = np.repeat(pic[..., None], 3, axis=2)
    h = scaled(heat)
    if h.shape != pic.shape[:2]:
        raise UsageError(f"the map is {h.shape[0]}x{h.shape[1]} but the view {pic.shape[0]}x{pic.shape[1]}")
    colours = colormaps["jet"](h)[..., :3] * 255.0  # H,W,3
    return np.clip(np.rint((1 - alpha) * pic + alpha * colours), 0, 255).astype(np.uint8)


def plot_explanation(view: Any, heat: Any, path: str | Path | None = None, *, title: str = "",
                     what: str = "") -> Path | Figure:
    """Draw the view and the view with `heat` over it; `what` says what the map shows."""
    plt = pyplot()
    blended = overlay(view, heat)  # H,W,3
    pic = to_display(view)
    width = EDGE + 2 * SIDE + 0.3 + 0.18 + 0.6 + EDGE
    heading = wrap("\n".join(t for t in (title, what) if t), width - 2 * EDGE, HEAD)
    head_h = text_height(heading.count("\n") + 1, HEAD) + 0.3
    above = 0.3  # a 9 pt panel title
    height = head_h + above + SIDE + EDGE
    fig = plt.figure(figsize=(width, height))

    def axes(left: float, top: float, w: float, h: float) -> Any:  # inches from the top-left corner
        return fig.add_axes((left / width, 1 - (top + h) / height, w / width, h / height))

    y = head_h + above
    for i, (image, name) in enumerate(((pic, "the net's view"), (blended, "the map over it"))):
        ax = axes(EDGE + i * (SIDE + 0.1), y, SIDE, SIDE)
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    cax = axes(EDGE + 2 * SIDE + 0.3, y, 0.18, SIDE)
    bar = fig.colorbar(plt.cm.ScalarMappable(cmap="jet", norm=plt.Normalize(0, 1)), cax=cax)
    bar.set_label("share of the largest value", fontsize=8)
    bar.ax.tick_params(labelsize=8)
    fig.suptitle(heading, fontsize=HEAD, y=1 - 0.1 / height, va="top")
    return finish(fig, path, tight=False)
