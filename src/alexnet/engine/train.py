"""Training: `fit(config)` runs a whole training run; `train_one_epoch` is one pass over the data.

The paper's recipe (section 5): SGD with momentum 0.9 and weight decay 0.0005 on batches of 128,
learning rate 0.01 divided by 10 when the validation error stopped improving (three times in
all). Other recipes (cosine, one-cycle, AdamW, label smoothing) are options of the same loop.

`fit` reads top to bottom as torchvision's references/classification/train.py `main` does: the
processes and the device, the data and the model, the `Plan` (every "auto" decided once), the
backend that computes (engine/backends.py: torch, or the from-scratch NumPy nets), the run
folder, then one plain loop of `train_one_epoch`, validation and the checkpoint dict, and last
the final scores. Signals, RNG states and divergence follow docs/reliability.md.

Data flows one way: dataset -> transforms -> loader -> model -> this engine -> the run folder
(config.yaml, metrics.jsonl, tb/, last.pt, best.pt, bad_images.txt), which eval and predict read.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from alexnet.config import TrainConfig, resolved_val_images, save_config, to_dict
from alexnet.data import DataSource, open_dataset
from alexnet.data.datasets import hold_out, limit, take
from alexnet.data.decoded import cached_splits
from alexnet.data.loader import Loader, Shard, make_loader, note_bad, set_epoch
from alexnet.data.stats import pixel_stats_for
from alexnet.data.transforms import EvalViews, TrainAugment, eval_prepare, prep_pca, prep_stats, small_shift
from alexnet.engine import distributed, finetune
from alexnet.engine.backends import Backend, TorchBackend, build_backend, check_numpy_config
from alexnet.engine.checkpoint import load_checkpoint, restore_rng, rng_state, save_checkpoint
from alexnet.engine.checks import check_resumable
from alexnet.engine.console import (
    StopRequest,
    announce,
    bars_shown,
    diverged,
    epoch_label,
    epoch_line,
    explain_out_of_memory,
    interrupted,
    log,
    progress_line,
    refuse_nonfinite,
    stop_on_signals,
)
from alexnet.engine.console import progress as progress_bar
from alexnet.engine.distributed import World
from alexnet.engine.evaluate import evaluate
from alexnet.engine.fast import Plan, make_plan, resolve_device
from alexnet.engine.optim import Plateau, learning_rates, plateau_after, plateau_from
from alexnet.engine.run_folder import MetricsLog, open_run, read_metrics, write_bad_images
from alexnet.errors import Interrupted, TrainingDiverged, UsageError
from alexnet.models import build_model, check_input_size


@dataclass
class State:
    """Where the run is: what a checkpoint saves and `--resume` restores."""

    epoch: int = 0  # epochs finished
    step: int = 0  # optimizer steps taken
    best_top1: float = -1.0
    plateau: Plateau | None = None  # the plateau schedule's state (None: another schedule)
    partial: dict[str, Any] | None = None  # the progress of an epoch stopped by a signal
    record: dict[str, Any] = field(default_factory=dict)  # the last finished epoch's metrics
    bad: list = field(default_factory=list)  # unreadable images met so far
    first_epoch: int = 0  # where this session started
    earlier: float = 0.0  # seconds the sessions before this one took


class Pipeline(NamedTuple):
    """The loaders and the on-device batch transforms of a run, and how its inputs were prepared."""

    train: Loader
    val: Loader
    augment: TrainAugment  # uint8 N,C,R,R -> float N,C,S,S, random
    views: EvalViews  # uint8 N,C,R,R -> float N,C,S,S, the centre view
    prep: dict[str, Any]  # saved in checkpoints: input_size, mean, std, augment, translate, input_norm, mean_image, pca
    train_eval: Loader | None = None  # a fixed subset of the training images, evaluated as the test is


def fit(cfg: TrainConfig, *, on_epoch: Callable[[dict[str, Any]], None] | None = None,
        on_end: Callable[[Path, nn.Module, torch.Tensor, dict | None], None] | None = None,
        init: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the training that `cfg` describes; returns the summary: run_dir, best and final
    accuracy, timings, and "history", every epoch's record (metrics.jsonl) to tabulate or plot.

    `on_epoch(record)` is called after each epoch; `on_end(run_dir, model, kernels, final)` when the
    run ends (`final`: its closing top-1, epoch and views), or is stopped by a signal after an epoch
    (`final` None); alexnet.fit draws the run's pictures there. `init`: the weights cfg.init_from
    names, as alexnet.inference.weights loads them (a fine-tune: engine/finetune.py)."""
    started = time.perf_counter()
    with contextlib.ExitStack() as hold:  # the processes and the run folder's lock, held to the end
        # the processes and the device
        if cfg.backend == "numpy":
            if distributed.launched():
                raise UsageError("the numpy backend trains in one process: run it without torchrun")
            check_numpy_config(cfg)
            world, device = World(), torch.device("cpu")
        else:
            world, device = distributed.init_world(resolve_device(cfg.device))
            hold.callback(distributed.close_world)
        if cfg.batch_size % world.size:
            raise UsageError(f"batch_size {cfg.batch_size} (the global batch) does not divide among "
                             f"{world.size} processes")
        seed_everything(cfg.seed, cfg.deterministic)
        resume = load_checkpoint(cfg.resume, prefer="last") if cfg.resume else None
        if resume is not None:
            check_resumable(resume)
        # a fine-tune: the weights' net and input preparation, decided here once for all that follows
        cfg, start = finetune.adopt(cfg, init, resume)

        # the data, the net, the plan and the backend
        source = finetune.with_stats(open_training_data(cfg), start)
        with torch.device("meta") if cfg.backend == "numpy" else contextlib.nullcontext():
            model = build_for_data(cfg, source)  # the NumPy backend's describes the net only: no weights
        if resume is not None and (resume["model_name"], list(resume["classes"])) != (cfg.model, list(source.classes)):
            raise UsageError(f"{resume['path']} was trained as {resume['model_name']} on other classes; "
                             "it cannot resume this config")
        init_from = finetune.transplant(model, cfg, start, list(source.classes), resume)
        plan = make_plan(cfg, world, device, source, model)
        hold.callback(torch.set_num_threads, torch.get_num_threads())  # as it was, for a notebook's next cell
        torch.set_num_threads(plan.threads)
        pipe, bad = data_pipeline(plan, source, resume or finetune.known_stats(start))
        if len(pipe.train) == 0:  # data-parallel drops the last incomplete global batch
            raise UsageError(f"{cfg.data}: {len(source.split('train'))} training images make no full batch "
                             f"of {cfg.batch_size}")
        steps = len(pipe.train)  # the images left once the unreadable ones were dropped while caching
        plan = replace(plan, steps_per_epoch=steps, total_steps=min(cfg.max_steps or math.inf, cfg.epochs * steps))
        backend = build_backend(plan, model, resume)
        # conv1's kernels as initialised, kept in every checkpoint for `alexnet viz filters --before-after`
        init_filters = backend.first_kernels() if resume is None else resume.get("init_filters")
        state = State(plateau=Plateau() if cfg.schedule == "plateau" else None, bad=bad)
        if resume is not None:
            state = resumed_state(resume, cfg, backend.bases, bad)

        # the run folder
        run_dir = open_run(cfg, resume, world, hold)
        if resume is not None:
            within = f", batch {int(state.partial['batches']) + 1}" if state.partial else ""
            log(f"resuming {resume['path']} at epoch {state.epoch + 1}/{cfg.epochs}{within} (step {state.step})")
        if world.main:
            save_config(cfg, run_dir / "config.yaml")
        metrics_log = None
        if world.main:
            metrics_log = hold.enter_context(contextlib.closing(
                MetricsLog(run_dir, tensorboard=cfg.tensorboard, epoch=state.epoch, step=state.step)))
        where = ("with the NumPy backend on the CPU" if cfg.backend == "numpy" else f"on {device}" if world.size == 1
                 else f"on {world.size} processes ({device.type}, data-parallel)")
        where += f" ({plan.threads} CPU thread{'' if plan.threads == 1 else 's'})" if device.type == "cpu" else ""
        announce(cfg, source, where, run_dir, val_images=plan.val_images)

        def checkpoint(partial: dict[str, Any] | None = None) -> dict[str, Any]:
            entries = backend.state()
            for group, lr in zip(entries["optimizer"]["param_groups"], lr_at(plan, backend, state, state.step)):
                group["lr"] = lr  # the next step's, as a torch scheduler leaves it
            return {
                **entries, **pipe.prep, "classes": list(source.classes), "data": cfg.data,
                "step_schedule": None,  # the lr is a function of the step and "plateau"
                "plateau": asdict(state.plateau) if state.plateau is not None else None,
                "epoch": state.epoch, "step": state.step, "best_top1": state.best_top1, "config": to_dict(cfg),
                "metrics": state.record, "init_filters": init_filters, "rng": rng_state(), "partial": partial,
                "elapsed": state.earlier + time.perf_counter() - started, "init_from": init_from,
            }

        def stopped(stop: StopRequest, where: str) -> Interrupted:
            if world.main and state.epoch and on_end is not None:  # the epochs done get their pictures
                on_end(run_dir, model, backend.first_kernels(), None)
            return interrupted(stop, run_dir, where)

        # the loop: the RNG states as the checkpoint left them (building the net drew from them)
        restore_rng(resume.get("rng") if resume is not None else None)
        val: dict[str, Any] = {}
        rates: list[float] = []  # each epoch's training images/s
        try:
            with stop_on_signals() as stop, explain_out_of_memory(cfg.batch_size, device, amp=plan.amp):
                while (state.epoch < cfg.epochs and not (cfg.max_steps and state.step >= cfg.max_steps)
                       and not reached(cfg, state.record)):
                    set_epoch(pipe.train, state.epoch)
                    if world.size > 1:  # each process its own crops, flips and dropout; reproducible per epoch
                        torch.manual_seed((cfg.seed * 1_000_003 + state.epoch) * 1_000 + world.rank)
                    # a resumed half epoch logs the lr its first half started with
                    lr = float(state.partial["lr"]) if state.partial else lr_at(plan, backend, state, state.step)[0]
                    backend.begin_epoch(state.epoch)
                    train = train_one_epoch(backend, pipe.train, augment=pipe.augment, plan=plan, state=state,
                                            stop=stop)
                    if state.partial is not None:  # stopped by a signal mid-epoch: save the progress
                        if world.main:
                            save_checkpoint(run_dir / "last.pt", checkpoint({**state.partial, "lr": lr}))
                        raise stopped(stop, f"at step {state.step} (epoch {state.epoch + 1}, batch "
                                            f"{state.partial['batches']} of {len(pipe.train)})")
                    rates.append(train["images_per_s"])
                    val = score(backend, pipe.val, pipe.views, plan, progress=f"validating epoch {state.epoch + 1}",
                                stop=stop)
                    state.bad.extend(val["bad"])
                    if pipe.train_eval is not None and not val["stopped"]:  # the training images as the test sees them
                        clean = score(backend, pipe.train_eval, pipe.views, plan, stop=stop)
                        train.update(train_eval_loss=clean["loss"], train_eval_top1=clean["top1"])
                        val["stopped"] = clean["stopped"]
                    if val["stopped"]:  # a signal while validating: keep the epoch's training, validate on resume
                        if world.main:
                            save_checkpoint(run_dir / "last.pt", checkpoint(trained(train, len(pipe.train), lr)))
                        raise stopped(stop, f"while validating epoch {state.epoch + 1}")
                    state.epoch += 1
                    if state.plateau is not None:
                        state.plateau = plateau_after(state.plateau, val["top1"], cfg)
                    improved = val["top1"] > state.best_top1
                    state.best_top1 = max(state.best_top1, val["top1"])
                    lr_end = train.pop("lr_last")
                    state.record = {"epoch": state.epoch, "step": state.step, "lr": lr,
                                    "lr_end": lr if lr_end is None else lr_end, **train, "val_loss": val["loss"],
                                    "val_top1": val["top1"], "val_top5": val["top5"]}
                    if metrics_log is not None:
                        metrics_log.write(state.record, state.step)
                        entries = checkpoint()
                        save_checkpoint(run_dir / "last.pt", entries)
                        if improved:
                            save_checkpoint(run_dir / "best.pt", entries)
                        log(epoch_line(cfg, state.record, val))
                    if on_epoch is not None:
                        on_epoch(state.record)
                    if reached(cfg, state.record):
                        log(f"training error {1 - state.record['train_top1']:.2%} is at or below stop_train_error "
                            f"{cfg.stop_train_error:.2%}: stopping after epoch {state.epoch}")
                    # a signal came during validation or saving
                    if distributed.agree(torch.zeros(()), bool(stop))[1] and state.epoch < cfg.epochs:
                        raise stopped(stop, f"after epoch {state.epoch}")
        except TrainingDiverged as e:
            raise diverged(e, run_dir) from None

        # the final scores: the run's own test-time views, and the test split once where val was a holdout
        final, n_val = val, len(source.split("val"))
        if cfg.tta != "center" and n_val:
            loader, views = eval_data(plan, source, pipe.prep, "val", cfg.tta)
            with explain_out_of_memory(cfg.batch_size, device, doing=f"evaluating with {cfg.tta}", amp=plan.amp):
                final = score(backend, loader, views, plan)
            log(f"final evaluation with {cfg.tta}: top1 {final['top1']:.2%} top5 {final['top5']:.2%}")
        test: dict[str, Any] = {}
        if source.split("test") is not source.split("val") and len(source.split("test")):
            for view in dict.fromkeys(("center", cfg.tta)):
                scored = score(backend, *eval_data(plan, source, pipe.prep, "test", view), plan)
                test[view] = {k: scored[k] for k in ("top1", "top5", "loss")}
                log(f"test split ({len(source.split('test'))} images, scored once) with {view}: "
                    f"top1 {scored['top1']:.2%} top5 {scored['top5']:.2%}")
        if world.main and on_end is not None:
            headline = {"epoch": state.epoch, "top1": final["top1"], "view": cfg.tta} if "top1" in final else None
            on_end(run_dir, model, backend.first_kernels(), headline)
        if world.main and state.bad:
            n = write_bad_images(run_dir, state.bad)
            log(f"skipped {n} unreadable image(s); listed in {run_dir / 'bad_images.txt'}")
        return {
            "run_dir": str(run_dir), "model": cfg.model, "data": cfg.data, "device": str(device),
            "epochs": state.epoch, "steps": state.step, "best_top1": state.best_top1,
            "final_top1": final.get("top1", math.nan), "final_top5": final.get("top5", math.nan),
            "final_loss": final.get("loss", math.nan), "tta": cfg.tta, "num_classes": len(source.classes),
            "threads": plan.threads,
            "train_images_per_s": float(np.median(rates)) if rates else 0.0,
            "bad_images": len({b.path for b in state.bad}), "val_images": n_val, "test": test,
            "history": read_metrics(run_dir) if world.main else [],  # every epoch's record, resumed sessions' too
            "first_epoch": state.first_epoch, "seconds": time.perf_counter() - started,
            "total_seconds": state.earlier + time.perf_counter() - started,
        }


def train_one_epoch(model: Backend | nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer | None = None, *,
                    augment: Callable[[torch.Tensor], torch.Tensor] | None = None, plan: Plan | None = None,
                    state: State | None = None, stop: StopRequest | None = None) -> dict[str, Any]:
    """One pass over `loader` (or until the config's max_steps); returns the epoch's training metrics.

    `model` is a Backend, or a torch net with its `optimizer` (plain float32 steps at the
    optimizer's lr, on the net's device, when there is no `plan`). `augment` turns each uint8
    batch into the net's input on the device. `state` is advanced in place: its step, its
    unreadable images, and "partial", set when `stop` (a signal) ends the pass early: the
    epoch's progress, which the next call continues from the next batch. A non-finite loss
    raises TrainingDiverged before the update, or with skip_nonfinite skips the batch.
    """
    backend = TorchBackend(model, optimizer) if isinstance(model, nn.Module) else model
    if isinstance(model, nn.Module) and optimizer is None:
        raise TypeError("train_one_epoch(model, loader, optimizer): a torch net needs its optimizer")
    cfg = plan.cfg if plan is not None else None
    device = plan.device if plan is not None else next(backend.eval_model.parameters()).device
    state = state if state is not None else State()
    part = dict(state.partial or {})
    if distributed.active() and torch.distributed.get_rank() != 0:  # the saved sums are already all processes'
        part = {k: v for k, v in part.items() if k not in ("loss_sum", "correct", "images")}
    # running sums stay on the device: reading them every step would wait for the GPU each time
    loss_sum = part["loss_sum"].to(device) if "loss_sum" in part else torch.zeros((), device=device)
    correct = part["correct"].to(device) if "correct" in part else torch.zeros((), dtype=torch.long, device=device)
    images, start_step, done = int(part.get("images", 0)), state.step, int(part.get("batches", 0))
    nonfinite, earlier = int(part.get("nonfinite", 0)), float(part.get("seconds", 0.0))
    batches, cut, used_lr, started = 0, None, None, time.perf_counter()
    label = epoch_label(cfg, state.epoch + 1) if cfg is not None else ""
    every = cfg.progress_every if cfg is not None and not bars_shown() else 0.0  # plain lines where no bar is drawn
    next_line = started + every
    backend.train()
    bar = progress_bar(loader, label)
    for batch in bar:
        batches += 1
        if batches <= done:  # trained before the interruption: same order (seed, epoch), nothing drawn
            continue
        note_bad(batch.bad, state.bad, strict=cfg is not None and cfg.strict)
        if distributed.any_across(batch.labels.numel() == 0, device):  # every image unreadable, here or in
            continue  # another process: all skip the step together, or DDP's all-reduce would wait forever
        x = batch.images.to(device, non_blocking=True)  # uint8 N,C,R,R
        x = augment(x) if augment is not None else x  # float N,C,S,S
        y = batch.labels.to(device, non_blocking=True)  # N
        rates = lr_at(plan, backend, state, state.step) if plan is not None else None
        loss, logits = backend.loss_and_logits(x, y, state.step)  # N,K logits
        # one device sync per step: the price of never stepping the optimizer on a NaN/inf loss;
        # data-parallel processes agree here on the loss and on stopping (engine/distributed.py)
        value, halt = distributed.agree(loss, bool(stop))
        now = rates[0] if rates is not None else backend.lr()
        if not math.isfinite(value):
            nonfinite += 1
            refuse_nonfinite(value, step=state.step, lr=now, skip=cfg is not None and cfg.skip_nonfinite,
                             count=nonfinite)
        else:
            backend.update(rates)
            used_lr, state.step, images = now, state.step + 1, images + y.shape[0]
            loss_sum += loss.detach().to(device) * y.shape[0]
            correct += (logits.detach().to(device).argmax(dim=1) == y).sum()
            if state.step % 10 == 0 or state.step == start_step + 1:
                bar.set_postfix(loss=f"{float(loss_sum) / images:.3f}", acc=f"{int(correct) / images:.3f}",
                                lr=f"{used_lr:.2g}", ips=f"{images / max(time.perf_counter() - started, 1e-9):.0f}")
            if every and (now_s := time.perf_counter()) >= next_line:
                per_batch = (now_s - started) / max(batches - done, 1)
                log(progress_line(label, batch=batches, batches=len(loader), step=state.step,  # type: ignore[arg-type]
                                  loss=float(loss_sum) / images, rate=images / max(now_s - started, 1e-9),
                                  eta=per_batch * (len(loader) - batches)))  # type: ignore[arg-type]
                next_line = now_s + every
            if cfg is not None and cfg.max_steps and state.step >= cfg.max_steps:
                break
        if (halt if distributed.active() else stop) and batches < len(loader):  # type: ignore[arg-type]
            cut = batches
            break
    bar.close()
    if distributed.active():  # the epoch's figures over all processes' images
        sums = distributed.sum_across(torch.stack([loss_sum.float(), correct.float(),
                                                   torch.tensor(float(images), device=device)]))
        loss_sum, correct, images = sums[0], sums[1].long(), int(sums[2])
    seconds = earlier + time.perf_counter() - started
    state.partial = None if cut is None else {
        "batches": cut, "loss_sum": loss_sum.detach().cpu(), "correct": correct.detach().cpu(), "images": images,
        "nonfinite": nonfinite, "seconds": seconds}
    out = {"train_loss": float(loss_sum) / images if images else math.nan,
           "train_top1": int(correct) / images if images else math.nan, "images": images, "seconds": seconds,
           "images_per_s": images / seconds if seconds > 0 else 0.0,
           "lr_last": used_lr}  # the lr of the epoch's last step (None: no step)
    if cfg is not None and cfg.skip_nonfinite:
        out["nonfinite"] = nonfinite
    return out


def lr_at(plan: Plan, backend: Backend, state: State, step: int) -> list[float]:
    """Each parameter group's lr at global `step`, under the plateau state now."""
    return learning_rates(plan.cfg, backend.bases, step, state.plateau, total_steps=plan.total_steps,
                          steps_per_epoch=plan.steps_per_epoch)


def score(backend: Backend, loader: Iterable, views: Callable[[torch.Tensor], torch.Tensor], plan: Plan,
          progress: str = "", stop: StopRequest | None = None) -> dict[str, Any]:
    """`evaluate` of the backend's net on `loader`'s batches through `views` (cut short by `stop`)."""
    return evaluate(backend.eval_model, loader, device=plan.device, num_classes=backend.eval_model.num_classes,
                    views=views, autocast=backend.autocast, strict=plan.cfg.strict, progress=progress, stop=stop)


def trained(train: dict[str, Any], batches: int, lr: float) -> dict[str, Any]:
    """A whole epoch's training as the progress ("partial") a resume continues from: every batch
    done, its sums kept, so the resumed run skips them and validates."""
    images = int(train["images"])
    return {"batches": max(batches, 1), "images": images, "nonfinite": int(train.get("nonfinite", 0)),
            "seconds": float(train["seconds"]), "lr": lr,
            "loss_sum": torch.tensor(float(train["train_loss"]) * images if images else 0.0),
            "correct": torch.tensor(round(float(train["train_top1"]) * images) if images else 0)}


def reached(cfg: TrainConfig, record: dict[str, Any]) -> bool:
    """Whether the last epoch's running training error is at or below cfg.stop_train_error (when set)."""
    return (bool(cfg.stop_train_error) and "train_top1" in record
            and 1 - float(record["train_top1"]) <= cfg.stop_train_error)


# ---- the data and the net: what `fit` reads and builds before the loop

def open_training_data(cfg: TrainConfig) -> DataSource:
    """The dataset cfg.data names, with its holdout, cut to cfg.train_images / the val images to
    score; refuses an empty training split."""
    source = hold_out(open_dataset(cfg.data, seed=cfg.seed, val_fraction=cfg.val_fraction), cfg.holdout)
    source = limit(source, train=cfg.train_images, val=resolved_val_images(cfg))
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


def data_pipeline(plan: Plan, source: DataSource, known: dict[str, Any] | None = None) -> tuple[Pipeline, list]:
    """The run's loaders, batch transforms and preparation record, and the unreadable files met
    while caching the splits; `known` is a resumed checkpoint, whose pixel statistics are reused."""
    cfg, world, (channels, size, _) = plan.cfg, plan.world, plan.input_size
    # pixels of augment small's reflected border, checked against the side before any data is read
    shift = small_shift(size, None if cfg.translate < 0 else cfg.translate) if cfg.augment == "small" else None
    (train_split, val_split), bad = cached_splits(source, plan.prepare, cache=plan.cache_images, workers=plan.workers,
                                                  strict=cfg.strict, decode_on=plan.decode_on)

    def loader(split: Any, shuffle: bool) -> Loader:
        shard = Shard(world.rank, world.size, cfg.batch_size if shuffle else None)
        return make_loader(split, plan.prepare, batch_size=cfg.batch_size, shuffle=shuffle, workers=plan.workers,
                           seed=cfg.seed, pin_memory=plan.device.type == "cuda", shard=shard, device=plan.device,
                           decode_on=plan.decode_on)

    prep: dict[str, Any] = {"input_size": list(plan.input_size), "mean": list(source.mean), "std": list(source.std),
                            "augment": cfg.augment, "translate": shift, "input_norm": plan.input_norm,
                            "mean_image": None, "pca": None}
    if plan.input_norm == "mean_image" or (cfg.augment == "paper" and cfg.lighting > 0):
        stats = pixel_stats_for(train_split, plan.prepare, known, workers=plan.workers, decode_on=plan.decode_on)
        prep["pca"] = {"eigval": stats.eigval, "eigvec": stats.eigvec}
        if plan.input_norm == "mean_image":
            # mean/std that turn (x/255 - mean)/std into x minus the mean image's channel means: what a
            # consumer that knows only per-channel statistics (an exported file's user) can apply
            mean = (stats.mean_image.mean(dim=(1, 2)) / 255).tolist()
            prep.update(mean_image=stats.mean_image, mean=mean, std=[1 / 255] * channels)
    on = dict(size=size, channels=channels, channels_last=plan.channels_last, **prep_stats(prep))
    augment = TrainAugment(cfg.augment, lighting=cfg.lighting, flip=cfg.flip, pca=prep_pca(prep), translate=shift,
                           **on).to(plan.device)
    views = EvalViews(tta="center", **on).to(plan.device)
    train_eval = loader(take(train_split, cfg.train_eval_images), False) if cfg.train_eval_images else None
    return Pipeline(loader(train_split, True), loader(val_split, False), augment, views, prep, train_eval), bad


def eval_data(plan: Plan, source: DataSource, prep: dict[str, Any], split: str, tta: str) -> tuple[Loader, EvalViews]:
    """The loader of `split` and the views of an evaluation with `tta`."""
    cfg, (channels, size, _) = plan.cfg, plan.input_size
    views = EvalViews(size=size, channels=channels, tta=tta, **prep_stats(prep)).to(plan.device)
    prepare = eval_prepare(cfg.augment, size=size, channels=channels, tta=tta, translate=prep.get("translate"))
    loader = make_loader(source.split(split), prepare, batch_size=cfg.batch_size, shuffle=False, workers=plan.workers,
                         seed=cfg.seed, shard=Shard(plan.world.rank, plan.world.size))
    return loader, views


def resumed_state(resume: dict[str, Any], cfg: TrainConfig, bases: list[float], bad: list) -> State:
    """The State a checkpoint saved; refuses one that has trained all of cfg.epochs already."""
    epoch, elapsed = int(resume["epoch"]), float(resume.get("elapsed") or 0.0)
    plateau = None
    if cfg.schedule == "plateau":
        groups = (resume.get("optimizer") or {}).get("param_groups") or [{}]
        plateau = plateau_from(resume.get("plateau"), base=bases[0], saved_lr=groups[0].get("lr"),
                               source=str(resume["path"]))
    if epoch >= cfg.epochs:
        raise UsageError(f"{resume['path']} has already trained {epoch} of {cfg.epochs} epochs; "
                         "pass a larger --epochs to continue")
    return State(epoch=epoch, step=int(resume["step"]), best_top1=float(resume["best_top1"]), plateau=plateau,
                 partial=resume.get("partial"), record=dict(resume.get("metrics") or {}), bad=bad,
                 first_epoch=epoch, earlier=elapsed)


# ---- seeds: every checkpoint holds the RNG states (engine/checkpoint.py) and the data order is
# a function of (seed, epoch), so on the CPU with --deterministic a resumed run ends bit for bit
# where the uninterrupted one does (docs/reliability.md)

def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
