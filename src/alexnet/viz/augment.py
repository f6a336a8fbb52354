"""One training image and some of the random views the network is trained on (paper, section 4.1).

Section 4.1 enlarges the training set with label-preserving transformations: random 224x224
patches of the 256x256 images and their horizontal reflections ("the first form of data
augmentation"), and PCA colour noise, "altering the intensities of the RGB channels" along the
principal components of ImageNet's pixel colours ("the second form"). `augment_examples` runs
the project's own batched augmentation (alexnet.data.transforms.TrainAugment, or any callable
like it) so the picture shows exactly what training sees; `plot_augmentations` draws it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from alexnet.errors import UsageError
from alexnet.viz.figure import finish, pyplot, to_display, wrap

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def augment_examples(image: Any, augment: Callable[[torch.Tensor], torch.Tensor], n: int,
                     mean: Sequence[float], std: Sequence[float], seed: int = 0) -> list[np.ndarray]:
    """`n` random training views of `image` (uint8 C,R,R, as Prepare returns) as float H,W,C in [0,1].

    `augment` maps uint8 N,C,R,R to normalised float N,C,S,S (TrainAugment). It runs once on a
    batch of `n` copies under torch's global RNG seeded with `seed`, inside fork_rng so the
    caller's random state is left as it was; the views are un-normalised (x * std + mean) and
    clipped to [0,1] (PCA lighting can push pixels a little outside it).
    """
    if n < 1:
        raise UsageError(f"ask for at least 1 augmented view, got n={n}")
    x = image.detach().cpu() if isinstance(image, torch.Tensor) else torch.as_tensor(np.asarray(image))
    if x.ndim == 2:
        x = x[None]  # H,W -> 1,H,W
    if x.ndim != 3 or x.dtype != torch.uint8:
        raise UsageError(f"the image must be uint8 C,H,W (as Prepare returns); got {x.dtype} {tuple(x.shape)}")
    batch = x[None].expand(n, *x.shape).contiguous()  # N,C,R,R: n copies, each augmented independently
    with torch.random.fork_rng(devices=[]):  # CPU RNG only: the augmentation here runs on the CPU
        torch.manual_seed(seed)
        with torch.no_grad():
            out = augment(batch)  # N,C,S,S normalised
    out = out.detach().cpu().to(torch.float64)
    c = out.shape[1]
    m = torch.tensor(_fit(mean, c), dtype=torch.float64)[None, :, None, None]  # 1,C,1,1
    s = torch.tensor(_fit(std, c), dtype=torch.float64)[None, :, None, None]  # 1,C,1,1
    views = (out * s + m).clamp(0, 1).permute(0, 2, 3, 1).numpy()  # N,S,S,C in [0,1]
    return [v for v in views]


def plot_augmentations(original: Any, examples: Sequence[Any], path: str | os.PathLike | None = None, *,
                       title: str = "", caption: str = "") -> Path | Figure:
    """The original image on the left, a grid of its augmented views on the right, `caption` below.

    `original` is uint8 C,H,W / H,W,C / H,W (tensor or array); `examples` as augment_examples
    returns them (float H,W,C in [0,1]) or any image to_display accepts.
    """
    n = len(examples)
    if n == 0:
        raise UsageError("no augmented views to draw: give at least one example")
    orig = to_display(original)  # H,W(,3) uint8
    views = [to_display(v) for v in examples]
    rows = 1 if n <= 4 else math.ceil(math.sqrt(n / 2))  # about twice as wide as tall: 8 -> 2x4, 18 -> 3x6
    cols = math.ceil(n / rows)
    h, w = views[0].shape[:2]
    same = all(v.shape[:2] == (h, w) for v in views)
    heading = f"{n} random training view{'s' if n != 1 else ''}" + (f", {h} x {w}" if same else "")
    heading = f"{title}\n{heading}" if title else heading
    # the layout in inches, placed by hand (tight_layout cannot handle the two grids): the
    # original in a square box at least as tall as the grid of views, the caption wrapped below
    cell, gap, row_gap, edge, between = 1.6, 0.1, 0.35, 0.15, 0.45
    grid_h = rows * cell + (rows - 1) * row_gap
    grid_w = cols * cell + (cols - 1) * gap
    box = max(grid_h, 2.6)
    width = edge + box + between + grid_w + edge
    lines = wrap(caption, width - 2 * edge, 9).split("\n") if caption else []  # measured, not counted in characters
    heading = wrap(heading, width - 2 * edge, 11)
    top = 0.3 + 0.25 * (heading.count("\n") + 1)  # the heading, then the pictures' own titles
    bottom = 0.15 + (0.2 * len(lines) + 0.1 if lines else 0)
    height = top + box + bottom
    plt = pyplot()
    fig = plt.figure(figsize=(width, height))
    left = fig.add_axes((edge / width, bottom / height, box / width, box / height))
    left.imshow(orig, cmap="gray", vmin=0, vmax=255)  # grey: no contrast stretch
    left.axis("off")
    left.set_title(f"original, {orig.shape[0]} x {orig.shape[1]}", fontsize=10)
    y0 = bottom + (box - grid_h) / 2  # the views centred beside the original
    right = fig.add_gridspec(rows, cols, left=(edge + box + between) / width, right=1 - edge / width,
                             bottom=y0 / height, top=(y0 + grid_h) / height,
                             wspace=gap / cell, hspace=row_gap / cell)
    for i in range(rows * cols):
        ax = fig.add_subplot(right[divmod(i, cols)])
        ax.axis("off")
        if i < n:
            ax.imshow(views[i], cmap="gray", vmin=0, vmax=255)  # grey: no contrast stretch
            ax.set_title(f"view {i + 1}", fontsize=8)
    fig.suptitle(heading, fontsize=11, y=1 - 0.1 / height, va="top")
    if lines:
        fig.text(0.5, bottom / 2 / height, "\n".join(lines), ha="center", va="center", fontsize=9)
    return finish(fig, path, tight=False)


def _fit(stats: Sequence[float], channels: int) -> list[float]:
    """Mean/std adapted to the channel count the way the normalisation does (one value for all,
    or the RGB average for a grey image)."""
    stats = [float(v) for v in stats]
    if len(stats) == channels:
        return stats
    if len(stats) == 1:
        return stats * channels
    return [sum(stats) / len(stats)] * channels
