"""The device and the fast path: which device, autocast (bf16, or fp16 with a loss scaler),
the on/off/auto switches of channels-last and compiling, torch.compile, and CUDA graphs; and a
training run's `Plan`, where every one of its "auto" settings is decided once.

The training loop (engine/train.py, through engine/backends.py), evaluation and the bench
(alexnet.bench) take their fast path from here, so "auto" means the same everywhere.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from alexnet.config import TrainConfig, resolved_input_norm, resolved_val_images
from alexnet.data import DataSource
from alexnet.data.decoded import files_to_cache, fits
from alexnet.data.loader import default_workers
from alexnet.data.transforms import Prepare
from alexnet.engine.console import log
from alexnet.engine.distributed import World
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
    try:
        return torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}: give auto, cpu, cuda, cuda:N or mps") from None


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


def compute_threads(asked: int = 0, *, deterministic: bool = False) -> int:
    """The CPU threads a run computes with: `asked`, else $ALEXNET_THREADS, else the cores idle now.

    Two processes that each take every core slow each other down: on this project's 2-core CPU
    beside a second training run, 1 thread beat 2 (BENCHMARKS.md, 'threads on a busy machine').
    So auto counts the cores left idle over 0.2 s (Linux's /proc/stat), at most torch's default
    (the physical cores), at least 1; where that cannot be read, torch's default stands. A
    `deterministic` run takes torch's default whatever the load: the thread count changes the
    order of float sums, and a resumed run must compute as the first session did.
    """
    if asked:
        return asked
    env = os.environ.get("ALEXNET_THREADS", "").strip()
    if env:
        if not env.isdigit() or not 1 <= int(env) <= 1024:
            raise UsageError(f"ALEXNET_THREADS must be a whole number of threads from 1 to 1024; got {env!r}")
        return int(env)
    most = torch.get_num_threads()
    if deterministic:
        return most
    idle = idle_cores()
    return most if idle is None else max(1, min(most, round(idle)))


def idle_cores(seconds: float = 0.2) -> float | None:
    """How many cores were idle over the next `seconds` (/proc/stat's first line); None if unknown."""
    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return sum(values), values[3] + values[4]  # all the time, and idle + iowait (user ... steal)

    try:
        total, idle = sample()
        time.sleep(seconds)
        total2, idle2 = sample()
    except (OSError, ValueError, IndexError):
        return None
    cores = os.cpu_count() or 1
    return cores * (idle2 - idle) / (total2 - total) if total2 > total else None


@dataclass(frozen=True)
class Plan:
    """Every "auto" of a run, decided once at the top of `fit`; everything below reads it."""

    cfg: TrainConfig
    device: torch.device
    world: World
    amp: bool  # autocast: bf16, or fp16 with a loss scaler where bf16 is not native
    channels_last: bool  # weights and batches NHWC
    compile: bool
    cuda_graphs: bool  # the compiled step replayed as CUDA graphs
    decode_on: torch.device | None  # JPEGs decoded there a batch per call (None: PIL in the loader)
    workers: int  # loader processes
    threads: int  # CPU threads torch computes with
    cache_images: bool  # image files decoded once into memory before the first epoch
    val_images: int  # a fixed class-balanced subset of the val split (0: all of it)
    input_norm: str  # "mean_image" (the paper's) or "channel"
    input_size: tuple[int, int, int]  # C,S,S as the net sees it
    prepare: Prepare  # file -> uint8 C,R,R, as every loader of the run prepares its images
    steps_per_epoch: int  # of this process's loader
    total_steps: int  # of the whole run (max_steps, or epochs x steps_per_epoch)
    micro_batch: int  # the images each forward sees (--accum-steps splits the batch)


def make_plan(cfg: TrainConfig, world: World, device: torch.device, source: DataSource, model: nn.Module) -> Plan:
    """The run's decisions, from the config, the processes, the device, the data and the net."""
    channels, size = model.input_size[0], cfg.image_size or model.input_size[1]
    prepare = Prepare(cfg.augment, size, channels)
    graphs, graphs_note = use_cuda_graphs(cfg, device, world.size)
    if graphs_note:
        log(graphs_note)
    numpy = cfg.backend == "numpy"
    n_files, cache_bytes = files_to_cache(source, prepare)
    cache = n_files > 0 and (cfg.cache_images == "on" or (cfg.cache_images == "auto" and world.size == 1
                                                           and fits(cache_bytes)))
    if cache:
        log(f"decoding {n_files} image files once into memory ({cache_bytes / 1e6:,.0f} MB; "
            f"--cache-images off reads them in every epoch)")
    return Plan(
        cfg=cfg, device=device, world=world,
        amp=not numpy and bf16_switch(cfg.amp, device),
        channels_last=not numpy and bf16_switch(cfg.channels_last, device),
        compile=not numpy and switch(cfg.compile, device), cuda_graphs=graphs,
        decode_on=device if switch(cfg.device_decode, device) else None,
        workers=default_workers() if cfg.workers < 0 else cfg.workers,
        threads=compute_threads(cfg.threads, deterministic=cfg.deterministic),
        cache_images=cache,
        val_images=resolved_val_images(cfg), input_norm=resolved_input_norm(cfg),
        input_size=(channels, size, size), prepare=prepare, steps_per_epoch=0, total_steps=0,  # set by the loaders
        micro_batch=-(-cfg.batch_size // world.size // cfg.accum_steps),
    )
