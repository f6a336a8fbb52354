"""Nearest neighbours in feature space, and their picture: the paper's Figure 4 (right).

"Five ILSVRC-2010 test images in the first column. The remaining columns show the six training
images that produce feature vectors in the last hidden layer with the smallest Euclidean
distance from the feature vector for the test image." (section 6.1: similar images are found
from the 4096-d activations, although their pixels can be far apart in L2.)

`nearest` does the search (exact, brute force, in float64); `plot_neighbors` draws the rows.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from alexnet.errors import UsageError
from alexnet.viz.figure import finish, pyplot, short, text_height, to_display, wrap

SAME, OTHER = "#1a7f37", "black"  # neighbour title: same label as the query / not
CHUNK = 1 << 24  # distance-matrix elements computed at a time (128 MiB of float64)
HEAD = 11  # the heading's font size (points)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def nearest(queries: Any, bank: Any, k: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """The k rows of `bank` (N,D) nearest each row of `queries` (Q,D) in Euclidean distance.

    Returns (indices Q,k int64, distances Q,k float64), nearest first; k is capped at N and
    equal distances keep the lower bank index first. A single D-vector query is taken as 1,D.
    """
    q = _matrix(queries, "queries")  # Q,D
    b = _matrix(bank, "bank")  # N,D
    if q.ndim == 1:
        q = q[None]
    if b.ndim != 2 or q.ndim != 2:
        raise UsageError(f"features must be 2-D (rows of vectors); got queries {tuple(q.shape)}, bank {tuple(b.shape)}")
    if q.shape[1] != b.shape[1]:
        raise UsageError(f"queries have {q.shape[1]} features but the bank has {b.shape[1]}")
    if b.shape[0] == 0:
        raise UsageError("the bank of feature vectors is empty")
    if k < 1:
        raise UsageError(f"k must be at least 1, got {k}")
    k = min(k, b.shape[0])
    nq, nb = q.shape[0], b.shape[0]
    indices = np.empty((nq, k), dtype=np.int64)
    distances = np.empty((nq, k), dtype=np.float64)
    # Two passes. First |q-b|^2 = |q|^2 + |b|^2 - 2 q.b for every pair: one BLAS matrix product
    # instead of Q*N*D differences, but its cancellation error (about D * 1e-16 * the squared
    # norms) turns a zero distance into ~1e-7 and can reorder near-duplicates. So it only picks
    # candidates: every row within a safe margin of the k-th smallest. Then the candidates'
    # distances are computed exactly from differences and sorted stably (ties: lower index first).
    b_sq = np.einsum("nd,nd->n", b, b)  # N
    step = max(1, CHUNK // nb)
    for start in range(0, nq, step):
        qc = q[start:start + step]  # C,D
        q_sq = np.einsum("cd,cd->c", qc, qc)  # C
        d2 = q_sq[:, None] + b_sq[None] - 2 * (qc @ b.T)  # C,N, approximate
        kth = np.partition(d2, k - 1, axis=1)[:, k - 1]  # C
        margin = 1e-9 * (q_sq + b_sq.max()) + 1e-300  # far above the error, far below real gaps
        for r in range(len(qc)):
            cand = np.flatnonzero(d2[r] <= kth[r] + margin[r])  # ascending bank index, >= k of them
            exact = np.sqrt(((b[cand] - qc[r]) ** 2).sum(axis=1))
            order = np.argsort(exact, kind="stable")[:k]
            indices[start + r] = cand[order]
            distances[start + r] = exact[order]
    return indices, distances


def plot_neighbors(
    query_images: Sequence[Any], neighbor_images: Sequence[Sequence[Any]], path: str | os.PathLike | None = None, *,
    title: str = "", query_labels: Sequence[str | None] | None = None,
    neighbor_labels: Sequence[Sequence[str | None]] | None = None,
    distances: Any = None,
) -> Path | Figure:
    """One row per query: the query image, a dividing line, then its neighbours nearest first.

    Images may be uint8 H,W,3 / H,W / C,H,W of any size; `neighbor_images[i]` holds query i's
    neighbours (rows may differ in length). Labels and distances (Q,k), when given, title the
    pictures; a neighbour whose label is the query's is titled in green.
    """
    nq = len(query_images)
    if nq == 0:
        raise UsageError("nothing to draw: give at least one query image")
    if len(neighbor_images) != nq:
        raise UsageError(f"{nq} query images but {len(neighbor_images)} rows of neighbours; give one row per query")
    if query_labels is not None and len(query_labels) != nq:
        raise UsageError(f"{nq} query images but {len(query_labels)} query labels")
    if neighbor_labels is not None and len(neighbor_labels) != nq:
        raise UsageError(f"{nq} query images but {len(neighbor_labels)} rows of neighbour labels")
    dist = None if distances is None else [np.asarray(_numpy(row), dtype=np.float64).reshape(-1) for row in distances]
    if dist is not None and len(dist) != nq:
        raise UsageError(f"{nq} query images but {len(dist)} rows of distances")
    for i, row in enumerate(neighbor_images):
        for name, other in (("labels", neighbor_labels), ("distances", dist)):
            if other is not None and len(other[i]) != len(row):
                raise UsageError(f"query {i + 1} has {len(row)} neighbours but {len(other[i])} neighbour {name}")
    k = max(len(row) for row in neighbor_images)
    if k == 0:
        raise UsageError("every query has no neighbours: nothing to compare with")
    plt = pyplot()
    # the layout in inches: square cells, room above each row for a two-line title, a narrow
    # empty column between the query and its neighbours that carries the dividing line
    cell, divider, gap, row_gap, edge = 1.6, 0.3, 0.1, 0.5, 0.1
    width = cell * (k + 1) + divider + gap * (k + 1) + 2 * edge
    heading = wrap(title or f"{nq} quer{'ies' if nq != 1 else 'y'} and {k} nearest neighbour{'s' if k != 1 else ''} "
                   "in feature space", width - 2 * edge, HEAD)  # a narrow figure (small k) wraps its heading
    top = text_height(heading.count("\n") + 1, HEAD) + 0.2 + 0.55  # the heading, then the first row's two-line titles
    height = cell * nq + row_gap * (nq - 1) + top + edge
    fig = plt.figure(figsize=(width, height))
    grid = fig.add_gridspec(nq, k + 2, width_ratios=[cell, divider] + [cell] * k,
                            wspace=gap / ((cell * (k + 1) + divider) / (k + 2)), hspace=row_gap / cell,
                            left=edge / width, right=1 - edge / width, bottom=edge / height, top=1 - top / height)
    for i in range(nq):
        qlabel = None if query_labels is None else query_labels[i]
        ax = fig.add_subplot(grid[i, 0])
        _show(ax, query_images[i], "query" + (f"\n{_name(qlabel)}" if qlabel is not None else ""), "black", bold=True)
        for j, img in enumerate(neighbor_images[i]):
            label = None if neighbor_labels is None else neighbor_labels[i][j]
            lines = [] if label is None else [_name(label)]
            if dist is not None:
                lines.append(f"d = {dist[i][j]:.3g}")
            same = label is not None and qlabel is not None and str(label) == str(qlabel)
            _show(fig.add_subplot(grid[i, j + 2]), img, "\n".join(lines), SAME if same else OTHER)
    line = fig.add_subplot(grid[:, 1])
    line.axis("off")
    line.axvline(0.5, color="0.35", linewidth=2)
    line.set_xlim(0, 1)
    fig.suptitle(heading, fontsize=HEAD, y=1 - 0.12 / height, va="top")
    # the grid's margins are set above; tight_layout would squeeze the narrow divider column
    return finish(fig, path, tight=False)


def _show(ax: Any, image: Any, text: str, colour: str, bold: bool = False) -> None:
    ax.imshow(to_display(image), cmap="gray", vmin=0, vmax=255)  # grey: no contrast stretch
    ax.axis("off")
    if text:
        ax.set_title(text, fontsize=8, color=colour, fontweight="bold" if bold else "normal")


def _name(text: Any, width: int = 20) -> str:
    """A label cut to fit a cell: ImageNet's first synonym, underscores as spaces, `width` characters."""
    return short(str(text).split(",")[0].strip().replace("_", " "), width)


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _matrix(x: Any, what: str) -> np.ndarray:
    """Feature vectors as a float64 numpy array (torch or numpy in)."""
    try:
        return np.asarray(_numpy(x), dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise UsageError(f"{what} must be numeric feature vectors: {e}") from None
