"""The device and the fast path: which device, autocast (bf16, or fp16 with a loss scaler),
the on/off/auto switches of channels-last and compiling, torch.compile, and CUDA graphs.

The training loop (engine/train.py, through engine/torch_backend.py), evaluation and the bench
(alexnet.bench) take their fast path from here, so "auto" means the same everywhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn

from alexnet.config import TrainConfig
from alexnet.engine.console import log
from alexnet.errors import UsageError


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


def autocast_for(device: torch.device,
                 precision: str = "auto") -> tuple[contextlib.AbstractContextManager, torch.amp.GradScaler | None]:
    """Mixed-precision context and loss scaler for `precision`: fp32 (none), bf16, fp16 (with a
    scaler, as fp16's range is too small for raw gradients; MPS has none), or auto: bf16 where the
    device supports it, else fp16. Training, evaluation and the benchmark all take it from here."""
    if precision == "fp32":
        return contextlib.nullcontext(), None
    if precision == "auto":
        fp16 = device.type == "mps" or (device.type == "cuda" and not torch.cuda.is_bf16_supported())
        precision = "fp16" if fp16 else "bf16"
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" and device.type != "mps" else None
    return torch.autocast(device.type, dtype=dtype), scaler


def switch(value: str, device: torch.device) -> bool:
    """A fast-path switch (auto, on, off) for `device`: auto is on for CUDA only.

    On GPUs compiled kernels are the standard fast path. On a CPU compiling costs time up front
    that a short run does not win back, and the compiled step ran slower than the eager one
    (measured: BENCHMARKS.md, 'the small-image path and the ceiling'), so there it is asked for.
    """
    return value == "on" or (value == "auto" and device.type == "cuda")


def bf16_native(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 in hardware (elsewhere autocast to bf16 is slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":  # oneDNN's check: AVX512-BF16 or AMX
        check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return bool(check()) if check is not None else False
    return False


def bf16_switch(value: str, device: torch.device) -> bool:
    """amp and channels_last (auto, on, off) for `device`: auto is on for CUDA, and on CPUs that
    compute bf16 natively (AVX512-BF16 or AMX), where the two go together.

    Together they beat either alone on such a CPU (measured: BENCHMARKS.md, 'the small-image path
    and the ceiling'). A CPU without native bf16 emulates bf16 products, slower than fp32, so
    there auto stays off.
    """
    if value != "auto":
        return value == "on"
    return device.type == "cuda" or (device.type == "cpu" and bf16_native(device))


def compiled(net: nn.Module, example: torch.Tensor, autocast: contextlib.AbstractContextManager | None,
             mode: str | None = None) -> nn.Module:
    """torch.compile(net, mode=mode), compiled now on one forward and backward of `example`; `net` if
    that fails.

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


def compile_now(net: nn.Module, first_call: Callable[[nn.Module], None],
                mode: str | None = None) -> tuple[nn.Module, str | None]:
    """(torch.compile(net, mode=mode), None) compiled by `first_call(compiled)`; (net, why) if it fails."""
    try:
        fast = torch.compile(net, mode=mode)
        first_call(fast)
        return fast, None
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        return net, f"{type(e).__name__}: {first}"


def use_cuda_graphs(cfg: TrainConfig, device: torch.device, world_size: int = 1) -> tuple[bool, str | None]:
    """Whether the compiled training step is replayed as CUDA graphs, and a note when cfg asked
    for graphs it cannot have.

    A graph replays a whole step's kernels with one launch: at the speeds a GPU is meant to reach
    (BENCHMARKS.md, 'GPU: not measured'), a step lasts a few milliseconds, in which the CPU would
    otherwise launch every kernel of the forward, the backward and the update one by one.
    Graphs come with compiling (mode "reduce-overhead"), need CUDA, and stay off under
    DistributedDataParallel, whose gradient all-reduce runs from hooks outside any graph.
    """
    compiling = switch(cfg.compile, device)
    possible = compiling and device.type == "cuda" and world_size == 1 and cfg.accum_steps == 1
    if cfg.cuda_graphs == "off" or (cfg.cuda_graphs == "auto" and not possible):
        return False, None
    if possible:
        return True, None
    why = ("they need a CUDA device" if device.type != "cuda"
           else "they come with compiling (--compile on)" if not compiling
           else "DistributedDataParallel's all-reduce runs outside them" if world_size > 1
           else "a step of several micro-batches (--accum-steps) would overwrite the graphs' outputs")
    return False, f"cuda_graphs on is ignored: {why}"

