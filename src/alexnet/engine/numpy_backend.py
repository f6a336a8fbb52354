"""Training with the from-scratch NumPy nets (alexnet.scratch): `alexnet train --backend numpy`.

The run is the torch engine's in everything but the arithmetic: the same config, data loaders and
batch transforms, progress bar, log line, metrics.jsonl, schedules, checkpoints and pictures
(alexnet.engine.train provides them all). What differs is who computes: every forward pass,
backward pass and SGD update of the training, and every validation forward pass, is NumPy code
(alexnet.scratch); torch only decodes and augments the batches, as it does for the torch backend.

A torch twin of the net is kept beside it, never trained: a torch SGD over its parameters holds
the learning rate that the torch schedules (make_step_schedule, make_plateau_schedule) set, so the
schedules are exactly the torch backend's; and at each checkpoint the NumPy weights and momentum
buffers are copied into the twin and its SGD, so last.pt and best.pt are torch-backend checkpoints
(torch state_dict, torch SGD state): `alexnet eval`, `predict`, `viz` and `export` read them as
any other run, and `--resume` continues them with either backend.

Validation is computed in NumPy as well (softmax, cross-entropy and top-k of the NumPy logits,
probabilities averaged over test-time views as alexnet.engine.evaluate does), so a numpy run's
val_top1 is the NumPy net's accuracy; tests/engine/test_numpy_backend.py checks that `evaluate`
with the torch twin gives the same figure.

Reliability as the torch backend's (alexnet.engine.train): RNG states in every checkpoint, a NaN/inf
loss stops the run or (--skip-nonfinite) skips the batch, and SIGINT/SIGTERM stop after the current
step; but the interrupted epoch's progress is not saved: last.pt stays the last finished epoch's,
and --resume redoes the interrupted epoch from its start (exactly: its order and dropout masks are
functions of (seed, epoch)).

Limits: SGD only (momentum, Nesterov, weight decay, as torch.optim.SGD), CPU only, float32 (no
amp), and the nets that have a NumPy version (alexnet_simple, alexnet_mini, alexnet2012) at their
own input size.
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from alexnet import scratch
from alexnet.config import TrainConfig, save_config, to_dict
from alexnet.data.loader import note_bad, set_epoch
from alexnet.engine.checkpoint import check_resumable, load_checkpoint, model_state
from alexnet.engine.distributed import World
from alexnet.engine.memory import explain_out_of_memory
from alexnet.engine.metrics import MetricsLog
from alexnet.engine.optim import make_optimizer
from alexnet.engine.train import (
    StopRequest,
    announce,
    build_for_data,
    continue_step_schedule,
    current_lr,
    data_pipeline,
    end_epoch,
    epoch_label,
    finish_run,
    log,
    make_plateau_schedule,
    make_step_schedule,
    open_training_data,
    open_run,
    refuse_nonfinite,
    diverged,
    interrupted,
    restore_rng,
    rng_state,
    seed_everything,
    stop_on_signals,
    tta_pipeline,
)
from alexnet.errors import TrainingDiverged, UsageError
from alexnet.scratch import layers as L


def check_numpy_config(cfg: TrainConfig) -> None:
    """Refuse, in one line each, what the NumPy backend cannot do."""
    if cfg.optimizer != "sgd":
        raise UsageError(f"the numpy backend has SGD only: use --optimizer sgd (got {cfg.optimizer})")
    if cfg.device not in ("auto", "cpu"):
        raise UsageError(f"the numpy backend runs on the CPU only: use --device cpu or auto (got {cfg.device})")
    if cfg.amp == "on":  # auto: off, as on any CPU
        raise UsageError("the numpy backend computes in float32 only: drop --amp")
    if cfg.model not in scratch.list_models():
        raise UsageError(f"model {cfg.model!r} has no NumPy version; the numpy backend trains: {', '.join(scratch.list_models())}")
    if cfg.momentum_form != "torch" or cfg.bias_lr_mult != 1 or not cfg.bias_decay:
        raise UsageError("the numpy backend's SGD is torch's form with one lr and decay for all parameters: "
                         "use --momentum-form torch --bias-lr-mult 1 --bias-decay, or --backend torch")
    if cfg.train_eval_images or cfg.stop_train_error or cfg.accum_steps > 1:
        raise UsageError("train_eval_images, stop_train_error and accum_steps are options of the torch backend: use --backend torch")


def smoothed_cross_entropy(logits: np.ndarray, y: np.ndarray, smoothing: float = 0.0) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of logits N,K against labels N and its gradient d loss / d logits (N,K),
    as F.cross_entropy(logits, y, label_smoothing=smoothing): the target is (1-s) one_hot(y) + s/K."""
    loss, cache = L.cross_entropy_forward(logits, y)
    dlogits = L.cross_entropy_backward(1.0, cache)  # (softmax - one_hot) / N
    if smoothing:
        log_probs = cache[0]  # N,K
        n, k = logits.shape
        loss = (1 - smoothing) * loss - smoothing * float(log_probs.mean(axis=1).mean())
        dlogits -= smoothing / (k * n)
        dlogits[np.arange(n), y] += smoothing / n
    return loss, dlogits


def train_one_epoch_numpy(
    net: scratch.Net,
    loader: Iterable,
    opt: scratch.SGD,
    *,
    lr_holder: torch.optim.Optimizer,
    augment: Callable[[torch.Tensor], torch.Tensor],
    rng: np.random.Generator,
    step_schedule: torch.optim.lr_scheduler.LambdaLR | None = None,
    label_smoothing: float = 0.0,
    max_steps: int = 0,
    start_step: int = 0,
    strict: bool = False,
    bad: list | None = None,
    progress: str = "",
    stop: StopRequest | None = None,
    skip_nonfinite: bool = False,
) -> dict[str, Any]:
    """One pass over `loader` with NumPy steps (alexnet.engine.train.train_one_epoch's twin).

    Before each step the lr is read from `lr_holder`, the torch optimizer that the schedules drive.
    `stop` ends the pass after the current step ("interrupted": True); a non-finite loss raises
    TrainingDiverged before the update, or with `skip_nonfinite` skips the batch ("nonfinite").
    """
    nonfinite, cut, used_lr = 0, False, None
    loss_sum, correct, images, step = 0.0, 0, 0, start_step
    bad = [] if bad is None else bad
    started = time.perf_counter()
    bar = tqdm(loader, desc=progress, leave=False, file=sys.stderr, disable=None, dynamic_ncols=True)
    for batch in bar:
        note_bad(batch.bad, bad, strict=strict)
        if batch.labels.numel() == 0:
            continue
        with torch.no_grad():
            x = augment(batch.images).numpy()  # uint8 N,C,R,R -> float32 N,C,S,S
        y = batch.labels.numpy()  # N
        opt.lr = current_lr(lr_holder)
        logits, caches = net.forward(x, train=True, rng=rng)  # N,K
        loss, dlogits = smoothed_cross_entropy(logits, y, label_smoothing)
        if not np.isfinite(loss):
            nonfinite += 1
            refuse_nonfinite(float(loss), step=step, lr=opt.lr, skip=skip_nonfinite, count=nonfinite)
        else:
            opt.step(net.backward(dlogits, caches))
            used_lr = opt.lr
            if step_schedule is not None:
                with warnings.catch_warnings():
                    # lr_holder is never stepped (NumPy does the updates): torch would warn that the
                    # schedule is stepped before the optimizer
                    warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)`")
                    step_schedule.step()
            step += 1
            images += y.shape[0]
            loss_sum += loss * y.shape[0]
            correct += int((logits.argmax(axis=1) == y).sum())
            if step % 10 == 0 or step == start_step + 1:
                rate = images / max(time.perf_counter() - started, 1e-9)
                bar.set_postfix(loss=f"{loss_sum / images:.3f}", acc=f"{correct / images:.3f}",
                                lr=f"{opt.lr:.2g}", ips=f"{rate:.0f}")
            if max_steps and step >= max_steps:
                break
        if stop:
            cut = True
            break
    bar.close()
    seconds = time.perf_counter() - started
    out = {
        "train_loss": loss_sum / images if images else float("nan"),
        "train_top1": correct / images if images else float("nan"),
        "images": images,
        "seconds": seconds,
        "images_per_s": images / seconds if seconds > 0 else 0.0,
        "step": step,
        "lr_last": used_lr,  # the lr of the epoch's last step (None: no step)
        "interrupted": cut,
    }
    if skip_nonfinite:
        out["nonfinite"] = nonfinite
    return out


def evaluate_numpy(net: scratch.Net, loader: Iterable, views: Callable[[torch.Tensor], torch.Tensor], *, strict: bool = False) -> dict[str, Any]:
    """Loss, top-1 and top-5 of the NumPy net (dropout off) on every batch of `loader`, as
    alexnet.engine.evaluate.evaluate computes them: with several views (N,V,C,H,W) the softmax
    outputs are averaged over the views, and the loss is the NLL of the averaged probabilities."""
    loss_sum, correct1, correct5, n = 0.0, 0, 0, 0
    bad: list = []
    for batch in tqdm(loader, desc="validating", leave=False, file=sys.stderr, disable=None, dynamic_ncols=True):
        note_bad(batch.bad, bad, strict=strict)
        if batch.labels.numel() == 0:
            continue
        with torch.no_grad():
            x = views(batch.images).numpy()  # N,C,S,S or N,V,C,S,S
        y = batch.labels.numpy()  # N
        v = x.shape[1] if x.ndim == 5 else 1
        logits = scratch.evaluate_batch(net, x.reshape(-1, *x.shape[-3:]))  # N*V,K
        z = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(z)
        probs /= probs.sum(axis=1, keepdims=True)
        probs = probs.reshape(y.shape[0], v, -1).mean(axis=1)  # N,K
        loss_sum += float(-np.log(np.maximum(probs[np.arange(y.shape[0]), y], 1e-12)).sum())
        top = np.argsort(-probs, axis=1, kind="stable")[:, :5]  # N,min(5,K)
        hit = top == y[:, None]
        correct1 += int(hit[:, 0].sum())
        correct5 += int(hit.any(axis=1).sum())
        n += y.shape[0]
    nan = float("nan")
    return {"loss": loss_sum / n if n else nan, "top1": correct1 / n if n else nan, "top5": correct5 / n if n else nan,
            "n": n, "bad": bad}


def copy_to_torch(net: scratch.Net, opt: scratch.SGD, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """The NumPy weights into the torch twin and the NumPy momentum buffers into its SGD, so that
    their state_dicts are what the torch backend would have saved."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(net.params[name]))
            if name in opt.buffers:
                optimizer.state[p]["momentum_buffer"] = torch.from_numpy(opt.buffers[name].copy())


def copy_from_torch(model: nn.Module, optimizer: torch.optim.Optimizer, net: scratch.Net, opt: scratch.SGD) -> None:
    """The torch twin's weights and its SGD's momentum buffers into the NumPy net and SGD (resume)."""
    net.load_state_dict({name: p.detach().numpy() for name, p in model.named_parameters()})
    opt.buffers = {}
    for name, p in model.named_parameters():
        buf = optimizer.state.get(p, {}).get("momentum_buffer")
        if buf is not None:
            opt.buffers[name] = buf.detach().numpy().astype(net.dtype, copy=True)


def fit_numpy(cfg: TrainConfig, hold: contextlib.ExitStack, *, on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """`alexnet.engine.train.fit` with the NumPy nets: the same run folder, metrics and summary.

    `hold` keeps the run folder's lock until the caller closes it (engine/run_folder.py).
    """
    started = time.perf_counter()
    check_numpy_config(cfg)
    device = torch.device("cpu")
    seed_everything(cfg.seed, cfg.deterministic)
    resume = load_checkpoint(cfg.resume, prefer="last") if cfg.resume else None
    if resume is not None:
        check_resumable(resume)
    source = open_training_data(cfg)
    model = build_for_data(cfg, source)  # the torch twin: its keys, arguments and checkpoint format
    try:
        net = scratch.build(cfg.model, **model.arch_kwargs, seed=cfg.seed)
    except ValueError as e:
        raise UsageError(str(e)) from None
    pipe = data_pipeline(cfg, model, source, device)
    train_loader, val_loader, prep = pipe.train, pipe.val, pipe.prep
    if tuple(prep["input_size"]) != net.input_size:
        raise UsageError(f"the NumPy {cfg.model} takes {'x'.join(map(str, net.input_size))} inputs; "
                         f"drop --image-size (got {prep['input_size'][1]})")

    optimizer = make_optimizer(model, cfg)  # torch SGD over the twin: holds the lr, saved in checkpoints
    opt = scratch.SGD(net.params, lr=cfg.lr)  # its hyper-parameters are set from the torch SGD's below
    steps_per_epoch = max(1, len(train_loader))
    total_steps = cfg.epochs * steps_per_epoch if not cfg.max_steps else min(cfg.max_steps, cfg.epochs * steps_per_epoch)
    step_schedule = make_step_schedule(optimizer, cfg, total_steps, steps_per_epoch)
    plateau = make_plateau_schedule(optimizer, cfg)

    epoch, step, best_top1 = 0, 0, -1.0
    earlier = 0.0  # the seconds the run took before this session
    if resume is None:
        copy_to_torch(net, opt, model, optimizer)  # the twin starts from the NumPy init
        init_filters = torch.from_numpy(net.params["features.conv1.weight"].copy())
    else:
        if resume["model_name"] != cfg.model or list(resume["classes"]) != list(source.classes):
            raise UsageError(f"{resume['path']} was trained as {resume['model_name']} on other classes; it cannot resume this config")
        if resume.get("partial"):
            raise UsageError(f"{resume['path']} was saved mid-epoch by the torch backend; finish that epoch with --backend torch")
        saved = (resume.get("optimizer") or {}).get("param_groups") or [{}]
        if "momentum" not in saved[0] or "betas" in saved[0]:
            raise UsageError(f"{resume['path']} was not trained with SGD; the numpy backend cannot continue its optimizer")
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        for sched, key in ((step_schedule, "step_schedule"), (plateau, "plateau")):
            if sched is not None and resume.get(key):
                sched.load_state_dict(resume[key])
        continue_step_schedule(step_schedule, optimizer)
        copy_from_torch(model, optimizer, net, opt)
        init_filters = resume.get("init_filters")
        epoch, step, best_top1 = int(resume["epoch"]), int(resume["step"]), float(resume["best_top1"])
        earlier = float(resume.get("elapsed") or 0.0)
        if epoch >= cfg.epochs:
            raise UsageError(f"{resume['path']} has already trained {epoch} of {cfg.epochs} epochs; pass a larger --epochs to continue")
    # the torch SGD's (on resume, as saved: torch's load_state_dict restores them)
    group = optimizer.param_groups[0]
    opt.momentum, opt.weight_decay = group["momentum"], group["weight_decay"]
    opt.nesterov, opt.dampening = group["nesterov"], group["dampening"]
    run_dir = open_run(cfg, resume, World(), hold)
    if resume is not None:
        log(f"resuming {resume['path']} at epoch {epoch + 1}/{cfg.epochs} (step {step})")
    save_config(cfg, run_dir / "config.yaml")
    metrics_log = MetricsLog(run_dir, tensorboard=cfg.tensorboard, epoch=epoch, step=step)
    announce(cfg, source, "with the NumPy backend on the CPU", run_dir)

    def checkpoint(metrics: dict[str, Any], best_top1: float) -> dict[str, Any]:
        copy_to_torch(net, opt, model, optimizer)
        return {
            **model_state(model), **prep, "classes": list(source.classes), "data": cfg.data,
            "optimizer": optimizer.state_dict(),
            "step_schedule": step_schedule.state_dict() if step_schedule else None,
            "plateau": plateau.state_dict() if plateau else None,
            "scaler": None,
            "epoch": epoch, "step": step, "best_top1": best_top1, "config": to_dict(cfg), "metrics": metrics,
            "init_filters": init_filters, "rng": rng_state(), "partial": None,
            "elapsed": earlier + time.perf_counter() - started,
        }

    bad: list = list(pipe.bad)  # files found unreadable while caching the splits
    val: dict[str, Any] = {}
    train_rates: list[float] = []
    restore_rng(resume.get("rng") if resume is not None else None)  # as when the checkpoint was written
    try:
        with stop_on_signals() as stop, explain_out_of_memory(cfg.batch_size, "cpu"):
            while epoch < cfg.epochs and not (cfg.max_steps and step >= cfg.max_steps):
                set_epoch(train_loader, epoch)
                lr = current_lr(optimizer)
                train = train_one_epoch_numpy(
                    net, train_loader, opt, lr_holder=optimizer, augment=pipe.augment,
                    rng=np.random.default_rng([cfg.seed % 2**63, epoch]),  # dropout masks; per epoch, so a resumed run draws the same
                    step_schedule=step_schedule, label_smoothing=cfg.label_smoothing, max_steps=cfg.max_steps, start_step=step,
                    strict=cfg.strict, bad=bad, progress=epoch_label(cfg, epoch + 1),
                    stop=stop, skip_nonfinite=cfg.skip_nonfinite,
                )
                step, lr_end = train.pop("step"), train.pop("lr_last")
                if train.pop("interrupted"):  # this epoch's progress is dropped: resume redoes it
                    raise interrupted(stop, run_dir, f"in epoch {epoch + 1}", saved=f"epoch {epoch + 1} will be redone from its start;"
                                      f" the last finished epoch ({epoch}) is in")
                train_rates.append(train["images_per_s"])
                val = evaluate_numpy(net, val_loader, pipe.views, strict=cfg.strict)
                bad.extend(val["bad"])
                epoch += 1
                if plateau is not None:
                    plateau.step(val["top1"])
                record, best_top1 = end_epoch(run_dir, metrics_log, checkpoint, epoch=epoch, label=epoch_label(cfg, epoch), step=step, lr=lr,
                                              lr_end=lr if lr_end is None else lr_end, train=train, val=val, best_top1=best_top1)
                if on_epoch is not None:
                    on_epoch(record)
                if stop and epoch < cfg.epochs:
                    raise interrupted(stop, run_dir, f"after epoch {epoch}")
    except TrainingDiverged as e:
        raise diverged(e, run_dir) from None
    finally:
        metrics_log.close()

    first_epoch = int(resume["epoch"]) if resume is not None else 0
    final = val
    if cfg.tta != "center":
        tta_loader, tta_views = tta_pipeline(cfg, source, prep, val_loader.num_workers, device)
        final = evaluate_numpy(net, tta_loader, tta_views, strict=cfg.strict)
        log(f"final evaluation with {cfg.tta}: top1 {final['top1']:.2%} top5 {final['top5']:.2%}")
    copy_to_torch(net, opt, model, optimizer)
    return finish_run(cfg, run_dir, model, device, epoch=epoch, step=step, best_top1=best_top1, final=final,
                      train_rates=train_rates, bad=bad, started=started, first_epoch=first_epoch, earlier=earlier,
                      val_images=len(source.split("val")))
