"""What every picture shares: matplotlib on the Agg backend, a figure, and a safe PNG write.

The backend is chosen when a figure is first made, not at import, so `import alexnet.viz.*`
does nothing to a user's own matplotlib session until a picture is drawn; in a Jupyter kernel it
is left as the kernel set it (inline). Every plot_* function draws to a PNG when given a path,
and otherwise returns the matplotlib Figure, which a notebook displays inline (`finish`).
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alexnet.atomic import atomic_path
from alexnet.errors import UsageError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 120  # pixels per inch of every PNG written: figsize (inches) x 120 = the PNG's pixel size


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (files only; no display needed), or in a Jupyter
    kernel on the kernel's own backend, so a user's inline plots keep working."""
    import matplotlib

    from alexnet.engine.console import in_notebook

    if not in_notebook():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plain_text(fig: Any) -> None:
    """Show every text of `fig` as written: a class or file name holding `$` would otherwise be
    parsed as matplotlib mathtext, and an unbalanced one stops the drawing with a parse error."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_parse_math(False)


def finish(fig: Any, path: str | os.PathLike | None, *, tight: bool = True) -> Path | Figure:
    """`save` the figure to `path` and return the path; without a path, return the Figure
    itself (closed for pyplot, so a notebook shows it once: as the cell's value)."""
    plain_text(fig)
    if path is not None:
        return save(fig, path, tight=tight)
    if tight:
        fig.tight_layout()
    pyplot().close(fig)
    return fig


def save(fig: Any, path: str | os.PathLike, *, tight: bool = True) -> Path:
    """Write `fig` as PNG at DPI to `path` (parent folders created, written atomically), close it."""
    plt = pyplot()
    path = Path(path)
    if path.suffix.lower() != ".png":
        plt.close(fig)
        raise UsageError(f"pictures are written as PNG; give an --out ending in .png, not {path.name!r}")
    plain_text(fig)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if tight:
            fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        plt.close(fig)
    return path


def to_display(image: Any) -> np.ndarray:
    """An image as imshow wants it: uint8 H,W,3 or H,W (grey) from a C,H,W / H,W,C tensor or array."""
    a = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)  # C,H,W -> H,W,C
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]  # H,W
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a * 255.0 if a.max(initial=0) <= 1.0 else a), 0, 255).astype(np.uint8)
    return a


def short(text: str, width: int = 22) -> str:
    """A class name cut to `width` characters, so labels never run into each other."""
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


# ---- text that fits -------------------------------------------------------------------------
# Titles hold run names, file names and paths of any length; a figure sized for its pictures can
# be narrower than its title, and matplotlib then cuts the text at the figure's edges. So text is
# measured (in points, with the font that draws it) and wrapped or shortened before it is placed.

LINE = 1.2  # matplotlib's default line spacing, in multiples of the font size


@functools.lru_cache(maxsize=1)
def _measure() -> Any:
    from matplotlib.backends.backend_agg import RendererAgg

    return RendererAgg(1, 1, 72)  # at 72 dpi a pixel is a point


def text_width(text: str, fontsize: float, **font: Any) -> float:
    """The width in inches of the widest line of `text` at `fontsize` points (FontProperties `font`)."""
    from matplotlib.font_manager import FontProperties

    renderer = _measure()
    prop = FontProperties(size=fontsize, **font)
    return max(
        renderer.get_text_width_height_descent(line, prop, ismath=False)[0] for line in str(text).split("\n")
    ) / 72


def text_height(lines: int, fontsize: float) -> float:
    """The height in inches of `lines` lines of text at `fontsize` points."""
    return lines * fontsize * LINE / 72


def fit(text: str, width: float, fontsize: float, **font: Any) -> str:
    """`text` shortened in the middle ("val_image_nu…name.png") so it is at most `width` inches wide.

    The middle goes, not the end, so a file name keeps its number and extension.
    """
    text = str(text)
    if text_width(text, fontsize, **font) <= width:
        return text
    lo, hi = 0, len(text) - 1  # characters kept: lo fits (an ellipsis alone), hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if text_width(_cut(text, mid), fontsize, **font) <= width:
            lo = mid
        else:
            hi = mid
    return _cut(text, lo)


def _cut(text: str, keep: int) -> str:
    head = (keep + 1) // 2
    return text[:head] + "…" + text[len(text) - (keep - head):] if keep - head else text[:head] + "…"


def wrap(text: str, width: float, fontsize: float, **font: Any) -> str:
    """`text` broken into lines at most `width` inches wide: at spaces, inside a word too wide for a
    line after one of - _ / . (run names, paths), and a piece that still does not fit is `fit`."""
    out = []
    for paragraph in str(text).split("\n"):
        pieces: list[tuple[str, str]] = []  # (text, what joins it to the piece before: " " or "")
        for word in paragraph.split(" "):
            parts = re.split(r"(?<=[-_/.])", word) if text_width(word, fontsize, **font) > width else [word]
            pieces += [(part, " " if k == 0 else "") for k, part in enumerate(parts) if part or k == 0]
        line = ""
        for k, (piece, sep) in enumerate(pieces):
            joined = line + sep + piece if k else piece
            if k == 0 or text_width(joined, fontsize, **font) <= width:
                line = joined
            else:
                out.append(line)
                line = piece
        out.append(line)
    return "\n".join(fit(line, width, fontsize, **font) for line in out)


def layout_problems(fig: Any, *, gap: float = 2.0, min_fontsize: float = 7.0) -> list[str]:
    """What is wrong with the text of `fig` as it is drawn to PNG; [] when nothing is.

    Every drawn, non-empty text must lie inside the figure, be at least `min_fontsize` points,
    overlap no other text, and keep `gap` pixels from every image, except that a text written
    into an axes (ax.text / annotate: labels on a heatmap's cells) may lie on that axes' images.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.image import AxesImage
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    drawn: list[Any] = []
    real = Text.draw

    def record(self: Any, renderer: Any) -> None:  # the texts actually drawn, whatever made them
        real(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append(self)

    fig.set_dpi(DPI)  # measure in the PNG's own pixels
    canvas = FigureCanvasAgg(fig)  # a closed figure has lost its canvas; this one draws as savefig does
    Text.draw = record
    try:
        canvas.draw()
    finally:
        Text.draw = real
    renderer = canvas.get_renderer()
    page = fig.bbox
    images = []
    for ax in fig.axes:
        for im in ax.get_images():
            if isinstance(im, AxesImage) and im.get_visible():
                box = im.get_window_extent(renderer)
                images.append((ax, Bbox.intersection(box, ax.bbox) or box))  # the part inside its axes
    problems = []
    boxes = [(t, t.get_window_extent(renderer)) for t in drawn]
    for i, (t, box) in enumerate(boxes):
        name = repr(t.get_text()[:40])
        if box.x0 < page.x0 - 0.5 or box.y0 < page.y0 - 0.5 or box.x1 > page.x1 + 0.5 or box.y1 > page.y1 + 0.5:
            problems.append(f"{name} runs off the figure: {box.bounds} outside {page.bounds}")
        if t.get_fontsize() < min_fontsize:
            problems.append(f"{name} is {t.get_fontsize():g} pt, under {min_fontsize:g}")
        for ax, im in images:
            if ax is t.axes and t in ax.texts:
                continue  # written onto its own picture on purpose
            if box.padded(gap).overlaps(im):
                problems.append(f"{name} comes within {gap:g} px of an image at {im.bounds}")
        for other, obox in boxes[i + 1:]:
            if box.overlaps(obox):
                problems.append(f"{name} overlaps {other.get_text()[:40]!r}")
    return problems
