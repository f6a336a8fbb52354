"""What every picture shares: matplotlib on the Agg backend, a figure, and a safe PNG write.

The backend is chosen when a figure is first made, not at import, so `import alexnet.viz.*`
does nothing to a user's own matplotlib session until a picture is drawn.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from alexnet.atomic import atomic_path
from alexnet.errors import UsageError

DPI = 120  # pixels per inch of every PNG written: figsize (inches) x 120 = the PNG's pixel size


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (files only; no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: str | os.PathLike, *, tight: bool = True) -> Path:
    """Write `fig` as PNG at DPI to `path` (parent folders created, written atomically), close it."""
    plt = pyplot()
    path = Path(path)
    if path.suffix.lower() != ".png":
        plt.close(fig)
        raise UsageError(f"pictures are written as PNG; give an --out ending in .png, not {path.name!r}")
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
