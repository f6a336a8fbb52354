"""What a run prints: `log` (one line), `progress` (a tqdm bar), and an out-of-memory fault as
one line of advice (`explain_out_of_memory`).

On a terminal both go to stderr so that stdout stays machine-readable (`--json`). In a Jupyter
kernel the lines go to stdout (stderr is drawn as an error there) and the bar is tqdm.auto's
widget (a text bar where ipywidgets is not installed). Only the main process of a data-parallel
run speaks (engine/distributed.py): eight processes would print every line eight times.

Out of memory: Out-of-memory faults as one-line advice: which batch size failed and what to try instead.

A batch that does not fit raises `torch.OutOfMemoryError` on CUDA (and XPU), a RuntimeError
saying "MPS backend out of memory" on Apple GPUs, one saying "can't allocate memory" when torch's
CPU allocator fails, and MemoryError in NumPy (the from-scratch backend). Any of them inside
`explain_out_of_memory` becomes `OutOfMemory`, which the CLI prints on one line and exits 1.

The batch size is not halved automatically: the paper's learning rate goes with its batch of 128
(and the data order, the schedules and a resumed run all depend on it), so a silently smaller
batch would train a different recipe. The message says which batch size to try; the user decides.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import re
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from alexnet.config import VIEW_NAMES, TrainConfig
from alexnet.data import DataSource
from alexnet.engine import distributed
from alexnet.errors import Interrupted, OutOfMemory, TrainingDiverged, printable


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (IPython's kernel app is running)."""
    if "ipykernel" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def main_process() -> bool:
    """Whether this is the process that speaks: the only one, or rank 0 under torchrun."""
    return not distributed.active() or torch.distributed.get_rank() == 0


def log(message: str) -> None:
    """One progress line, written above any progress bar; rank 0 alone speaks."""
    if main_process():
        tqdm.write(printable(message), file=sys.stdout if in_notebook() else sys.stderr)


def bars_shown() -> bool:
    """Whether progress bars are drawn: in a notebook, or with stderr on a terminal (tqdm's disable=None)."""
    return in_notebook() or sys.stderr.isatty()


def progress_line(label: str, *, batch: int, batches: int, step: int, loss: float, rate: float, eta: float) -> str:
    """The plain line that stands in for the progress bar where none is drawn (a log file, a pipe)."""
    minutes, seconds = divmod(round(eta), 60)
    return (f"{label}: batch {batch}/{batches} ({batch / max(batches, 1):.0%}), step {step}, loss {loss:.4f}, "
            f"{rate:.0f} img/s, epoch ETA {minutes}m{seconds:02d}s")


def progress(iterable: Iterable, desc: str, *, show: bool = True) -> Any:
    """A progress bar named `desc` over `iterable`: on a terminal only (tqdm's disable=None) or
    in a notebook, in the main process, and not at all unless `show`."""
    if not (show and main_process()):
        return tqdm(iterable, disable=True)
    if in_notebook():
        if importlib.util.find_spec("ipywidgets") is not None:
            from tqdm.auto import tqdm as widget

            return widget(iterable, desc=desc, leave=False)
        return tqdm(iterable, desc=desc, leave=False, file=sys.stdout, dynamic_ncols=True)
    return tqdm(iterable, desc=desc, leave=False, file=sys.stderr, disable=None, dynamic_ncols=True)


# substrings of the RuntimeError texts of allocators that have no exception type of their own
_OOM_TEXTS = ("out of memory", "can't allocate memory")


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(error, RuntimeError) and any(t in str(error).lower() for t in _OOM_TEXTS)


@contextlib.contextmanager
def explain_out_of_memory(batch_size: int, device: torch.device | str, *, doing: str = "training",
                          amp: bool | None = None) -> Iterator[None]:
    """Turn an out-of-memory error raised inside into OutOfMemory naming `batch_size` and a smaller one.

    `amp=False` adds the suggestion to try mixed precision (on GPUs, where it halves activations).
    """
    try:
        yield
    except (RuntimeError, MemoryError) as error:
        if not is_out_of_memory(error):
            raise
        device = torch.device(device)
        if device.type == "cuda":
            torch.cuda.empty_cache()  # give back what the failed batch held, for whoever runs next
        # "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't ..." -> from "DefaultCPU..."
        text = re.sub(r"^\[enforce fail[^\]]*\]\s*(err == 0\.\s*)?", "", " ".join(str(error).split()))
        first = text if len(text) <= 100 else text[:97] + "..."
        smaller = f"--batch-size {max(1, batch_size // 2)}" if batch_size > 1 else "a smaller model or --image-size"
        also = " or --amp" if amp is False and device.type != "cpu" else ""
        raise OutOfMemory(f"out of memory while {doing} on {device} with batch size {batch_size} ({first}); "
                          f"try {smaller}{also}") from None


# ---- the lines a training run says (engine/train.py)

def announce(cfg: TrainConfig, source: DataSource, where: str, run_dir: Path, *, val_images: int) -> None:
    """The run's first lines: model, data sizes, device and run folder; notes on what bounds the run."""
    n_train, n_val = len(source.split("train")), len(source.split("val"))
    log(f"training {cfg.model} on {cfg.data} ({n_train} train / {n_val} val images, "
        f"{len(source.classes)} classes) {where}; run folder {run_dir}")
    if cfg.max_steps:
        log(f"a smoke run: it stops after {cfg.max_steps} step{'' if cfg.max_steps == 1 else 's'} (--max-steps), "
            f"{cfg.max_steps * cfg.batch_size / max(n_train, 1):.2g} of an epoch of {n_train} images")
    if cfg.val_images < 0 and val_images and n_val:
        log(f"validating on a fixed class-balanced {n_val} val images, as a --max-steps run does; "
            "--val-images 0 takes them all")
    if cfg.batch_size > n_train:  # valid (each epoch is one smaller batch), but rarely what was meant
        log(f"note: batch_size {cfg.batch_size} is larger than the {n_train} training images: "
            f"each epoch is one step of {n_train}")
    if cfg.tta != "center" and n_val:
        log(f"each epoch is validated with the centre view; the final score with the run's own views: "
            f"{VIEW_NAMES[cfg.tta]} (tta {cfg.tta})")
    if cfg.progress_every and not bars_shown():
        log(f"output is not a terminal: a progress line every {cfg.progress_every:g} s "
            "(--progress-every SECONDS; 0 turns them off)")
    if n_val == 0:
        log(f"note: {cfg.data} has no validation images, so the epochs are not scored and no best.pt is kept; "
            f"{why_no_val(cfg, source)}")


def why_no_val(cfg: TrainConfig, source: DataSource) -> str:
    """What to do about an empty validation split: a folder whose classes are too small to split."""
    targets = list(getattr(source.split("train"), "targets", []))
    single = int((np.bincount(targets, minlength=len(source.classes)) <= 1).sum()) if targets else 0
    if cfg.data.startswith("folder:") and single:
        return (f"{single} of its {len(source.classes)} classes have a single image, and val_fraction "
                f"({cfg.val_fraction:g}) holds out a share of each class's images, so a class needs two to give one; "
                "give the folder a val/ split (folder/train/CLASS, folder/val/CLASS), or more images per class")
    return "give the data a val/ split, or more images per class"


def epoch_label(cfg: TrainConfig, epoch: int) -> str:
    """"epoch 2/10", and in a --max-steps run the step limit beside it."""
    limit = f" (stops at step {cfg.max_steps}, --max-steps)" if cfg.max_steps else ""
    return f"epoch {epoch}/{cfg.epochs}{limit}"


def epoch_line(cfg: TrainConfig, record: dict[str, Any], val: dict[str, Any]) -> str:
    """The line a finished epoch logs: training and validation figures, lr, speed."""
    scored = (f"val loss {val['loss']:.4f} top1 {val['top1']:.2%} top5 {val['top5']:.2%}"
              if val.get("n", 1) and math.isfinite(val["loss"]) else "no val images")
    lr, lr_end = record["lr"], record["lr_end"]
    rates = f"lr {lr:.3g}" if f"{lr:.3g}" == f"{lr_end:.3g}" else f"lr {lr:.3g} -> {lr_end:.3g}"
    return (f"{epoch_label(cfg, record['epoch'])}  train loss {record['train_loss']:.4f} "
            f"top1 {record['train_top1']:.2%}  {scored}  {rates}  {record['images_per_s']:.0f} img/s  "
            f"{record['seconds']:.1f} s")


# ---- Ctrl-C and SIGTERM while training, and what a run says when it stops (docs/reliability.md):
# a signal sets a StopRequest; the loop finishes its step, saves last.pt with the epoch's progress,
# and raises `interrupted`'s error, which says how to continue

class StopRequest:
    """Set by SIGINT/SIGTERM while training: the loop finishes its step, saves, and stops."""

    def __init__(self) -> None:
        self.signum = 0

    def __bool__(self) -> bool:
        return self.signum != 0


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Turn SIGINT and SIGTERM into a StopRequest for the duration; a second signal stops at once
    (KeyboardInterrupt). Outside the main thread (no signal handlers allowed) nothing is caught."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: Any) -> None:
        if stop:
            raise KeyboardInterrupt
        stop.signum = signum
        log(f"{signal.Signals(signum).name}: finishing this step, then saving last.pt (send it again to stop at once)")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def interrupted(stop: StopRequest, run_dir: Path, where: str) -> Interrupted:
    """The error that ends a run stopped by a signal once its state is saved: how to continue."""
    return Interrupted(f"interrupted by {signal.Signals(stop.signum).name} {where}; state saved in "
                       f"{run_dir / 'last.pt'}; continue with: alexnet train --resume {run_dir}", stop.signum)


def diverged(error: TrainingDiverged, run_dir: Path) -> TrainingDiverged:
    """`error` (which names the step and lr) with what was kept and what to try."""
    last = run_dir / "last.pt"
    kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was written"
    return TrainingDiverged(f"{error}; {kept}; lower --lr, or pass --skip-nonfinite to skip such batches")


def refuse_nonfinite(loss: float, *, step: int, lr: float, skip: bool, count: int) -> None:
    """A NaN/inf loss at `step`: raise TrainingDiverged, or with `skip` log that the batch is skipped
    (the `count`-th of the epoch). The loop calls it before any update."""
    message = f"loss is {loss} at step {step + 1} (lr {lr:.3g})"
    if not skip:
        raise TrainingDiverged(message)
    log(f"skipped batch: {message} (--skip-nonfinite; {count} this epoch)")
