"""Training: `fit(config)` runs a whole training run; `train_one_epoch` is one pass over the data.

The paper's recipe (section 5): SGD with momentum 0.9 and weight decay 0.0005 on batches of 128,
learning rate 0.01 divided by 10 when the validation error stopped improving (three times in
all). Other recipes (cosine, one-cycle, AdamW, label smoothing) are options of the same loop.

This is the one training loop. It drives a `Backend`, which computes: torch's
(engine/torch_backend.py) or the from-scratch NumPy nets' (engine/numpy_backend.py), and sets its
learning rate at every step from the step and the plateau state (engine/optim.py
`learning_rates`). Around the loop: the run's data (engine/pipeline.py), its folder
(engine/run.py), signals, RNG states and divergence (engine/control.py, docs/reliability.md),
checkpoints (engine/checkpoint.py) and validation (engine/evaluate.py).

Data flows one way: dataset -> transforms -> loader -> model -> this engine -> the run folder
(config.yaml, metrics.jsonl, tb/, last.pt, best.pt, bad_images.txt), which eval and predict read.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from typing import Any, Protocol

import torch
from torch import nn

from alexnet.config import TrainConfig, save_config, to_dict
from alexnet.data.loader import note_bad, set_epoch
from alexnet.engine import distributed, numpy_backend, torch_backend
from alexnet.engine.checkpoint import check_resumable, load_checkpoint, save_checkpoint
from alexnet.engine.console import log
from alexnet.engine.console import progress as progress_bar
from alexnet.engine.control import (
    StopRequest,
    diverged,
    interrupted,
    refuse_nonfinite,
    restore_rng,
    rng_state,
    seed_everything,
    stop_on_signals,
)
from alexnet.engine.distributed import World
from alexnet.engine.evaluate import evaluate
from alexnet.engine.fast import bf16_switch, resolve_device
from alexnet.engine.memory import explain_out_of_memory
from alexnet.engine.metrics import MetricsLog
from alexnet.engine.optim import Plateau, learning_rates, plateau_after, plateau_from
from alexnet.engine.pipeline import build_for_data, data_pipeline, open_training_data, tta_pipeline
from alexnet.engine.run import announce, draw_run_pictures, end_epoch, epoch_label, finish_run, open_run
from alexnet.errors import Interrupted, TrainingDiverged, UsageError


class Backend(Protocol):
    """What the loop needs of whoever computes (engine/torch_backend.py, engine/numpy_backend.py)."""

    bases: list[float]  # the parameter groups' base learning rates, which the schedule scales
    autocast: contextlib.AbstractContextManager | None  # for scoring `eval_model`
    eval_model: nn.Module  # the net as `evaluate` scores it

    def train(self) -> None: ...  # training mode (dropout on)
    def begin_epoch(self, epoch: int) -> None: ...  # before the epoch's first batch (or a cut epoch's next)
    def lr(self) -> float: ...  # group 0's lr as set now
    def loss_and_logits(self, x: torch.Tensor, y: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]: ...
    def update(self, lrs: Sequence[float] | None) -> None: ...  # one step from the last batch's gradient
    def first_kernels(self) -> torch.Tensor: ...  # conv1's weights, K,C,h,w on the CPU
    def state(self) -> dict[str, Any]: ...  # model, optimizer and scaler entries of a checkpoint


# the builders: (cfg, model, *, device, world, resume, input_size, micro_batch) -> Backend
BACKENDS: dict[str, Callable[..., Backend]] = {"torch": torch_backend.build, "numpy": numpy_backend.build}


def train_one_epoch(
    model: Backend | nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    device: torch.device,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    lr: Callable[[int], Sequence[float]] | None = None,
    max_steps: int = 0,
    start_step: int = 0,
    strict: bool = False,
    bad: list | None = None,
    progress: str = "",
    stop: StopRequest | None = None,
    skip_nonfinite: bool = False,
    partial: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One pass over `loader` (or until global step `max_steps`); returns the epoch's training metrics.

    `model` is a Backend, or a torch net with its `optimizer` (plain float32 steps). `lr(step)`
    gives each parameter group's learning rate for a global step (None: leave the optimizer's).
    `stop` (set by a signal) ends the pass after the current step; the result's "partial" is then
    the epoch's progress (batches done, running sums), which passed back as `partial` continues the
    same epoch from the next batch. A non-finite loss raises TrainingDiverged before the update, or
    with `skip_nonfinite` skips the batch and counts it ("nonfinite").
    """
    if isinstance(model, nn.Module):
        if optimizer is None:
            raise TypeError("train_one_epoch(model, loader, optimizer): a torch net needs its optimizer")
        model = torch_backend.TorchBackend(model, optimizer)
    backend: Backend = model
    backend.train()
    part = dict(partial or {})
    if distributed.active() and torch.distributed.get_rank() != 0:  # the saved sums are already all processes'
        for key in ("loss_sum", "correct", "images"):
            part.pop(key, None)
    # Running sums stay on the device: reading them every step would wait for the GPU each time.
    loss_sum = part["loss_sum"].to(device) if "loss_sum" in part else torch.zeros((), device=device)
    correct = part["correct"].to(device) if "correct" in part else torch.zeros((), dtype=torch.long, device=device)
    images, step = int(part.get("images", 0)), start_step
    done, nonfinite = int(part.get("batches", 0)), int(part.get("nonfinite", 0))
    earlier = float(part.get("seconds", 0.0))
    total, batches, cut, used_lr = len(loader), 0, None, None  # type: ignore[arg-type]
    bad = [] if bad is None else bad
    started = time.perf_counter()
    bar = progress_bar(loader, progress)
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
        rates = list(lr(step)) if lr is not None else None
        loss, logits = backend.loss_and_logits(x, y, step)  # N,K logits
        # one device sync per step: the price of never stepping the optimizer on a NaN/inf loss;
        # data-parallel processes agree here on the loss and on stopping (engine/distributed.py)
        value, halt = distributed.agree(loss, bool(stop))
        now = rates[0] if rates is not None else backend.lr()
        if not math.isfinite(value):
            nonfinite += 1
            refuse_nonfinite(value, step=step, lr=now, skip=skip_nonfinite, count=nonfinite)
        else:
            backend.update(rates)
            used_lr = now
            step += 1
            images += y.shape[0]
            loss_sum += loss.detach().to(device) * y.shape[0]
            correct += (logits.detach().to(device).argmax(dim=1) == y).sum()
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
        counted = torch.tensor(float(images), device=device)
        total_sums = distributed.sum_across(torch.stack([loss_sum.float(), correct.float(), counted]))
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
        "partial": None if cut is None else {"batches": cut, "loss_sum": loss_sum.detach().cpu(),
                                             "correct": correct.detach().cpu(), "images": images,
                                             "nonfinite": nonfinite, "seconds": seconds},
    }
    if skip_nonfinite:
        out["nonfinite"] = nonfinite
    return out


def fit(cfg: TrainConfig, *, on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the training that `cfg` describes; returns the summary: run_dir, best and final
    accuracy, timings, and "history", every epoch's record (metrics.jsonl) to tabulate or plot."""
    with contextlib.ExitStack() as hold:  # the run folder's lock, held to the end (engine/run_folder.py)
        started = time.perf_counter()
        if cfg.backend == "numpy":
            if distributed.launched():
                raise UsageError("the numpy backend trains in one process: run it without torchrun")
            numpy_backend.check_numpy_config(cfg)
            return _fit(cfg, World(), torch.device("cpu"), started, on_epoch, hold)
        world, device = distributed.init_world(resolve_device(cfg.device))
        try:
            return _fit(cfg, world, device, started, on_epoch, hold)
        finally:
            distributed.close_world()


def _fit(cfg: TrainConfig, world: World, device: torch.device, started: float,
         on_epoch: Callable[[dict[str, Any]], None] | None, hold: contextlib.ExitStack) -> dict[str, Any]:
    if cfg.batch_size % world.size:
        raise UsageError(f"batch_size {cfg.batch_size} (the global batch) does not divide among "
                         f"{world.size} processes")
    seed_everything(cfg.seed, cfg.deterministic)
    resume = load_checkpoint(cfg.resume, prefer="last") if cfg.resume else None
    if resume is not None:
        check_resumable(resume)
    source = open_training_data(cfg)
    # the NumPy backend's torch model only describes the net (arguments, checkpoint keys): no weights
    with torch.device("meta") if cfg.backend == "numpy" else contextlib.nullcontext():
        model = build_for_data(cfg, source)
    if resume is not None and (resume["model_name"] != cfg.model or list(resume["classes"]) != list(source.classes)):
        raise UsageError(f"{resume['path']} was trained as {resume['model_name']} on other classes; "
                         "it cannot resume this config")
    pipe = data_pipeline(cfg, model, source, device, world, known=resume)
    train_loader, val_loader, prep = pipe.train, pipe.val, pipe.prep
    if len(train_loader) == 0:  # data-parallel drops the last incomplete global batch
        raise UsageError(f"{cfg.data}: {len(source.split('train'))} training images make no full batch "
                         f"of {cfg.batch_size}")
    micro_batch = -(-train_loader.batch_size // cfg.accum_steps)  # the size each forward sees
    backend = BACKENDS[cfg.backend](cfg, model, device=device, world=world, resume=resume,
                                    input_size=tuple(prep["input_size"]), micro_batch=micro_batch)
    # the first layer's kernels as initialised, kept in every checkpoint (35 k numbers for
    # alexnet2012) so `alexnet viz filters --before-after RUN` can show what training made of them
    init_filters = backend.first_kernels() if resume is None else resume.get("init_filters")
    amp = bf16_switch(cfg.amp, device)

    steps_per_epoch = max(1, len(train_loader))
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps:
        total_steps = min(cfg.max_steps, total_steps)
    plateau = Plateau() if cfg.schedule == "plateau" else None
    epoch, step, best_top1 = 0, 0, -1.0
    first_epoch, earlier = 0, 0.0  # where this session starts, and the seconds the run took before it
    partial: dict[str, Any] | None = None  # the progress of an epoch stopped by a signal
    if resume is not None:
        epoch, step, best_top1 = int(resume["epoch"]), int(resume["step"]), float(resume["best_top1"])
        partial = resume.get("partial")
        first_epoch, earlier = epoch, float(resume.get("elapsed") or 0.0)
        if plateau is not None:
            groups = (resume.get("optimizer") or {}).get("param_groups") or [{}]
            plateau = plateau_from(resume.get("plateau"), base=backend.bases[0], saved_lr=groups[0].get("lr"),
                                   source=str(resume["path"]))
        if epoch >= cfg.epochs:
            raise UsageError(f"{resume['path']} has already trained {epoch} of {cfg.epochs} epochs; "
                             "pass a larger --epochs to continue")

    def lr_at(at: int) -> list[float]:  # each group's lr at global step `at`, under the plateau state now
        return learning_rates(cfg, backend.bases, at, plateau, total_steps=total_steps,
                              steps_per_epoch=steps_per_epoch)

    run_dir = open_run(cfg, resume, world, hold)
    if resume is not None:
        within = f", batch {int(partial['batches']) + 1}" if partial else ""
        log(f"resuming {resume['path']} at epoch {epoch + 1}/{cfg.epochs}{within} (step {step})")
    if world.main:
        save_config(cfg, run_dir / "config.yaml")
    metrics_log = MetricsLog(run_dir, tensorboard=cfg.tensorboard, epoch=epoch, step=step) if world.main else None
    if cfg.backend == "numpy":
        where = "with the NumPy backend on the CPU"
    else:
        where = f"on {device}" if world.size == 1 else f"on {world.size} processes ({device.type}, data-parallel)"
    announce(cfg, source, where, run_dir)

    def checkpoint(metrics: dict[str, Any], best_top1: float, partial: dict[str, Any] | None = None) -> dict[str, Any]:
        state = backend.state()
        for group, lr in zip(state["optimizer"]["param_groups"], lr_at(step)):
            group["lr"] = lr  # the next step's, as a torch scheduler leaves it
        return {
            **state, **prep, "classes": list(source.classes), "data": cfg.data,
            # the lr is a function of the step (and of "plateau"); older checkpoints held a LambdaLR's state
            "step_schedule": None,
            "plateau": asdict(plateau) if plateau is not None else None,
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
        def stopped(stop: StopRequest, where: str) -> Interrupted:
            if world.main and epoch:  # the epochs done get their curves and kernels, as a finished run's
                draw_run_pictures(run_dir, model, backend.first_kernels())
            return interrupted(stop, run_dir, where)

        with stop_on_signals() as stop, explain_out_of_memory(cfg.batch_size, device, amp=amp):
            while epoch < cfg.epochs and not (cfg.max_steps and step >= cfg.max_steps) and not reached(cfg, record):
                set_epoch(train_loader, epoch)
                if world.size > 1:  # each process its own crops, flips and dropout; reproducible per epoch
                    torch.manual_seed((cfg.seed * 1_000_003 + epoch) * 1_000 + world.rank)
                # a resumed half epoch logs the lr its first half started with
                lr = float(partial["lr"]) if partial else lr_at(step)[0]
                backend.begin_epoch(epoch)
                train = train_one_epoch(
                    backend, train_loader, device=device, augment=pipe.augment, lr=lr_at, max_steps=cfg.max_steps,
                    start_step=step, strict=cfg.strict, bad=bad, progress=epoch_label(cfg, epoch + 1), stop=stop,
                    skip_nonfinite=cfg.skip_nonfinite, partial=partial,
                )
                step, partial, lr_end = train.pop("step"), train.pop("partial"), train.pop("lr_last")
                if partial is not None:  # stopped by a signal mid-epoch: save the progress, epoch not counted
                    if world.main:
                        save_checkpoint(run_dir / "last.pt", checkpoint(record, best_top1, {**partial, "lr": lr}))
                    position = f"at step {step} (epoch {epoch + 1}, batch {partial['batches']} of {len(train_loader)})"
                    raise stopped(stop, position)
                train_rates.append(train["images_per_s"])
                val = score(backend, val_loader, pipe.views, cfg, device, len(source.classes),
                            progress=f"validating epoch {epoch + 1}")
                bad.extend(val["bad"])
                # the training images as the test sees them: no augmentation, no dropout
                if pipe.train_eval is not None:
                    clean = score(backend, pipe.train_eval, pipe.views, cfg, device, len(source.classes))
                    train.update(train_eval_loss=clean["loss"], train_eval_top1=clean["top1"])
                epoch += 1
                if plateau is not None:
                    plateau = plateau_after(plateau, val["top1"], cfg)
                record, best_top1 = end_epoch(run_dir, metrics_log, checkpoint, epoch=epoch,
                                              label=epoch_label(cfg, epoch), step=step, lr=lr,
                                              lr_end=lr if lr_end is None else lr_end, train=train, val=val,
                                              best_top1=best_top1)
                if on_epoch is not None:
                    on_epoch(record)
                if reached(cfg, record):
                    log(f"training error {1 - record['train_top1']:.2%} is at or below stop_train_error "
                        f"{cfg.stop_train_error:.2%}: stopping after epoch {epoch}")
                # a signal came during validation or saving
                if distributed.agree(torch.zeros(()), bool(stop))[1] and epoch < cfg.epochs:
                    raise stopped(stop, f"after epoch {epoch}")
    except TrainingDiverged as e:
        raise diverged(e, run_dir) from None
    finally:
        if metrics_log is not None:
            metrics_log.close()

    final, n_val = val, len(source.split("val"))
    if cfg.tta != "center" and n_val:  # nothing to score without val images (said at the start)
        tta_loader, tta_views = tta_pipeline(cfg, source, prep, val_loader.num_workers, device, world)
        with explain_out_of_memory(cfg.batch_size, device, doing=f"evaluating with {cfg.tta}", amp=amp):
            final = score(backend, tta_loader, tta_views, cfg, device, len(source.classes))
        log(f"final evaluation with {cfg.tta}: top1 {final['top1']:.2%} top5 {final['top5']:.2%}")
    test: dict[str, Any] = {}
    test_split = source.split("test")
    # validated on a holdout: the test split, scored once
    if test_split is not source.split("val") and len(test_split):
        for view in dict.fromkeys(("center", cfg.tta)):
            loader, views = tta_pipeline(cfg, source, prep, val_loader.num_workers, device, world, split="test",
                                         tta=view)
            scored = score(backend, loader, views, cfg, device, len(source.classes))
            test[view] = {k: scored[k] for k in ("top1", "top5", "loss")}
            log(f"test split ({len(test_split)} images, scored once) with {view}: "
                f"top1 {scored['top1']:.2%} top5 {scored['top5']:.2%}")
    return finish_run(cfg, run_dir, model, backend.first_kernels(), device, epoch=epoch, step=step, best_top1=best_top1,
                      final=final, train_rates=train_rates, bad=bad, started=started, write=world.main,
                      first_epoch=first_epoch, earlier=earlier, val_images=n_val, test=test)


def score(backend: Backend, loader: Iterable, views: Callable[[torch.Tensor], torch.Tensor], cfg: TrainConfig,
          device: torch.device, num_classes: int, progress: str = "") -> dict[str, Any]:
    """`evaluate` of the backend's net on `loader`'s batches through `views`."""
    return evaluate(backend.eval_model, loader, device=device, num_classes=num_classes, views=views,
                    autocast=backend.autocast, strict=cfg.strict, progress=progress)


def reached(cfg: TrainConfig, record: dict[str, Any]) -> bool:
    """Whether the last epoch's running training error is at or below cfg.stop_train_error (when set)."""
    return (bool(cfg.stop_train_error) and "train_top1" in record
            and 1 - float(record["train_top1"]) <= cfg.stop_train_error)
