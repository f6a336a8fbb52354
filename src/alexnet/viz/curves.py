"""Training curves from one or more runs' metrics.jsonl, overlaid: loss, top-1 accuracy, learning rate.

The paper reports only final error rates; this is the per-epoch view of a run (train vs validation,
and the learning rate, which the paper divided by 10 whenever validation error stopped improving,
Section 5). Records are the rows `alexnet.engine.run_folder.read_metrics` returns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alexnet.config import VIEW_NAMES
from alexnet.errors import UsageError
from alexnet.viz.figure import finish, pyplot, short, wrap

MARKERS_UP_TO = 30  # epochs per run drawn with point markers; more would clutter the lines

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _series(records: Sequence[dict[str, Any]], key: str, scale: float = 1.0) -> tuple[list[float], list[float]]:
    """(epochs, values) of `key`, skipping records without it or with a non-finite value (no val set)."""
    xs, ys = [], []
    for r in records:
        x, y = r.get("epoch"), r.get(key)
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and math.isfinite(x) and math.isfinite(y):
            xs.append(float(x))
            ys.append(float(y) * scale)
    return xs, ys


def plot_curves(
    runs: Sequence[tuple[str, Sequence[dict[str, Any]]]], path: str | Path | None = None, *, title: str = "",
    final: dict[str, Any] | None = None,
) -> Path | Figure:
    """Draw loss, top-1 accuracy (%) and learning rate per epoch for every (label, records) run.

    Validation is each epoch's centre view, as training scores it; `final` ({"top1", "epoch",
    "view"}) is a single run's closing figure, measured with its own test-time views and drawn as
    a star, so the headline number is on the picture with the views that gave it."""
    if not runs:
        raise UsageError("no runs to plot: give at least one run folder")
    for label, records in runs:
        if not records:
            raise UsageError(f"{label}: no epochs recorded (metrics.jsonl is empty)")
    plt = pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    # constrained layout keeps the outside legend clear of the panels; tight_layout ignores figure legends
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), layout="constrained")
    ax_loss, ax_acc, ax_lr = axes
    colours = plt.get_cmap("tab10" if len(runs) <= 10 else "tab20")
    lrs: list[float] = []
    for i, (_label, records) in enumerate(runs):
        colour = colours(i % colours.N)
        marker = "o" if len(records) <= MARKERS_UP_TO else None
        style = {"color": colour, "marker": marker, "markersize": 4, "linewidth": 1.6}
        for ax, key, scale in ((ax_loss, "loss", 1.0), (ax_acc, "top1", 100.0)):  # accuracies are fractions
            ax.plot(*_series(records, f"train_{key}", scale), linestyle="-", **style)
            ax.plot(*_series(records, f"val_{key}", scale), linestyle="--", **style)
        xs, ys = _series(records, "lr")
        lrs += ys
        ax_lr.plot(xs, ys, linestyle="-", **style)

    ax_loss.set(title="loss", xlabel="epoch", ylabel="cross-entropy loss")
    ax_acc.set(title="top-1 accuracy", xlabel="epoch", ylabel="top-1 accuracy (%)")
    ax_lr.set(title="learning rate (at epoch start)", xlabel="epoch", ylabel="learning rate")
    # a log axis shows the paper's divide-by-10 steps as equal drops
    if lrs and min(lrs) > 0 and max(lrs) / min(lrs) > 10:
        ax_lr.set_yscale("log")
    epochs = [x for _, records in runs for x in _series(records, "epoch")[0]]
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if epochs and max(epochs) - min(epochs) < 1:
            # one epoch: matplotlib would zoom to +-5% and tick 0.945 .. 1.050, fractions of an epoch
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
            ax.set_xticks(sorted(set(epochs)))
        ax.grid(True, alpha=0.3)

    final_handles = []
    if final is not None and math.isfinite(float(final.get("top1", math.nan))):
        label = f"final: {final['top1']:.2%} ({VIEW_NAMES.get(final.get('view', ''), final.get('view', ''))})"
        ax_acc.plot([final["epoch"]], [100 * final["top1"]], marker="*", markersize=13, linestyle="none",
                    color=colours(0), markeredgecolor="black")
        final_handles = [Line2D([], [], marker="*", markersize=11, linestyle="none", color="black", label=label)]
    run_handles = [Line2D([], [], color=colours(i % colours.N), linewidth=2.5, label=short(label, 40))
                   for i, (label, _) in enumerate(runs)]
    style_handles = [Line2D([], [], color="black", linestyle="-", label="train"),
                     Line2D([], [], color="black", linestyle="--", label="validation (centre view)")]
    handles = run_handles + style_handles + final_handles
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), fontsize=9,
               frameon=False, title="colour = run, solid = train, dashed = validation", title_fontsize=9)
    names = ", ".join(short(label, 30) for label, _ in runs[:3]) + (
        f" and {len(runs) - 3} more" if len(runs) > 3 else ""
    )
    fig.suptitle(wrap(title or f"training curves: {names}", 14.5, 11), fontsize=11)
    return finish(fig, path, tight=False)
