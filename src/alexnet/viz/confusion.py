"""A labelled confusion matrix as PNG: rows are true classes, columns predicted, cells row-normalised."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from alexnet.viz.figure import finish, pyplot, wrap

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_confusion(
    confusion: np.ndarray, classes: Sequence[str], path: Path | None = None, title: str = ""
) -> Path | Figure:
    """Draw `confusion` (K x K counts) to `path`; class names are written when K <= 30."""
    plt = pyplot()
    counts = np.asarray(confusion, dtype=np.float64)
    k = counts.shape[0]
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = min(4 + 0.45 * k, 14) if k <= 30 else 10
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    if k <= 30:
        ax.set_xticks(range(k), [str(c) for c in classes], rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(k), [str(c) for c in classes], fontsize=8)
        if k <= 15:
            for i in range(k):
                for j in range(k):
                    if counts[i, j]:
                        ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=7,
                                color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    # a data spec can be a long path: the title spans the whole figure (not just the matrix, where
    # it would run over the colourbar's ticks) and wraps to its width rather than lose its ends
    fig.suptitle(wrap(title or "confusion matrix", side + 1.2, 12), fontsize=12)
    return finish(fig, path)
