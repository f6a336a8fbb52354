"""The two backends the one training loop (engine/train.py) drives: torch, with its fast path
(autocast, channels-last, torch.compile, CUDA graphs, DDP), and the from-scratch NumPy nets
(alexnet.scratch, `alexnet train --backend numpy`).

A backend is what `train.train_one_epoch` needs (`Backend`): `loss_and_logits` on a batch
(gradients held), `update` with the step's learning rates, `eval_model` to score, and `state` /
the builder's `resume` to save and continue. Both are built from the run's `Plan`, which has
already decided every "auto" of the fast path.

The NumPy backend is the torch one in everything but the arithmetic: every forward, backward and
SGD update, and every validation forward, is NumPy code; torch only decodes and augments the
batches, and averages the views' softmax outputs in `evaluate`, to which the NumPy net is lent
as a module (`NumpyNet`). Its torch model, built on the meta device, only describes the net; its
checkpoints are torch-backend ones all the same (weights as a state_dict, momentum buffers in
torch.optim.SGD's layout), so eval, predict, viz, export and `--resume` read them as any other.
Dropout masks come from a generator seeded by (seed, epoch) and saved in every checkpoint
("dropout_rng"), so a resumed run draws the masks the uninterrupted one drew. Its limits: SGD
only, CPU only, float32, one process, the nets that have a NumPy version at their own size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from alexnet import scratch
from alexnet.config import TrainConfig
from alexnet.engine.checkpoint import model_state
from alexnet.engine.fast import Plan, autocast_for, compiled
from alexnet.engine.optim import make_optimizer
from alexnet.errors import UsageError
from alexnet.models import first_conv
from alexnet.scratch import layers as L


class Backend(Protocol):
    """What the loop needs of whoever computes (`TorchBackend`, `NumpyBackend`)."""

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


def build_backend(plan: Plan, model: nn.Module, resume: dict[str, Any] | None) -> Backend:
    """The run's backend: plan.cfg.backend's, with `model`'s weights (or `resume`'s) and its optimizer."""
    return (build_numpy if plan.cfg.backend == "numpy" else build_torch)(plan, model, resume)


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


def build_torch(plan: Plan, model: nn.Module, resume: dict[str, Any] | None) -> TorchBackend:
    """`model` (weights from `resume` when given) on the plan's device, laid out and compiled as
    the plan says, wrapped in DDP under torchrun, with the config's optimizer (state from `resume`)."""
    cfg, device = plan.cfg, plan.device
    if resume is not None:
        model.load_state_dict(resume["model"])
    model.to(device)
    if plan.channels_last:
        model.to(memory_format=torch.channels_last)
    net = model  # what trains: DDP averages the gradients of the processes after each backward
    if plan.world.size > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = make_optimizer(model, cfg)
    autocast, scaler = autocast_for(device, "auto" if plan.amp else "fp32")
    if plan.compile:  # compiled now on one micro-batch, so a failure is a note and not a crash at step 1
        example = torch.zeros(plan.micro_batch, *plan.input_size, device=device)  # n,C,S,S
        net = compiled(net, example, autocast, "reduce-overhead" if plan.cuda_graphs else None)
    backend = TorchBackend(model, optimizer, net=net, autocast=autocast, scaler=scaler, accum_steps=cfg.accum_steps,
                           label_smoothing=cfg.label_smoothing, cuda_graphs=plan.cuda_graphs)
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        if scaler is not None and resume.get("scaler"):
            scaler.load_state_dict(resume["scaler"])
    return backend


def check_numpy_config(cfg: TrainConfig) -> None:
    """Refuse, in one line each, what the NumPy backend cannot do."""
    if cfg.optimizer != "sgd":
        raise UsageError(f"the numpy backend has SGD only: use --optimizer sgd (got {cfg.optimizer})")
    if cfg.device not in ("auto", "cpu"):
        raise UsageError(f"the numpy backend runs on the CPU only: use --device cpu or auto (got {cfg.device})")
    if cfg.amp == "on":  # auto: off, as on any CPU
        raise UsageError("the numpy backend computes in float32 only: drop --amp")
    if cfg.model not in scratch.list_models():
        raise UsageError(f"model {cfg.model!r} has no NumPy version; "
                         f"the numpy backend trains: {', '.join(scratch.list_models())}")
    if cfg.momentum_form != "torch" or cfg.bias_lr_mult != 1 or not cfg.bias_decay or cfg.head_lr_mult != 1:
        raise UsageError("the numpy backend's SGD is torch's form with one lr and decay for all parameters: "
                         "use --momentum-form torch --bias-lr-mult 1 --head-lr-mult 1 --bias-decay, "
                         "or --backend torch")
    if cfg.train_eval_images or cfg.stop_train_error or cfg.accum_steps > 1:
        raise UsageError("train_eval_images, stop_train_error and accum_steps are options of the torch backend: "
                         "use --backend torch")


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


class NumpyNet(nn.Module):
    """A NumPy net (alexnet.scratch) as a torch module for scoring: float N,C,H,W in, its
    test-time logits N,K out (dropout off), so `evaluate` scores it as it scores a torch net."""

    def __init__(self, net: scratch.Net) -> None:
        super().__init__()
        self.net = net
        self.num_classes = net.num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # float N,C,H,W -> N,K
        return torch.from_numpy(scratch.evaluate_batch(self.net, x.detach().cpu().numpy()))


class NumpyBackend:
    """A NumPy net trained by alexnet.scratch's SGD: what `train.train_one_epoch` drives.

    `model` is the weightless torch description of the net (meta device) whose checkpoint keys
    and optimizer layout `state` writes; `seed` seeds the dropout masks of each step.
    """

    autocast: contextlib.AbstractContextManager | None = None  # float32 only

    def __init__(self, model: nn.Module, net: scratch.Net, opt: scratch.SGD, *, seed: int,
                 label_smoothing: float = 0.0, optimizer_template: dict[str, Any]) -> None:
        self.model, self.net, self.opt = model, net, opt
        self.seed, self.label_smoothing = seed, label_smoothing
        self.template = optimizer_template  # torch SGD state_dict of `model`: its groups, in their parameter order
        self.bases = [float(g["lr"]) for g in optimizer_template["param_groups"]]
        self.eval_model = NumpyNet(net)
        self.pending: tuple[np.ndarray, list] | None = None  # the last batch's d loss / d logits and caches
        self.rng: np.random.Generator | None = None  # the dropout masks' generator
        self.restored: dict[str, Any] | None = None  # its state saved mid-epoch, for the resumed epoch

    def train(self) -> None:
        pass  # dropout is on in every training forward pass (net.forward(train=True))

    def begin_epoch(self, epoch: int) -> None:
        """The dropout generator of `epoch`: seeded by (seed, epoch), or as saved when the epoch was cut."""
        self.rng = np.random.default_rng([self.seed % 2**63, epoch])
        if self.restored is not None:
            self.rng.bit_generator.state, self.restored = self.restored, None

    def lr(self) -> float:
        return float(self.opt.lr)

    def loss_and_logits(self, x: torch.Tensor, y: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's mean loss and logits; its gradient is computed by `update`."""
        if self.rng is None:
            self.begin_epoch(0)
        labels = y.numpy()  # N
        logits, caches = self.net.forward(x.detach().numpy(), train=True, rng=self.rng)  # float N,C,S,S -> N,K
        loss, dlogits = smoothed_cross_entropy(logits, labels, self.label_smoothing)
        self.pending = (dlogits, caches)
        return torch.tensor(float(loss)), torch.from_numpy(logits)

    def update(self, lrs: Sequence[float] | None) -> None:
        """Backward through the last batch and one SGD step at lrs[0] (None: the lr as set)."""
        assert self.pending is not None, "update before loss_and_logits"
        if lrs is not None:
            self.opt.lr = float(lrs[0])
        dlogits, caches = self.pending
        self.pending = None
        self.opt.step(self.net.backward(dlogits, caches))

    def first_kernels(self) -> torch.Tensor:
        """conv1's weights now (K,C,h,w): init_filters, and filters.png."""
        return torch.from_numpy(next(w for w in self.net.params.values() if w.ndim == 4).copy())

    def state(self) -> dict[str, Any]:
        """The model and optimizer part of a checkpoint, as the torch backend writes them."""
        weights = {name: torch.from_numpy(w.copy()) for name, w in self.net.params.items()}
        groups = [{**g, "lr": self.opt.lr, "momentum": self.opt.momentum, "weight_decay": self.opt.weight_decay,
                   "nesterov": self.opt.nesterov, "dampening": self.opt.dampening}
                  for g in self.template["param_groups"]]
        names = [name for g in self.template["param_groups"] for name in g["names"]]
        state = {i: {"momentum_buffer": torch.from_numpy(self.opt.buffers[name].copy())}
                 for i, name in enumerate(names) if name in self.opt.buffers}
        for g in groups:
            g.pop("names")
        return {**model_state(self.model, weights=weights), "optimizer": {"state": state, "param_groups": groups},
                "scaler": None, "dropout_rng": self.rng.bit_generator.state if self.rng is not None else None}

    def load(self, resume: dict[str, Any]) -> None:
        """Weights, momentum buffers and SGD hyper-parameters from a checkpoint (either backend's)."""
        saved = resume.get("optimizer") or {}
        groups = saved.get("param_groups") or [{}]
        if "momentum" not in groups[0] or "betas" in groups[0]:
            raise UsageError(f"{resume['path']} was not trained with SGD; "
                             "the numpy backend cannot continue its optimizer")
        self.net.load_state_dict({name: t.detach().cpu().numpy() for name, t in resume["model"].items()})
        names = [name for g in self.template["param_groups"] for name in g["names"]]
        ids = [i for g in groups for i in g.get("params", [])]
        if len(ids) != len(names):
            raise UsageError(f"{resume['path']}: its optimizer holds {len(ids)} parameters, "
                             f"the NumPy {self.net.arch} has {len(names)}")
        buffers = {}
        for i, name in zip(ids, names):
            buf = (saved.get("state") or {}).get(i, {}).get("momentum_buffer")
            if buf is not None:
                buffers[name] = buf.detach().cpu().numpy().astype(self.net.dtype, copy=True)
        self.opt.buffers = buffers
        self.configure(groups[0])
        self.opt.lr = float(groups[0].get("lr", self.opt.lr))
        saved_rng = resume.get("dropout_rng")
        if resume.get("partial") and saved_rng is not None:  # the cut epoch goes on with the masks it would have drawn
            try:
                np.random.default_rng().bit_generator.state = saved_rng
            except (TypeError, ValueError, KeyError) as e:
                raise UsageError(f"{resume['path']}: dropout_rng must be a NumPy PCG64 generator state "
                                 f"({type(e).__name__}: {e})") from None
            self.restored = saved_rng

    def configure(self, group: dict[str, Any]) -> None:
        """The SGD's hyper-parameters from a torch SGD param group."""
        self.opt.momentum, self.opt.weight_decay = float(group["momentum"]), float(group["weight_decay"])
        self.opt.nesterov, self.opt.dampening = bool(group["nesterov"]), float(group["dampening"])


def build_numpy(plan: Plan, model: nn.Module, resume: dict[str, Any] | None) -> NumpyBackend:
    """The config's NumPy net (initialised from its seed, or the weights of `resume`) and its SGD;
    `model` is the run's torch description of the net, on the meta device."""
    cfg, input_size = plan.cfg, plan.input_size
    try:
        net = scratch.build(cfg.model, **model.arch_kwargs, seed=cfg.seed)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if tuple(input_size) != net.input_size:
        raise UsageError(f"the NumPy {cfg.model} takes {'x'.join(map(str, net.input_size))} inputs; "
                         f"drop --image-size (got {input_size[1]})")
    if set(model.state_dict()) != set(net.params):
        raise UsageError(f"the NumPy {cfg.model} and the torch one name their weights differently: --backend torch")
    optimizer = make_optimizer(model, cfg)  # never steps: its groups give the checkpoint's layout
    by_id = {id(p): name for name, p in model.named_parameters()}
    template = optimizer.state_dict()
    for group, live in zip(template["param_groups"], optimizer.param_groups):
        group["names"] = [by_id[id(p)] for p in live["params"]]
    opt = scratch.SGD(net.params, lr=cfg.lr)
    backend = NumpyBackend(model, net, opt, seed=cfg.seed, label_smoothing=cfg.label_smoothing,
                           optimizer_template=template)
    backend.configure(optimizer.param_groups[0])
    if resume is not None:
        backend.load(resume)
    return backend
