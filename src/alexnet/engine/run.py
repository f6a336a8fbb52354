"""A run's life in its folder: opened (named, locked: engine/run_folder.py), announced, each
epoch recorded and checkpointed, and finished (pictures, bad_images.txt, the summary).

The run folder holds config.yaml, metrics.jsonl, tb/, last.pt, best.pt, curves.png,
filters.png and bad_images.txt; eval, predict, viz and export read it (docs/reliability.md says
what survives a crash). Under torchrun rank 0 alone writes, and every process learns the folder.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from alexnet.atomic import atomic_path
from alexnet.config import TrainConfig, resolved_val_images
from alexnet.data import DataSource
from alexnet.engine import distributed
from alexnet.engine.checkpoint import save_checkpoint
from alexnet.engine.console import log
from alexnet.engine.distributed import World
from alexnet.engine.metrics import MetricsLog, read_metrics
from alexnet.engine.run_folder import claimed, new_run_folder, resumed_run_folder
from alexnet.errors import UsageError


def open_run(cfg: TrainConfig, resume: dict[str, Any] | None, world: World, hold: contextlib.ExitStack) -> Path:
    """The run folder, held for writing by rank 0 until `hold` closes (engine/run_folder.py).

    A new run's folder is `--out` or runs/<model>-<data>-<YYYYmmdd-HHMMSS>; a resumed run
    continues in its checkpoint's folder, or in a new `--out` folder when one other than the
    checkpoint's saved `out` is given. Every process learns the folder, or rank 0's one-line
    refusal, which all of them then raise.
    """
    def choose() -> Path:
        if resume is not None:
            own = Path(resume["path"]).parent
            # the out a config saved: the folder may since have been moved or copied
            saved = str((resume.get("config") or {}).get("out") or "")
            if not cfg.out or cfg.out == saved or Path(cfg.out).resolve() == own.resolve():
                return hold.enter_context(claimed(resumed_run_folder(resume["path"], resume.get("config")), new=False))
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        name = f"{cfg.model}-{cfg.data.split(':', 1)[0]}-{stamp}"
        return hold.enter_context(claimed(new_run_folder(cfg.out, name), new=True))

    if world.size == 1:
        return choose()
    if world.main:
        try:
            shared: Any = str(choose())
        except UsageError as e:
            distributed.share(("refused", str(e)), world)
            raise
    shared = distributed.share(shared if world.main else None, world)
    if isinstance(shared, tuple):
        raise UsageError(shared[1])
    return Path(shared)


def announce(cfg: TrainConfig, source: DataSource, where: str, run_dir: Path) -> None:
    """The run's first lines: model, data sizes, device and run folder; notes on what bounds the run."""
    n_train, n_val = len(source.split("train")), len(source.split("val"))
    log(f"training {cfg.model} on {cfg.data} ({n_train} train / {n_val} val images, "
        f"{len(source.classes)} classes) {where}; run folder {run_dir}")
    if cfg.max_steps:
        log(f"a smoke run: it stops after {cfg.max_steps} step{plural(cfg.max_steps)} (--max-steps), "
            f"{cfg.max_steps * cfg.batch_size / max(n_train, 1):.2g} of an epoch of {n_train} images")
    if cfg.val_images < 0 and resolved_val_images(cfg) and n_val:
        log(f"validating on a fixed class-balanced {n_val} val images, as a --max-steps run does; "
            "--val-images 0 takes them all")
    if cfg.batch_size > n_train:  # valid (each epoch is one smaller batch), but rarely what was meant
        log(f"note: batch_size {cfg.batch_size} is larger than the {n_train} training images: "
            f"each epoch is one step of {n_train}")
    if n_val == 0:
        log(f"note: {cfg.data} has no validation images, so the epochs are not scored and no best.pt is kept; "
            f"{why_no_val(cfg, source)}")


def why_no_val(cfg: TrainConfig, source: DataSource) -> str:
    """What to do about an empty validation split: a folder whose classes are too small to split."""
    targets = list(getattr(source.split("train"), "targets", []))
    counts = np.bincount(targets, minlength=len(source.classes)) if targets else np.zeros(0)
    single = int((counts <= 1).sum())
    if cfg.data.startswith("folder:") and single:
        return (f"{single} of its {len(source.classes)} classes have a single image, and val_fraction "
                f"({cfg.val_fraction:g}) holds out a share of each class's images, so a class needs two to give one; "
                "give the folder a val/ split (folder/train/CLASS, folder/val/CLASS), or more images per class")
    return "give the data a val/ split, or more images per class"


def plural(n: int) -> str:
    return "" if n == 1 else "s"


def epoch_label(cfg: TrainConfig, epoch: int) -> str:
    """"epoch 2/10", and in a --max-steps run the step limit beside it."""
    limit = f" (stops at step {cfg.max_steps}, --max-steps)" if cfg.max_steps else ""
    return f"epoch {epoch}/{cfg.epochs}{limit}"


def end_epoch(run_dir: Path, metrics_log: MetricsLog | None,
              make_state: Callable[[dict[str, Any], float], dict[str, Any]], *, epoch: int, label: str, step: int,
              lr: float, lr_end: float, train: dict[str, Any], val: dict[str, Any],
              best_top1: float) -> tuple[dict[str, Any], float]:
    """Record, checkpoint (last.pt; best.pt when val top-1 improved) and log one finished epoch.

    Returns the epoch's record and the best val top-1 so far; make_state(record, best) is the
    checkpoint. `lr` and `lr_end` are the learning rate at the epoch's first and last step (the progress bar
    shows the current one). Without a `metrics_log` (a data-parallel process other than rank 0)
    nothing is written.
    """
    record = {
        "epoch": epoch, "step": step, "lr": lr, "lr_end": lr_end, **train,
        "val_loss": val["loss"], "val_top1": val["top1"], "val_top5": val["top5"],
    }
    improved = val["top1"] > best_top1
    best_top1 = max(best_top1, val["top1"])
    if metrics_log is None:
        return record, best_top1
    metrics_log.write(record, step)
    state = make_state(record, best_top1)
    save_checkpoint(run_dir / "last.pt", state)
    if improved:
        save_checkpoint(run_dir / "best.pt", state)
    scored = (f"val loss {val['loss']:.4f} top1 {val['top1']:.2%} top5 {val['top5']:.2%}"
              if val.get("n", 1) and math.isfinite(val["loss"]) else "no val images")
    rates = f"lr {lr:.3g}" if f"{lr:.3g}" == f"{lr_end:.3g}" else f"lr {lr:.3g} -> {lr_end:.3g}"
    log(f"{label}  train loss {train['train_loss']:.4f} top1 {train['train_top1']:.2%}  {scored}  "
        f"{rates}  {train['images_per_s']:.0f} img/s  {train['seconds']:.1f} s")
    return record, best_top1


def finish_run(cfg: TrainConfig, run_dir: Path, model: nn.Module, kernels: torch.Tensor, device: torch.device, *,
               epoch: int, step: int, best_top1: float, final: dict[str, Any], train_rates: list[float], bad: list,
               started: float, write: bool = True, first_epoch: int = 0, earlier: float = 0.0, val_images: int = -1,
               test: dict[str, Any] | None = None) -> dict[str, Any]:
    """Draw the run's pictures, list the unreadable images (unless not `write`), and return the run's
    summary.

    `model` describes the net (its arch and classes; the NumPy backend's is on the meta device),
    `kernels` are its trained first-layer weights; `test` holds the test split's scores per view
    where the run validated on a holdout (empty: its val split is the test split).

    A resumed run's summary counts its epochs from the start (`epochs`) and this session's from
    `first_epoch`; `seconds` is this session's time, `total_seconds` adds the sessions before it."""
    if write:
        draw_run_pictures(run_dir, model, kernels)
    if bad and write:
        unique = {b.path: b.reason for b in bad}
        # a path that is not valid UTF-8 (Linux allows any bytes) is written as its own bytes
        with atomic_path(run_dir / "bad_images.txt") as tmp:
            Path(tmp).write_text("".join(f"{p}\t{r}\n" for p, r in unique.items()), encoding="utf-8",
                                 errors="surrogateescape")
        log(f"skipped {len(unique)} unreadable image(s); listed in {run_dir / 'bad_images.txt'}")
    return {
        "run_dir": str(run_dir),
        "model": cfg.model,
        "data": cfg.data,
        "device": str(device),
        "epochs": epoch,
        "steps": step,
        "best_top1": best_top1,
        "final_top1": final.get("top1", float("nan")),
        "final_top5": final.get("top5", float("nan")),
        "final_loss": final.get("loss", float("nan")),
        "tta": cfg.tta,
        "num_classes": int(getattr(model, "num_classes", 0)),
        "train_images_per_s": float(np.median(train_rates)) if train_rates else 0.0,
        "bad_images": len({b.path for b in bad}),
        "val_images": val_images,
        "test": test or {},
        "history": read_metrics(run_dir) if write else [],  # every epoch's record, resumed sessions' too
        "first_epoch": first_epoch,
        "seconds": time.perf_counter() - started,
        "total_seconds": earlier + time.perf_counter() - started,
    }


def draw_run_pictures(run_dir: Path, model: nn.Module, kernels: torch.Tensor) -> None:
    """curves.png (loss, top-1, lr per epoch) and filters.png (the first layer's trained
    `kernels`, K,C,h,w) in the run folder; `model` names the net and its towers.

    A picture that cannot be drawn is reported and skipped: the trained run matters more.
    """
    from alexnet.models import model_options
    from alexnet.viz.curves import plot_curves
    from alexnet.viz.filters import plot_filters

    weight = kernels.detach().float().cpu()  # K,C,h,w
    towers = int(model.arch_kwargs.get("towers", model_options(model.arch).get("towers", 1)))
    k, c, h, w = weight.shape
    jobs = {
        "curves.png": lambda path: plot_curves([(run_dir.name, read_metrics(run_dir))], path,
                                               title=f"{model.arch}: {run_dir.name}"),
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

