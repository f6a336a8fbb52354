"""Training: `fit(config)` runs a whole training run; `train_one_epoch` is one pass over the data.

The paper's recipe (section 5): SGD with momentum 0.9 and weight decay 0.0005 on batches of 128,
learning rate 0.01 divided by 10 when the validation error stopped improving (three times in
all). Other recipes (cosine, one-cycle, AdamW, label smoothing) are options of the same loop.

Data flows one way: dataset -> transforms -> loader -> model -> this engine -> the run folder
(config.yaml, metrics.jsonl, tb/, last.pt, best.pt, bad_images.txt), which eval and predict read.

Reliability (docs/reliability.md): every checkpoint holds the RNG states of torch, NumPy and
`random`, and the data order is a function of (seed, epoch), so on the CPU with --deterministic a
resumed run ends bit for bit where the uninterrupted one does. SIGINT/SIGTERM finish the current
step and save last.pt with the epoch's progress ("partial": batches done, running sums), which
--resume continues from the next batch. A NaN/inf loss stops the run (TrainingDiverged) before the
optimizer steps on it, or with --skip-nonfinite that batch is skipped and counted.
"""

from __future__ import annotations

import contextlib
import math
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from alexnet.atomic import atomic_path
from alexnet.config import TrainConfig, resolved_input_norm, resolved_val_images, save_config, to_dict
from alexnet.data import DataSource, open_dataset
from alexnet.data.datasets import ImageFiles, TensorImages
from alexnet.data.decoded import decode_split, fits, prepared_bytes
from alexnet.data.images import BadImage
from alexnet.data.stats import PixelStats, cached_pixel_stats
from alexnet.data.subset import limit, take
from alexnet.data.loader import Loader, Shard, default_workers, make_loader, note_bad, set_epoch
from alexnet.data.transforms import EvalViews, Prepare, TrainAugment, eval_prepare, prep_pca, prep_stats
from alexnet.engine import distributed
from alexnet.engine.checkpoint import check_resumable, load_checkpoint, model_state, save_checkpoint
from alexnet.engine.distributed import World
from alexnet.engine.evaluate import evaluate
from alexnet.engine.memory import explain_out_of_memory
from alexnet.engine.metrics import MetricsLog
from alexnet.engine.run_folder import claimed, new_run_folder, resumed_run_folder
from alexnet.engine.optim import make_optimizer
from alexnet.errors import Interrupted, TrainingDiverged, UsageError
from alexnet.models import build_model, check_input_size


def log(message: str) -> None:
    """Progress messages go to stderr so stdout stays machine-readable (--json); rank 0 alone speaks."""
    if not distributed.active() or torch.distributed.get_rank() == 0:
        tqdm.write(message, file=sys.stderr)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("device cuda requested but no CUDA GPU is available (try --device cpu)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError("device mps requested but MPS is not available (try --device cpu)")
    return torch.device(name)


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
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
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
    kept = f"the last good checkpoint is {run_dir / 'last.pt'}" if (run_dir / "last.pt").exists() else "no checkpoint was written"
    return TrainingDiverged(f"{error}; {kept}; lower --lr, or pass --skip-nonfinite to skip such batches")


def autocast_for(device: torch.device, enabled: bool) -> tuple[contextlib.AbstractContextManager, torch.amp.GradScaler | None]:
    """Mixed-precision context and loss scaler: bf16 where supported (no scaler needed), else fp16."""
    if not enabled:
        return contextlib.nullcontext(), None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.float16), torch.amp.GradScaler("cuda")
    dtype = torch.float16 if device.type == "mps" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype), None


def switch(value: str, device: torch.device) -> bool:
    """A fast-path switch (auto, on, off) for `device`: auto is on for CUDA only.

    On GPUs channels-last (what tensor-core convolutions read) and compiled kernels are the
    standard fast path. On a CPU compiling costs time up front (about 12 s for alexnet_simple on
    this project's 2-core CPU) that a short run does not win back, so there it is asked for.
    """
    return value == "on" or (value == "auto" and device.type == "cuda")


def compiled(net: nn.Module, example: torch.Tensor, autocast: contextlib.AbstractContextManager | None,
             mode: str | None = None) -> nn.Module:
    """torch.compile(net, mode=mode), compiled now on one forward and backward of `example`; `net` if that fails.

    Compiling happens on the first call; doing it here, under a forked RNG, keeps the training's
    random draws unchanged and turns a failure (no C++ compiler, an unsupported op) into a note
    instead of a crash at step 1. The gradients it leaves are cleared by the first step.
    """
    def first_call(fast: nn.Module) -> None:
        devices = [example.device] if example.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), autocast or contextlib.nullcontext():
            fast(example).float().sum().backward()

    net, failure = compile_now(net, first_call, mode)
    if failure:
        log(f"torch.compile failed ({failure}); training eagerly")
    return net


def compile_now(net: nn.Module, first_call: Callable[[nn.Module], None], mode: str | None = None) -> tuple[nn.Module, str | None]:
    """(torch.compile(net, mode=mode), None) compiled by `first_call(compiled)`; (net, why) if compiling fails."""
    try:
        fast = torch.compile(net, mode=mode)
        first_call(fast)
        return fast, None
    except Exception as e:  # noqa: BLE001 - any compiler failure (no C++ compiler, no Triton, an unsupported op)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        return net, f"{type(e).__name__}: {first}"


def use_cuda_graphs(cfg: TrainConfig, device: torch.device, world_size: int = 1) -> tuple[bool, str | None]:
    """Whether the compiled training step is replayed as CUDA graphs, and a note when cfg asked
    for graphs it cannot have.

    A graph replays a whole step's kernels with one launch: at the 70,000 images/s issue 6 aims
    for, a step of 256 images lasts under 4 ms, in which the CPU would otherwise launch every
    kernel of the forward, the backward and the update one by one.
    Graphs come with compiling (mode "reduce-overhead"), need CUDA, and stay off under
    DistributedDataParallel, whose gradient all-reduce runs from hooks outside any graph.
    """
    compiling = switch(cfg.compile, device)
    possible = compiling and device.type == "cuda" and world_size == 1 and cfg.accum_steps == 1
    if cfg.cuda_graphs == "off" or (cfg.cuda_graphs == "auto" and not possible):
        return False, None
    if possible:
        return True, None
    why = ("they need a CUDA device" if device.type != "cuda" else "they come with compiling (--compile on)" if not compiling
           else "DistributedDataParallel's all-reduce runs outside them" if world_size > 1
           else "a step of several micro-batches (--accum-steps) would overwrite the graphs' outputs")
    return False, f"cuda_graphs on is ignored: {why}"


def forward_backward(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, accum_steps: int = 1,
                     autocast: contextlib.AbstractContextManager | None = None, scaler: torch.amp.GradScaler | None = None,
                     label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's mean loss and its logits (both detached), with the loss's gradient added into .grad.

    With `accum_steps` > 1 the batch goes through in that many micro-batches, each backward taking
    its share n_i/N of the mean, so .grad ends as the whole batch's gradient. Micro-batches of
    equal size are the arithmetic of data-parallel processes: each takes the mean over its part
    and the parts' gradients are averaged (a factor 1/2 or 1/4 is exact in floating point), which
    is why one process with --accum-steps 2 and two processes step bit for bit alike on the CPU
    (tests/engine/test_distributed.py). Under DDP only the last micro-batch all-reduces.
    """
    n = y.shape[0]
    pieces = [(xi, yi) for xi, yi in zip(x.tensor_split(accum_steps), y.tensor_split(accum_steps)) if yi.numel()]
    losses, outputs = [], []
    for i, (xi, yi) in enumerate(pieces):  # xi: float n_i,C,S,S
        hold = i < len(pieces) - 1 and isinstance(model, nn.parallel.DistributedDataParallel)
        with model.no_sync() if hold else contextlib.nullcontext():  # type: ignore[operator]
            with autocast or contextlib.nullcontext():
                logits = model(xi)  # n_i,K
                loss = F.cross_entropy(logits.float(), yi, label_smoothing=label_smoothing)
            share = loss if len(pieces) == 1 else loss * (yi.shape[0] / n)
            (scaler.scale(share) if scaler is not None else share).backward()
        losses.append(share.detach())
        outputs.append(logits.detach())
    loss = losses[0] if len(losses) == 1 else torch.stack(losses).sum()
    return loss, outputs[0] if len(outputs) == 1 else torch.cat(outputs)


def backward_and_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> None:
    """The update from `loss` (bench's loops): backward, then the optimizer step."""
    (scaler.scale(loss) if scaler is not None else loss).backward()
    optimizer_step(optimizer, scaler)


def optimizer_step(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> None:
    """The update from the gradients in .grad, through the fp16 loss scaler when there is one."""
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()


def make_step_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR | None:
    """Per-step schedules (cosine, onecycle) as a multiplier of the peak lr; None for the others."""
    if cfg.schedule not in ("cosine", "onecycle"):
        return None
    warmup = max(1, round(cfg.warmup_epochs * steps_per_epoch)) if cfg.warmup_epochs > 0 else 0
    total = max(total_steps, warmup + 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)  # 0 -> 1 over the rest of the run
        if cfg.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
        return max(0.0, 1 - t)  # onecycle: linear down to 0, as airbench does

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def continue_step_schedule(schedule: torch.optim.lr_scheduler.LambdaLR | None, optimizer: torch.optim.Optimizer) -> None:
    """After loading a per-step schedule's state: set the lr of the next step from this run's
    schedule. The optimizer's saved lr is the old schedule's; resumed with more epochs (a longer
    cosine) it would be wrong for the next step, and 0 where the old schedule had ended."""
    if schedule is None:
        return
    for group, base, factor in zip(optimizer.param_groups, schedule.base_lrs, schedule.lr_lambdas):
        group["lr"] = base * factor(schedule.last_epoch)  # the expression LambdaLR.step uses: the same float


def make_plateau_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    """The paper's rule: divide by 10 when validation error stops improving, at most max_lr_drops times."""
    if cfg.schedule != "plateau":
        return None
    # min_lr a hair below lr/10^drops: the last allowed drop lands on it, the next one changes nothing.
    # One floor per parameter group (the biases may have their own lr).
    floors = [float(g["lr"]) * 0.1**cfg.max_lr_drops * (1 - 1e-6) for g in optimizer.param_groups]
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.1, patience=cfg.plateau_patience, min_lr=floors)


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    *,
    device: torch.device,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    step_schedule: torch.optim.lr_scheduler.LambdaLR | None = None,
    autocast: contextlib.AbstractContextManager | None = None,
    scaler: torch.amp.GradScaler | None = None,
    label_smoothing: float = 0.0,
    max_steps: int = 0,
    start_step: int = 0,
    strict: bool = False,
    bad: list | None = None,
    progress: str = "",
    stop: StopRequest | None = None,
    skip_nonfinite: bool = False,
    partial: dict[str, Any] | None = None,
    cuda_graphs: bool = False,
    accum_steps: int = 1,
) -> dict[str, Any]:
    """One pass over `loader` (or until global step `max_steps`); returns the epoch's training metrics.

    `stop` (set by a signal) ends the pass after the current step; the result's "partial" is then
    the epoch's progress (batches done, running sums), which passed back as `partial` continues the
    same epoch from the next batch. A non-finite loss raises TrainingDiverged before the optimizer
    steps on it, or with `skip_nonfinite` skips the batch and counts it ("nonfinite").
    """
    model.train()
    part = dict(partial or {})
    if distributed.active() and torch.distributed.get_rank() != 0:  # the saved sums are already all processes'
        for key in ("loss_sum", "correct", "images"):
            part.pop(key, None)
    # Running sums stay on the device: reading them every step would wait for the GPU each time.
    loss_sum = part["loss_sum"].to(device) if "loss_sum" in part else torch.zeros((), device=device)
    correct = part["correct"].to(device) if "correct" in part else torch.zeros((), dtype=torch.long, device=device)
    images, step = int(part.get("images", 0)), start_step
    done, nonfinite, earlier = int(part.get("batches", 0)), int(part.get("nonfinite", 0)), float(part.get("seconds", 0.0))
    total, batches, cut, used_lr = len(loader), 0, None, None  # type: ignore[arg-type]
    bad = [] if bad is None else bad
    started = time.perf_counter()
    quiet = None if not distributed.active() or torch.distributed.get_rank() == 0 else True  # None: only on a terminal
    bar = tqdm(loader, desc=progress, leave=False, file=sys.stderr, disable=quiet, dynamic_ncols=True)
    for batch in bar:
        batches += 1
        if batches <= done:  # trained before the interruption: same order (seed, epoch), nothing drawn
            continue
        note_bad(batch.bad, bad, strict=strict)
        if distributed.any_across(batch.labels.numel() == 0, device):  # every image unreadable (here or in
            continue  # another process: all skip the step together, or DDP's gradient all-reduce would wait forever)
        x = batch.images.to(device, non_blocking=True)  # uint8 N,C,R,R
        x = augment(x) if augment is not None else x  # float N,C,S,S
        y = batch.labels.to(device, non_blocking=True)  # N
        if cuda_graphs:  # a new step: the graphs may reuse the previous step's output memory
            torch.compiler.cudagraph_mark_step_begin()
        optimizer.zero_grad(set_to_none=True)
        loss, logits = forward_backward(model, x, y, accum_steps=accum_steps, autocast=autocast, scaler=scaler,
                                        label_smoothing=label_smoothing)  # N,K logits
        # one device sync per step: the price of never stepping the optimizer on a NaN/inf loss;
        # data-parallel processes agree here on the loss and on stopping (engine/distributed.py)
        value, halt = distributed.agree(loss, bool(stop))
        if not math.isfinite(value):
            nonfinite += 1
            refuse_nonfinite(value, step=step, lr=current_lr(optimizer), skip=skip_nonfinite, count=nonfinite)
        else:
            used_lr = current_lr(optimizer)  # this step's; the schedule below sets the next one's
            optimizer_step(optimizer, scaler)
            if step_schedule is not None:
                step_schedule.step()
            step += 1
            images += y.shape[0]
            loss_sum += loss.detach() * y.shape[0]
            correct += (logits.detach().argmax(dim=1) == y).sum()
            if step % 10 == 0 or step == start_step + 1:
                rate = images / max(time.perf_counter() - started, 1e-9)
                bar.set_postfix(loss=f"{float(loss_sum) / images:.3f}", acc=f"{int(correct) / images:.3f}",
                                lr=f"{used_lr:.2g}", ips=f"{rate:.0f}")
            if max_steps and step >= max_steps:
                break
        if (halt if distributed.active() else stop) and batches < total:
            cut = batches
            break
    bar.close()
    if distributed.active():  # the epoch's figures over all processes' images
        total_sums = distributed.sum_across(torch.stack([loss_sum.float(), correct.float(), torch.tensor(float(images), device=device)]))
        loss_sum, correct, images = total_sums[0], total_sums[1].long(), int(total_sums[2])
    seconds = earlier + time.perf_counter() - started
    out = {
        "train_loss": float(loss_sum) / images if images else float("nan"),
        "train_top1": int(correct) / images if images else float("nan"),
        "images": images,
        "seconds": seconds,
        "images_per_s": images / seconds if seconds > 0 else 0.0,
        "step": step,
        "lr_last": used_lr,  # the lr of the epoch's last step (None: no step)
        "partial": None if cut is None else {"batches": cut, "loss_sum": loss_sum.detach().cpu(), "correct": correct.detach().cpu(),
                                             "images": images, "nonfinite": nonfinite, "seconds": seconds},
    }
    if skip_nonfinite:
        out["nonfinite"] = nonfinite
    return out


def refuse_nonfinite(loss: float, *, step: int, lr: float, skip: bool, count: int) -> None:
    """A NaN/inf loss at `step`: raise TrainingDiverged, or with `skip` log that the batch is skipped
    (the `count`-th of the epoch). Both training loops call it before any update."""
    message = f"loss is {loss} at step {step + 1} (lr {lr:.3g})"
    if not skip:
        raise TrainingDiverged(message)
    log(f"skipped batch: {message} (--skip-nonfinite; {count} this epoch)")


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


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
            saved = str((resume.get("config") or {}).get("out") or "")  # a config as saved: a folder since moved or copied
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


def first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


def draw_run_pictures(run_dir: Path, model: nn.Module) -> None:
    """curves.png (loss, top-1, lr per epoch) and filters.png (the first layer's kernels) in the run folder.

    A picture that cannot be drawn is reported and skipped: the trained run matters more.
    """
    from alexnet.engine.metrics import read_metrics
    from alexnet.models import model_options
    from alexnet.viz.curves import plot_curves
    from alexnet.viz.filters import plot_filters

    weight = first_conv(model).weight.detach().float().cpu()  # K,C,h,w
    towers = int(model.arch_kwargs.get("towers", model_options(model.arch).get("towers", 1)))
    k, c, h, w = weight.shape
    jobs = {
        "curves.png": lambda path: plot_curves([(run_dir.name, read_metrics(run_dir))], path, title=f"{model.arch}: {run_dir.name}"),
        "filters.png": lambda path: plot_filters(weight, path, towers=towers if k % towers == 0 else 1,
                                                 title=f"{model.arch}: first-layer kernels ({k} of {h}x{w}x{c}) after training"),
    }
    for name, draw in jobs.items():
        try:
            draw(run_dir / name)
        except UsageError as e:  # a full or read-only disk: atomic.py's one line says which
            log(f"warning: {name} was not drawn: {e}")
        except Exception as e:  # noqa: BLE001 - a failed picture must not cost the run
            log(f"warning: {name} was not drawn: {type(e).__name__}: {e}")


def announce(cfg: TrainConfig, source: DataSource, where: str, run_dir: Path) -> None:
    """The run's first lines: model, data sizes, device and run folder; notes on what bounds the run."""
    n_train, n_val = len(source.split("train")), len(source.split("val"))
    log(f"training {cfg.model} on {cfg.data} ({n_train} train / {n_val} val images, "
        f"{len(source.classes)} classes) {where}; run folder {run_dir}")
    if cfg.max_steps:
        log(f"a smoke run: it stops after {cfg.max_steps} step{plural(cfg.max_steps)} (--max-steps), "
            f"{cfg.max_steps * cfg.batch_size / max(n_train, 1):.2g} of an epoch of {n_train} images")
    if cfg.val_images < 0 and resolved_val_images(cfg) and n_val:
        log(f"validating on a fixed class-balanced {n_val} val images, as a --max-steps run does; --val-images 0 takes them all")
    if cfg.batch_size > n_train:  # valid (each epoch is one smaller batch), but rarely what was meant
        log(f"note: batch_size {cfg.batch_size} is larger than the {n_train} training images: each epoch is one step of {n_train}")
    if n_val == 0:
        log(f"note: {cfg.data} has no validation images, so the epochs are not scored and no best.pt is kept; {why_no_val(cfg, source)}")


def why_no_val(cfg: TrainConfig, source: DataSource) -> str:
    """What to do about an empty validation split: a folder whose classes are too small to split."""
    targets = list(getattr(source.split("train"), "targets", []))
    counts = np.bincount(targets, minlength=len(source.classes)) if targets else np.zeros(0)
    single = int((counts <= 1).sum())
    if cfg.data.startswith("folder:") and single:
        return (f"{single} of its {len(source.classes)} classes have a single image, and val_fraction ({cfg.val_fraction:g}) "
                "holds out a share of each class's images, so a class needs two to give one; give the folder a val/ split "
                "(folder/train/CLASS, folder/val/CLASS), or more images per class")
    return "give the data a val/ split, or more images per class"


def plural(n: int) -> str:
    return "" if n == 1 else "s"


def open_training_data(cfg: TrainConfig) -> DataSource:
    """The dataset cfg.data names, cut to cfg.train_images / cfg.val_images; refuses an empty training split."""
    source = limit(open_dataset(cfg.data, seed=cfg.seed, val_fraction=cfg.val_fraction), train=cfg.train_images,
                   val=resolved_val_images(cfg))
    if len(source.split("train")) == 0:
        raise UsageError(f"{cfg.data}: the training split has no images")
    return source


def build_for_data(cfg: TrainConfig, source: DataSource) -> nn.Module:
    """The configured model with as many outputs as the data has classes."""
    args = dict(cfg.model_args)
    given = args.pop("num_classes", None)
    if given is not None and int(given) != len(source.classes):
        raise UsageError(f"model_args num_classes={given} but {source.spec} has {len(source.classes)} classes")
    if cfg.image_size:  # the model's own size fits by construction
        check_input_size(cfg.model, cfg.image_size, num_classes=len(source.classes), **args)
    return build_model(cfg.model, num_classes=len(source.classes), **args)


class Pipeline(NamedTuple):
    """The loaders and the on-device batch transforms of one run, and how inputs were prepared."""

    train: Loader
    val: Loader
    augment: TrainAugment  # uint8 N,C,R,R -> float N,C,S,S, random
    views: EvalViews  # uint8 N,C,R,R -> float N,C,S,S, the centre view
    prep: dict[str, Any]  # saved in checkpoints: input_size, mean, std, augment, input_norm, mean_image, pca
    bad: tuple = ()  # unreadable files found while decoding the splits into memory beforehand
    train_eval: Loader | None = None  # a fixed subset of the training images, evaluated as the test is


def data_pipeline(cfg: TrainConfig, model: nn.Module, source: DataSource, device: torch.device, world: World = World(),
                  known: dict[str, Any] | None = None) -> Pipeline:
    """Loaders, batch transforms and the preparation record of a run; `known` is a resumed
    checkpoint, whose pixel statistics are reused rather than computed again."""
    channels, size = model.input_size[0], cfg.image_size or model.input_size[1]
    shards = Shard(world.rank, world.size, cfg.batch_size), Shard(world.rank, world.size)  # train, val
    workers = default_workers() if cfg.workers < 0 else cfg.workers
    pin = device.type == "cuda"
    prepare = Prepare(cfg.augment, size, channels)
    decode_on = device if switch(cfg.device_decode, device) else None
    (train_split, val_split), bad = cached_splits(cfg, source, prepare, workers, decode_on, world)
    train = make_loader(train_split, prepare, batch_size=cfg.batch_size, shuffle=True, workers=workers, seed=cfg.seed,
                        pin_memory=pin, shard=shards[0], device=device, decode_on=decode_on)
    val = make_loader(val_split, prepare, batch_size=cfg.batch_size, shuffle=False, workers=workers, seed=cfg.seed,
                      pin_memory=pin, shard=shards[1], device=device, decode_on=decode_on)
    norm = resolved_input_norm(cfg)
    prep: dict[str, Any] = {"input_size": [channels, size, size], "mean": list(source.mean), "std": list(source.std),
                            "augment": cfg.augment, "input_norm": norm, "mean_image": None, "pca": None}
    if norm == "mean_image" or (cfg.augment == "paper" and cfg.lighting > 0):
        stats = pixel_stats_for(train_split, prepare, known, workers=workers, decode_on=decode_on)
        prep["pca"] = {"eigval": stats.eigval, "eigvec": stats.eigvec}
        if norm == "mean_image":
            # mean/std that turn (x/255 - mean)/std into x minus the mean image's channel means: what a
            # consumer that knows only per-channel statistics (an exported file's user) can apply
            prep.update(mean_image=stats.mean_image, mean=(stats.mean_image.mean(dim=(1, 2)) / 255).tolist(), std=[1 / 255] * channels)
    nhwc = switch(cfg.channels_last, device)  # batches laid out as the model's weights are
    stats_kw = dict(size=size, channels=channels, **prep_stats(prep))
    augment = TrainAugment(cfg.augment, lighting=cfg.lighting, flip=cfg.flip, channels_last=nhwc, pca=prep_pca(prep), **stats_kw).to(device)
    views = EvalViews(tta="center", channels_last=nhwc, **stats_kw).to(device)
    train_eval = None
    if cfg.train_eval_images:
        train_eval = make_loader(take(train_split, cfg.train_eval_images), prepare, batch_size=cfg.batch_size, shuffle=False,
                                 workers=workers, seed=cfg.seed, pin_memory=pin, shard=shards[1], device=device, decode_on=decode_on)
    return Pipeline(train, val, augment, views, prep, tuple(bad), train_eval)


def pixel_stats_for(split: Dataset, prepare: Prepare, known: dict[str, Any] | None, *, workers: int,
                    decode_on: torch.device | None = None) -> PixelStats:
    """The training split's mean image and RGB components (data/stats.py): a resumed run's own, or computed (cached)."""
    if known is not None and known.get("pca"):
        side = prepare.side
        mean_image = known.get("mean_image")
        if mean_image is None:
            mean_image = torch.zeros(len(known["pca"]["eigval"]), side, side)
        return PixelStats(mean_image, known["pca"]["eigval"], known["pca"]["eigvec"], 0)
    loader = make_loader(split, prepare, batch_size=256, shuffle=False, workers=workers, decode_on=decode_on)
    channels = prepare.to_channels.channels
    return cached_pixel_stats(split, lambda: iter(loader), channels=channels, side=prepare.side, preset=prepare.preset,
                              total=len(loader))


def cached_splits(cfg: TrainConfig, source: DataSource, prepare: Prepare, workers: int, decode_on: torch.device | None,
                  world: World = World()) -> tuple[list[Dataset], list[BadImage]]:
    """The train and val splits, image files among them decoded and prepared into memory first
    where cfg.cache_images says so (data/decoded.py), and the unreadable files met doing it.

    auto caches when the prepared images take at most a quarter of the memory available, in one
    process (under torchrun every process would hold its own copy)."""
    splits = [source.split("train"), source.split("val")]
    # the files a reader skipped decoding into memory itself (a CIFAR-10 JPEG tree's), listed as the loader's are
    known = [b for s in splits if isinstance(s, TensorImages) for b in s.bad]
    files = [s for s in splits if isinstance(s, ImageFiles)]
    if not files or cfg.cache_images == "off":
        return splits, known
    size = sum(prepared_bytes(f, prepare) for f in files)
    if cfg.cache_images == "auto" and (world.size > 1 or not fits(size)):
        return splits, known
    log(f"decoding {sum(len(f) for f in files)} image files once into memory ({size / 1e6:,.0f} MB; "
        f"--cache-images off reads them in every epoch)")
    bad: list[BadImage] = list(known)
    for i, (name, split) in enumerate(zip(("train", "val"), splits)):
        if isinstance(split, ImageFiles):
            splits[i] = decode_split(split, prepare, workers=workers, decode_on=decode_on, strict=cfg.strict, what=f"{name} images")
            bad += splits[i].bad  # type: ignore[attr-defined]
    return splits, bad


def fit(cfg: TrainConfig, *, on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the training that `cfg` describes; returns the summary (run_dir, best/final accuracy, ...)."""
    with contextlib.ExitStack() as hold:  # the run folder's lock, held to the end (engine/run_folder.py)
        if cfg.backend == "numpy":
            from alexnet.engine.numpy_backend import fit_numpy

            if distributed.launched():
                raise UsageError("the numpy backend trains in one process: run it without torchrun")
            return fit_numpy(cfg, hold, on_epoch=on_epoch)
        started = time.perf_counter()
        world, device = distributed.init_world(resolve_device(cfg.device))
        try:
            return _fit(cfg, world, device, started, on_epoch, hold)
        finally:
            distributed.close_world()


def _fit(cfg: TrainConfig, world: World, device: torch.device, started: float,
         on_epoch: Callable[[dict[str, Any]], None] | None, hold: contextlib.ExitStack) -> dict[str, Any]:
    if cfg.batch_size % world.size:
        raise UsageError(f"batch_size {cfg.batch_size} (the global batch) does not divide among {world.size} processes")
    seed_everything(cfg.seed, cfg.deterministic)
    resume = load_checkpoint(cfg.resume, prefer="last") if cfg.resume else None
    if resume is not None:
        check_resumable(resume)
    source = open_training_data(cfg)
    model = build_for_data(cfg, source)
    # the first layer's kernels as initialised, kept in every checkpoint (35 k numbers for
    # alexnet2012) so `alexnet viz filters --before-after RUN` can show what training made of them
    init_filters = first_conv(model).weight.detach().clone() if resume is None else resume.get("init_filters")
    if resume is not None:
        if resume["model_name"] != cfg.model or list(resume["classes"]) != list(source.classes):
            raise UsageError(f"{resume['path']} was trained as {resume['model_name']} on other classes; it cannot resume this config")
        model.load_state_dict(resume["model"])
    model.to(device)
    if switch(cfg.channels_last, device):
        model.to(memory_format=torch.channels_last)
    pipe = data_pipeline(cfg, model, source, device, world, known=resume)
    train_loader, val_loader, prep = pipe.train, pipe.val, pipe.prep
    if len(train_loader) == 0:  # data-parallel drops the last incomplete global batch
        raise UsageError(f"{cfg.data}: {len(source.split('train'))} training images make no full batch of {cfg.batch_size}")
    # what trains: DDP averages the gradients of the processes after each backward
    net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) if world.size > 1 else model

    optimizer = make_optimizer(model, cfg)
    steps_per_epoch = max(1, len(train_loader))
    total_steps = cfg.epochs * steps_per_epoch if not cfg.max_steps else min(cfg.max_steps, cfg.epochs * steps_per_epoch)
    step_schedule = make_step_schedule(optimizer, cfg, total_steps, steps_per_epoch)
    plateau = make_plateau_schedule(optimizer, cfg)
    amp = switch(cfg.amp, device)
    autocast, scaler = autocast_for(device, amp)
    graphs, graphs_note = use_cuda_graphs(cfg, device, world.size)
    if graphs_note:
        log(graphs_note)
    if switch(cfg.compile, device):
        side = prep["input_size"][1]
        micro = -(-train_loader.batch_size // cfg.accum_steps)  # the size each forward sees
        example = torch.zeros(micro, model.input_size[0], side, side, device=device)  # n,C,S,S
        net = compiled(net, example, autocast, "reduce-overhead" if graphs else None)

    epoch, step, best_top1 = 0, 0, -1.0
    first_epoch, earlier = 0, 0.0  # where this session starts, and the seconds the run took before it
    partial: dict[str, Any] | None = None  # the progress of an epoch stopped by a signal
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        for sched, key in ((step_schedule, "step_schedule"), (plateau, "plateau"), (scaler, "scaler")):
            if sched is not None and resume.get(key):
                sched.load_state_dict(resume[key])
        continue_step_schedule(step_schedule, optimizer)
        epoch, step, best_top1 = int(resume["epoch"]), int(resume["step"]), float(resume["best_top1"])
        partial = resume.get("partial")
        first_epoch, earlier = epoch, float(resume.get("elapsed") or 0.0)
        if epoch >= cfg.epochs:
            raise UsageError(f"{resume['path']} has already trained {epoch} of {cfg.epochs} epochs; pass a larger --epochs to continue")
    run_dir = open_run(cfg, resume, world, hold)
    if resume is not None:
        within = f", batch {int(partial['batches']) + 1}" if partial else ""
        log(f"resuming {resume['path']} at epoch {epoch + 1}/{cfg.epochs}{within} (step {step})")
    if world.main:
        save_config(cfg, run_dir / "config.yaml")
    metrics_log = MetricsLog(run_dir, tensorboard=cfg.tensorboard, epoch=epoch, step=step) if world.main else None
    where = f"on {device}" if world.size == 1 else f"on {world.size} processes ({device.type}, data-parallel)"
    announce(cfg, source, where, run_dir)

    def checkpoint(metrics: dict[str, Any], best_top1: float, partial: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            **model_state(model), **prep, "classes": list(source.classes), "data": cfg.data,
            "optimizer": optimizer.state_dict(),
            "step_schedule": step_schedule.state_dict() if step_schedule else None,
            "plateau": plateau.state_dict() if plateau else None,
            "scaler": scaler.state_dict() if scaler else None,
            "epoch": epoch, "step": step, "best_top1": best_top1, "config": to_dict(cfg), "metrics": metrics,
            "init_filters": init_filters, "rng": rng_state(), "partial": partial,
            "elapsed": earlier + time.perf_counter() - started,
        }

    bad: list = list(pipe.bad)  # files found unreadable while caching the splits
    val: dict[str, Any] = {}
    train_rates: list[float] = []
    record: dict[str, Any] = dict(resume.get("metrics") or {}) if resume is not None else {}
    # the RNG states as they were when the checkpoint was written (building the model drew from them)
    restore_rng(resume.get("rng") if resume is not None else None)
    try:
        with stop_on_signals() as stop, explain_out_of_memory(cfg.batch_size, device, amp=amp):
            while epoch < cfg.epochs and not (cfg.max_steps and step >= cfg.max_steps) and not reached(cfg, record):
                set_epoch(train_loader, epoch)
                if world.size > 1:  # each process its own crops, flips and dropout; reproducible per epoch
                    torch.manual_seed((cfg.seed * 1_000_003 + epoch) * 1_000 + world.rank)
                # a resumed half epoch logs the lr its first half started with
                lr = float(partial["lr"]) if partial else current_lr(optimizer)
                train = train_one_epoch(
                    net, train_loader, optimizer, device=device, augment=pipe.augment, step_schedule=step_schedule, autocast=autocast,
                    scaler=scaler, label_smoothing=cfg.label_smoothing, max_steps=cfg.max_steps, start_step=step,
                    strict=cfg.strict, bad=bad, progress=epoch_label(cfg, epoch + 1),
                    stop=stop, skip_nonfinite=cfg.skip_nonfinite, partial=partial, cuda_graphs=graphs,
                    accum_steps=cfg.accum_steps,
                )
                step, partial, lr_end = train.pop("step"), train.pop("partial"), train.pop("lr_last")
                if partial is not None:  # stopped by a signal mid-epoch: save the progress, epoch not counted
                    if world.main:
                        save_checkpoint(run_dir / "last.pt", checkpoint(record, best_top1, {**partial, "lr": lr}))
                    raise interrupted(stop, run_dir, f"at step {step} (epoch {epoch + 1}, batch {partial['batches']} of {len(train_loader)})")
                train_rates.append(train["images_per_s"])
                val = evaluate(model, val_loader, device=device, num_classes=len(source.classes), views=pipe.views, autocast=autocast,
                               strict=cfg.strict, progress=f"validating epoch {epoch + 1}")
                bad.extend(val["bad"])
                if pipe.train_eval is not None:  # the training images as the test sees them: no augmentation, no dropout
                    clean = evaluate(model, pipe.train_eval, device=device, num_classes=len(source.classes), views=pipe.views,
                                     autocast=autocast, strict=cfg.strict)
                    train.update(train_eval_loss=clean["loss"], train_eval_top1=clean["top1"])
                epoch += 1
                if plateau is not None:
                    plateau.step(val["top1"])
                record, best_top1 = end_epoch(run_dir, metrics_log, checkpoint, epoch=epoch, label=epoch_label(cfg, epoch), step=step, lr=lr,
                                              lr_end=lr if lr_end is None else lr_end, train=train, val=val, best_top1=best_top1)
                if on_epoch is not None:
                    on_epoch(record)
                if reached(cfg, record):
                    log(f"training error {1 - record['train_top1']:.2%} is at or below stop_train_error {cfg.stop_train_error:.2%}: stopping after epoch {epoch}")
                if distributed.agree(torch.zeros(()), bool(stop))[1] and epoch < cfg.epochs:  # a signal came during validation or saving
                    raise interrupted(stop, run_dir, f"after epoch {epoch}")
    except TrainingDiverged as e:
        raise diverged(e, run_dir) from None
    finally:
        if metrics_log is not None:
            metrics_log.close()

    final = val
    if cfg.tta != "center":
        tta_loader, tta_views = tta_pipeline(cfg, source, prep, val_loader.num_workers, device, world)
        with explain_out_of_memory(cfg.batch_size, device, doing=f"evaluating with {cfg.tta}", amp=amp):
            final = evaluate(model, tta_loader, device=device, num_classes=len(source.classes), views=tta_views, autocast=autocast, strict=cfg.strict)
        log(f"final evaluation with {cfg.tta}: top1 {final['top1']:.2%} top5 {final['top5']:.2%}")
    return finish_run(cfg, run_dir, model, device, epoch=epoch, step=step, best_top1=best_top1, final=final,
                      train_rates=train_rates, bad=bad, started=started, write=world.main, first_epoch=first_epoch,
                      earlier=earlier, val_images=len(source.split("val")))


def reached(cfg: TrainConfig, record: dict[str, Any]) -> bool:
    """Whether the last epoch's running training error is at or below cfg.stop_train_error (when set)."""
    return bool(cfg.stop_train_error) and "train_top1" in record and 1 - float(record["train_top1"]) <= cfg.stop_train_error


def epoch_label(cfg: TrainConfig, epoch: int) -> str:
    """"epoch 2/10", and in a --max-steps run the step limit beside it."""
    return f"epoch {epoch}/{cfg.epochs}" + (f" (stops at step {cfg.max_steps}, --max-steps)" if cfg.max_steps else "")


def end_epoch(run_dir: Path, metrics_log: MetricsLog | None, make_state: Callable[[dict[str, Any], float], dict[str, Any]], *,
              epoch: int, label: str, step: int, lr: float, lr_end: float, train: dict[str, Any], val: dict[str, Any],
              best_top1: float) -> tuple[dict[str, Any], float]:
    """Record, checkpoint (last.pt; best.pt when val top-1 improved) and log one finished epoch.

    Returns the epoch's record and the best val top-1 so far; make_state(record, best) is the checkpoint.
    `lr` and `lr_end` are the learning rate at the epoch's first and last step (the progress bar
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
    scored = (f"val loss {val['loss']:.4f} top1 {val['top1']:.2%} top5 {val['top5']:.2%}" if val.get("n", 1) and math.isfinite(val["loss"])
              else "no val images")
    rates = f"lr {lr:.3g}" if f"{lr:.3g}" == f"{lr_end:.3g}" else f"lr {lr:.3g} -> {lr_end:.3g}"
    log(f"{label}  train loss {train['train_loss']:.4f} top1 {train['train_top1']:.2%}  {scored}  "
        f"{rates}  {train['images_per_s']:.0f} img/s  {train['seconds']:.1f} s")
    return record, best_top1


def tta_pipeline(cfg: TrainConfig, source: DataSource, prep: dict[str, Any], workers: int, device: torch.device,
                 world: World = World()) -> tuple[Loader, EvalViews]:
    """The val loader and views of the final evaluation with cfg.tta (flip, or the ten patches)."""
    channels, size = prep["input_size"][0], prep["input_size"][1]
    views = EvalViews(size=size, channels=channels, tta=cfg.tta, **prep_stats(prep)).to(device)
    loader = make_loader(source.split("val"), eval_prepare(cfg.augment, size=size, channels=channels, tta=cfg.tta),
                         batch_size=cfg.batch_size, shuffle=False, workers=workers, seed=cfg.seed,
                         shard=Shard(world.rank, world.size))
    return loader, views


def finish_run(cfg: TrainConfig, run_dir: Path, model: nn.Module, device: torch.device, *, epoch: int, step: int,
               best_top1: float, final: dict[str, Any], train_rates: list[float], bad: list, started: float,
               write: bool = True, first_epoch: int = 0, earlier: float = 0.0, val_images: int = -1) -> dict[str, Any]:
    """Draw the run's pictures, list the unreadable images (unless not `write`), and return the run's summary.

    A resumed run's summary counts its epochs from the start (`epochs`) and this session's from
    `first_epoch`; `seconds` is this session's time, `total_seconds` adds the sessions before it."""
    if write:
        draw_run_pictures(run_dir, model)
    if bad and write:
        unique = {b.path: b.reason for b in bad}
        # a path that is not valid UTF-8 (Linux allows any bytes) is written as its own bytes
        with atomic_path(run_dir / "bad_images.txt") as tmp:
            Path(tmp).write_text("".join(f"{p}\t{r}\n" for p, r in unique.items()), encoding="utf-8", errors="surrogateescape")
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
        "first_epoch": first_epoch,
        "seconds": time.perf_counter() - started,
        "total_seconds": earlier + time.perf_counter() - started,
    }
