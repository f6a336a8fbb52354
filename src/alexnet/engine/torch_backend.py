"""The torch backend of the training loop (engine/train.py): the net on its device, its optimizer,
and the fast path (autocast, channels-last, torch.compile, CUDA graphs, DDP).

A backend is what the one training loop drives (`train.Backend`): `loss_and_logits` on a
batch (gradients held), `update` with the step's learning rates, `eval_model` to score, and
`state` / the builder's `resume` to save and continue. This one computes with torch; the
NumPy backend (engine/numpy_backend.py) with alexnet.scratch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from alexnet.config import TrainConfig
from alexnet.engine.checkpoint import model_state
from alexnet.engine.console import log
from alexnet.engine.distributed import World
from alexnet.engine.fast import autocast_for, bf16_switch, compiled, switch, use_cuda_graphs
from alexnet.engine.optim import make_optimizer
from alexnet.models import first_conv


def forward_backward(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, accum_steps: int = 1,
                     autocast: contextlib.AbstractContextManager | None = None,
                     scaler: torch.amp.GradScaler | None = None,
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


def backward_and_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                      scaler: torch.amp.GradScaler | None) -> None:
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


class TorchBackend:
    """A torch net trained by a torch optimizer: what `train.train_one_epoch` drives.

    `model` is the plain net (scored, saved); `net` what trains, the net or its DDP / compiled
    wrapper. `bases` are the parameter groups' base learning rates, which the schedule
    (engine/optim.py `learning_rates`) scales at every step.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, net: nn.Module | None = None,
                 autocast: contextlib.AbstractContextManager | None = None, scaler: torch.amp.GradScaler | None = None,
                 accum_steps: int = 1, label_smoothing: float = 0.0, cuda_graphs: bool = False) -> None:
        self.model, self.net, self.optimizer = model, net if net is not None else model, optimizer
        self.autocast, self.scaler = autocast, scaler
        self.accum_steps, self.label_smoothing, self.cuda_graphs = accum_steps, label_smoothing, cuda_graphs
        self.bases = [float(g["lr"]) for g in optimizer.param_groups]

    @property
    def eval_model(self) -> nn.Module:
        return self.model

    def train(self) -> None:
        self.net.train()

    def begin_epoch(self, epoch: int) -> None:
        pass  # dropout draws from torch's global generator, whose state every checkpoint holds

    def lr(self) -> float:
        """The weights' (group 0's) learning rate as the optimizer holds it now."""
        return float(self.optimizer.param_groups[0]["lr"])

    def loss_and_logits(self, x: torch.Tensor, y: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's mean loss and logits (detached), its gradient held in .grad for `update`."""
        if self.cuda_graphs:  # a new step: the graphs may reuse the previous step's output memory
            torch.compiler.cudagraph_mark_step_begin()
        self.optimizer.zero_grad(set_to_none=True)
        return forward_backward(self.net, x, y, accum_steps=self.accum_steps, autocast=self.autocast,
                                scaler=self.scaler, label_smoothing=self.label_smoothing)

    def update(self, lrs: Sequence[float] | None) -> None:
        """One optimizer step from the held gradients, each group at its rate in `lrs` (None: as set)."""
        if lrs is not None:
            for group, lr in zip(self.optimizer.param_groups, lrs):
                group["lr"] = lr
        optimizer_step(self.optimizer, self.scaler)

    def first_kernels(self) -> torch.Tensor:
        """conv1's weights now (K,C,h,w, on the CPU, NCHW): init_filters, and filters.png."""
        return first_conv(self.model).weight.detach().cpu().contiguous().clone()

    def state(self) -> dict[str, Any]:
        """The model, optimizer and loss-scaler part of a checkpoint."""
        return {**model_state(self.model), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler else None}


def build(cfg: TrainConfig, model: nn.Module, *, device: torch.device, world: World, resume: dict[str, Any] | None,
          input_size: Sequence[int], micro_batch: int) -> TorchBackend:
    """The torch backend of a run: `model` (weights from `resume` when given) on `device`, laid
    out and compiled as cfg's fast path says, wrapped in DDP under torchrun, with cfg's optimizer
    (state from `resume`). Compiling is tried on `micro_batch` inputs of `input_size` (C,H,W)."""
    if resume is not None:
        model.load_state_dict(resume["model"])
    model.to(device)
    if bf16_switch(cfg.channels_last, device):
        model.to(memory_format=torch.channels_last)
    # what trains: DDP averages the gradients of the processes after each backward
    net = model
    if world.size > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = make_optimizer(model, cfg)
    autocast, scaler = autocast_for(device, "auto" if bf16_switch(cfg.amp, device) else "fp32")
    graphs, graphs_note = use_cuda_graphs(cfg, device, world.size)
    if graphs_note:
        log(graphs_note)
    if switch(cfg.compile, device):
        example = torch.zeros(micro_batch, *input_size, device=device)  # n,C,S,S
        net = compiled(net, example, autocast, "reduce-overhead" if graphs else None)
    backend = TorchBackend(model, optimizer, net=net, autocast=autocast, scaler=scaler, accum_steps=cfg.accum_steps,
                           label_smoothing=cfg.label_smoothing, cuda_graphs=graphs)
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        if scaler is not None and resume.get("scaler"):
            scaler.load_state_dict(resume["scaler"])
    return backend
