"""The optimizer of a run: SGD (torch's or the paper's momentum form) or AdamW, biases in their own group.

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

from collections.abc import Callable, Iterable

import torch
from torch import nn

from alexnet.config import TrainConfig


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
    """The weights (group 0) and the biases with their lr multiplier and decay; one group when they match."""
    weights, biases = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (biases if name.endswith("bias") else weights).append(p)
    if not biases or (cfg.bias_lr_mult == 1 and cfg.bias_decay):
        return [{"params": weights + biases}]
    return [{"params": weights},
            {"params": biases, "lr": cfg.lr * cfg.bias_lr_mult, "weight_decay": cfg.weight_decay if cfg.bias_decay else 0.0}]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer cfg names over `model`'s parameters, biases grouped as cfg.bias_lr_mult / bias_decay say."""
    groups = param_groups(model, cfg)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.momentum_form == "paper":
        return PaperSGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    first = groups[0]["params"]
    # CUDA: one fused kernel for the whole update instead of a few per tensor group
    fused = True if first and first[0].is_cuda else None
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                           weight_decay=cfg.weight_decay, fused=fused)
