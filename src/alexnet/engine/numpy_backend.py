"""The NumPy backend of the training loop: `alexnet train --backend numpy`.

The run is the torch backend's in everything but the arithmetic: the one loop of engine/train.py
drives it (config, loaders, batch transforms, schedules, metrics, checkpoints, mid-epoch saves),
and every forward, backward and SGD update, and every validation forward, is NumPy code
(alexnet.scratch). torch only decodes and augments the batches, and averages the views' softmax
outputs in `evaluate`, to which the NumPy net is lent as a module (`NumpyNet`).

The torch model that describes the run is built on the meta device and holds no weights. A
checkpoint is a torch-backend one all the same (`state`: weights as a state_dict, momentum
buffers in torch.optim.SGD's layout), so eval, predict, viz and export read it as any other run,
and `--resume` continues it with either backend. Dropout masks come from a generator seeded by
(seed, epoch) and saved in every checkpoint ("dropout_rng"), so a resumed run draws the masks the
uninterrupted one drew.

Limits: SGD only (as torch.optim.SGD), CPU only, float32, one process, and the nets that have a
NumPy version (alexnet_simple, alexnet_mini, alexnet2012) at their own input size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from alexnet import scratch
from alexnet.config import TrainConfig
from alexnet.engine.checkpoint import model_state
from alexnet.engine.distributed import World
from alexnet.engine.optim import make_optimizer
from alexnet.errors import UsageError
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
        raise UsageError(f"model {cfg.model!r} has no NumPy version; "
                         f"the numpy backend trains: {', '.join(scratch.list_models())}")
    if cfg.momentum_form != "torch" or cfg.bias_lr_mult != 1 or not cfg.bias_decay:
        raise UsageError("the numpy backend's SGD is torch's form with one lr and decay for all parameters: "
                         "use --momentum-form torch --bias-lr-mult 1 --bias-decay, or --backend torch")
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


def build(cfg: TrainConfig, model: nn.Module, *, device: torch.device, world: World, resume: dict[str, Any] | None,
          input_size: Sequence[int], micro_batch: int) -> NumpyBackend:
    """The NumPy backend of a run: cfg's NumPy net (initialised from cfg.seed, or the weights of
    `resume`) and its SGD; `model` is the run's torch description of the net on the meta device.
    `input_size` (C,H,W) is what the data pipeline feeds it; the CPU `device`, one process
    (`world`) and `micro_batch` are the torch backend's arguments, fixed here."""
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
