"""A training run's own pictures, drawn into its folder when it ends (or is stopped after an
epoch): curves.png (loss, top-1 and lr per epoch, from metrics.jsonl) and filters.png (the first
layer's trained kernels). `alexnet train` and `alexnet.fit` pass `draw_run_pictures` to the
engine's `fit` as its `on_end`, so the engine itself draws nothing.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from alexnet.engine.console import log
from alexnet.engine.run_folder import read_metrics
from alexnet.errors import UsageError
from alexnet.models import model_options


def draw_run_pictures(run_dir: Path, model: nn.Module, kernels: torch.Tensor, final: dict | None = None) -> None:
    """curves.png and filters.png in `run_dir`; `model` names the net and its towers, `kernels`
    are its first layer's weights (K,C,h,w), `final` the run's closing figure (top1, epoch, view).

    A picture that cannot be drawn is reported and skipped: the trained run matters more.
    """
    from alexnet.viz.curves import plot_curves
    from alexnet.viz.filters import plot_filters

    weight = kernels.detach().float().cpu()  # K,C,h,w
    towers = int(model.arch_kwargs.get("towers", model_options(model.arch).get("towers", 1)))
    k, c, h, w = weight.shape
    jobs = {
        "curves.png": lambda path: plot_curves([(run_dir.name, read_metrics(run_dir))], path,
                                               title=f"{model.arch}: {run_dir.name}", final=final),
        "filters.png": lambda path: plot_filters(
            weight, path, towers=towers if k % towers == 0 else 1,
            title=f"{model.arch}: first-layer kernels ({k} of {h}x{w}x{c}) after training"),
    }
    for name, draw in jobs.items():
        try:
            draw(run_dir / name)
        except UsageError as e:  # a full or read-only disk: atomic.py's one line says which
            log(f"warning: {name} was not drawn: {e}")
        except Exception as e:
            log(f"warning: {name} was not drawn: {type(e).__name__}: {e}")
