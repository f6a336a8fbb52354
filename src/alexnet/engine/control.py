"""Run control: seeding and the RNG states a checkpoint holds, stopping on a signal, and what a
run says when it stops (docs/reliability.md).

Every checkpoint holds the RNG states of torch, NumPy and `random` (`rng_state`), and the data
order is a function of (seed, epoch), so on the CPU with --deterministic a resumed run ends bit
for bit where the uninterrupted one does. SIGINT/SIGTERM set a `StopRequest`: the training loop
(engine/train.py) finishes its step, saves last.pt with the epoch's progress and raises
`interrupted`'s error, which says how to continue. A NaN/inf loss is refused before any update
(`refuse_nonfinite`), and `diverged` says what was kept.
"""

from __future__ import annotations

import contextlib
import random
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alexnet.engine.console import log
from alexnet.errors import Interrupted, TrainingDiverged


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def rng_state() -> dict[str, Any]:
    """The global RNG states of torch (and CUDA), NumPy and `random`, as tensors, numbers and lists
    so that a checkpoint holding them still loads with torch.load(weights_only=True)."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": {"kind": str(np_kind), "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
                  "pos": int(np_pos), "has_gauss": int(np_has_gauss), "cached_gaussian": float(np_gauss)},
        "python": {"version": int(version), "state": [int(v) for v in internal], "gauss_next": gauss_next},
    }


def restore_rng(state: dict[str, Any] | None) -> None:
    """Put back the RNG states that rng_state() saved (checkpoints from before they were saved: no-op)."""
    if not state:
        return
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available():
        for i, s in enumerate(state.get("cuda") or []):
            if i < torch.cuda.device_count():
                torch.cuda.set_rng_state(s, i)
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


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


def interrupted(stop: StopRequest, run_dir: Path, where: str, saved: str = "state saved in") -> Interrupted:
    """The error that ends a run stopped by a signal once its state is saved: how to continue."""
    name = signal.Signals(stop.signum).name
    return Interrupted(f"interrupted by {name} {where}; {saved} {run_dir / 'last.pt'}; "
                       f"continue with: alexnet train --resume {run_dir}", stop.signum)


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

