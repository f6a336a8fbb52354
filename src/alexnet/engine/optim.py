"""The optimizer of a run and its learning-rate schedule.

The optimizer: SGD (torch's or the paper's momentum form) or AdamW, biases in their own group.
The schedule is a plain function of the global step and of the plateau state
(`learning_rates`), not something a torch optimizer or lr_scheduler holds: the training loop
(engine/train.py) asks it for each step's rates and hands them to the backend, torch's or
NumPy's alike, and a checkpoint needs only the step and the small `Plateau` record to continue.

Section 5 of the paper writes the update of weight w with learning rate eps as

    v <- 0.9 v - 0.0005 eps w - eps dL/dw        w <- w + v

and cuda-convnet applies it so (cuda-convnet2: cudaconvnet/src/weights.cu, Weights::update;
Caffe's src/caffe/solvers/sgd_solver.cpp is the same with eps inside the velocity). torch's SGD
keeps the velocity in gradient units instead, v <- m v + g + wd w, w <- w - eps v. With a constant
eps the two are one update (torch's eps*v is the paper's -v); after an lr change they differ:
torch's form rescales the stored momentum at once by the new eps, the paper's keeps it, so the
steps after a /10 drop shrink over about 1/(1-m) = 10 steps instead of at once
(benchmarks/momentum_form.py measures it on a training run). `momentum_form: paper` gives the
paper's form (`PaperSGD`); `torch` keeps torch's (fused on CUDA).

Biases: in cuda-convnet's layer-params files every layer has epsB = 2 epsW and no weight decay on
the biases (wc is applied to weights only), and Caffe's bvlc_alexnet gives biases lr_mult 2 and
decay_mult 0. `bias_lr_mult` and `bias_decay` set them; the paper preset uses 2 and off. Group 0
always holds the weights, so the lr logged is the weights'.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from alexnet.config import TrainConfig
from alexnet.engine.finetune import frozen_parameters, head_parameters
from alexnet.errors import UsageError


class PaperSGD(torch.optim.Optimizer):
    """SGD with momentum in section 5's form: v <- m v - wd lr w - lr g; w <- w + v (velocity in weight units)."""

    def __init__(self, params: Iterable, lr: float, momentum: float = 0.9, weight_decay: float = 0.0) -> None:
        if lr <= 0 or not 0 <= momentum < 1 or weight_decay < 0:
            raise ValueError(f"bad PaperSGD settings: lr={lr}, momentum={momentum}, weight_decay={weight_decay}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, m, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                v = state["velocity"]
                v.mul_(m)
                if wd:
                    v.add_(p, alpha=-wd * lr)
                v.add_(p.grad, alpha=-lr)
                p.add_(v)
        return loss


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """The weights (group 0) and the biases with their lr multiplier and decay (one group when they
    match), then the last layer's alike when cfg.head_lr_mult is not 1; the layers cfg.freeze keeps
    fixed are in no group, so weight decay and momentum never move them (engine/finetune.py)."""
    frozen, top = frozen_parameters(model, cfg.freeze), head_parameters(model) if cfg.head_lr_mult != 1 else set()
    split = cfg.bias_lr_mult != 1 or not cfg.bias_decay
    parts: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad and name not in frozen:
            parts.setdefault((name in top, split and name.endswith("bias")), []).append(p)
    groups = []
    for is_head, is_bias in ((False, False), (False, True), (True, False), (True, True)):
        if (key := (is_head, is_bias)) not in parts:
            continue
        group: dict[str, Any] = {"params": parts[key]}
        mult = (cfg.head_lr_mult if is_head else 1.0) * (cfg.bias_lr_mult if is_bias else 1.0)
        if is_head or is_bias:
            group["lr"] = cfg.lr * mult
        if is_bias:
            group["weight_decay"] = cfg.weight_decay if cfg.bias_decay else 0.0
        groups.append(group)
    return groups


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer cfg names over `model`'s parameters, biases grouped as cfg.bias_lr_mult / bias_decay say."""
    groups = param_groups(model, cfg)
    first = groups[0]["params"]
    if cfg.optimizer == "adamw":
        # fused on the CPU too, where torch's default fuses nothing: the same numbers in a fraction of the time
        # (BENCHMARKS.md, 'the recipe, int8, threads'); CUDA keeps foreach, which graph capture is tested with
        fused = True if first and first[0].device.type == "cpu" else None
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    if cfg.momentum_form == "paper":
        return PaperSGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    # CUDA: one fused kernel for the whole update instead of a few per tensor group
    fused = True if first and first[0].is_cuda else None
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                           weight_decay=cfg.weight_decay, fused=fused)


# ---- the learning-rate schedule ---------------------------------------------------------------

# ReduceLROnPlateau's default relative threshold (mode "max"): an epoch counts as better only when
# its val top-1 beats the best by 0.01 % of it. Runs before this module's plain schedule were
# driven by torch's ReduceLROnPlateau, so the rule is kept as it decided their drops.
PLATEAU_THRESHOLD = 1e-4


@dataclass(frozen=True)
class Plateau:
    """The paper's schedule's state (section 5): the best val top-1 so far, the epochs since it
    improved, and how many times the lr has been divided by 10."""

    best: float = -math.inf
    bad_epochs: int = 0
    drops: int = 0


def plateau_after(state: Plateau, top1: float, cfg: TrainConfig) -> Plateau:
    """The state after an epoch scoring `top1`: a better epoch resets the count; more than
    cfg.plateau_patience epochs without one divide the lr by 10, at most cfg.max_lr_drops times."""
    if top1 > state.best * (1 + PLATEAU_THRESHOLD):  # nan (no val images) is never better
        return Plateau(top1, 0, state.drops)
    if state.bad_epochs + 1 > cfg.plateau_patience:
        return Plateau(state.best, 0, min(state.drops + 1, cfg.max_lr_drops))
    return Plateau(state.best, state.bad_epochs + 1, state.drops)


def step_factor(cfg: TrainConfig, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """The per-step schedules' multiplier of the peak lr at global `step` (cosine, onecycle):
    a linear warmup over cfg.warmup_epochs, then a cosine, or a straight line (as airbench's
    one-cycle), down to 0 at `total_steps`."""
    warmup = max(1, round(cfg.warmup_epochs * steps_per_epoch)) if cfg.warmup_epochs > 0 else 0
    total = max(total_steps, warmup + 1)
    if step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)  # 0 -> 1 over the rest of the run
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    return max(0.0, 1 - t)


def learning_rates(cfg: TrainConfig, bases: Sequence[float], step: int, plateau: Plateau | None, *,
                   total_steps: int, steps_per_epoch: int) -> list[float]:
    """Each parameter group's lr for global `step`, from the groups' base rates `bases`.

    cosine and onecycle: base * step_factor (the expression torch's LambdaLR used, so the same
    floats); plateau: base divided by 10 once per drop, one multiplication at a time as
    ReduceLROnPlateau did; constant: base."""
    if cfg.schedule in ("cosine", "onecycle"):
        factor = step_factor(cfg, step, total_steps, steps_per_epoch)
        return [base * factor for base in bases]
    rates = [float(base) for base in bases]
    for _ in range(plateau.drops if cfg.schedule == "plateau" and plateau is not None else 0):
        rates = [lr * 0.1 for lr in rates]
    return rates


def plateau_from(saved: Any, *, base: float, saved_lr: float | None, source: str = "checkpoint") -> Plateau:
    """The Plateau a checkpoint's "plateau" holds: this module's record, or (checkpoints written
    before it) a torch ReduceLROnPlateau state_dict, whose drops are read off the saved lr."""
    if not saved:
        return Plateau()
    try:
        if "drops" in saved:
            state = Plateau(float(saved["best"]), int(saved["bad_epochs"]), int(saved["drops"]))
        else:
            drops = round(math.log10(base / saved_lr)) if saved_lr and base > 0 else 0
            state = Plateau(float(saved.get("best", -math.inf)), int(saved.get("num_bad_epochs", 0)), max(0, drops))
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise UsageError(f"{source}: plateau must hold best, bad_epochs and drops ({type(e).__name__}: {e})") from None
    if state.bad_epochs < 0 or not 0 <= state.drops <= 1000:
        raise UsageError(f"{source}: plateau bad_epochs and drops must be counts >= 0; got {saved}")
    return state
