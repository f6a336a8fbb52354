"""Throughput benchmark (issue 6): images/s, peak memory and model FLOP utilisation of our fast
path, against torchvision's `alexnet` run the standard way, in the same process.

Ours is what `alexnet train` / `eval` run: a model from `build_model`, uint8 N,C,R,R batches
already on the device, our batched augmentation (`TrainAugment`, or the centre view of
`EvalViews`) and normalisation on the device, optional channels-last, torch.compile and CUDA
graphs, autocast for the precision, SGD with momentum 0.9 as one fused update,
`zero_grad(set_to_none=True)`, and inference under `torch.inference_mode()` with the weights in
the precision's dtype (as `alexnet eval --amp` holds them). The baselines are `torchvision.models.alexnet()` fed
float32 batches already normalised on the device, as torchvision's reference training script
feeds them, in a plain eager loop: fp32, and under autocast (bf16 where supported).

Timing: `warmup` steps, then `windows` windows of `steps` steps each; images/s per window, the
median reported with the min and max. The windows of ours and of the baselines take turns
(ours, baseline 1, baseline 2, ours, ...): on a machine shared with other jobs the load then
falls on all of them alike, and the ratios stay fair. CUDA windows are timed with CUDA events,
others with time.perf_counter after a device sync.

`data` mode times the input pipeline alone (decode, prepare, augment, normalise): our
`make_loader` + `Prepare` + `TrainAugment` against torchvision's ImageFolder + transforms +
DataLoader with the same workers and batch size. The two loaders run one after the other, not
in turns: a DataLoader's workers prefetch in the background and would slow the other's windows.
"""

from __future__ import annotations

import contextlib
import math
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from alexnet.engine.train import backward_and_step, compile_now
from alexnet.errors import RunFailed, UsageError

MODES = ("train", "infer", "data", "all")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BASELINE_FP32 = "torchvision_eager_fp32"
BASELINE_AUTOCAST = "torchvision_eager_autocast"
BASELINE_DATA = "torchvision_imagefolder"

# ImageNet's per-channel statistics in [0, 1] units: synthetic batches are normalised with them
# as ImageNet batches would be (the values change no timing).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

# Dense (no sparsity) peak FLOP/s from NVIDIA's datasheets, first matching fragment of
# torch.cuda.get_device_name() wins. "fp32" runs use TF32 tensor cores for convolutions while
# torch.backends.cudnn.allow_tf32 is on (PyTorch's default), and AlexNet's FLOPs are 90%
# convolution, so their peak is the TF32 one then.
PEAK_FLOPS: dict[str, dict[str, float]] = {
    "H100 PCIe": {"bf16": 756e12, "fp16": 756e12, "tf32": 378e12, "fp32": 51e12},
    "H100": {"bf16": 989e12, "fp16": 989e12, "tf32": 494e12, "fp32": 67e12},  # SXM
    "H200": {"bf16": 989e12, "fp16": 989e12, "tf32": 494e12, "fp32": 67e12},  # the H100 SXM's compute
    "A100": {"bf16": 312e12, "fp16": 312e12, "tf32": 156e12, "fp32": 19.5e12},
}

# Timing defaults per device type: (warm-up steps, windows, steps per window). A CPU step of
# alexnet_owt at batch 64, 224x224 takes about 1 s (inference) to 4 s (torchvision's fp32
# training step) on this project's 2-core machine, so 2 + 3x2 steps keep `alexnet bench` (train
# and infer, ours only) under a minute; a GPU step takes milliseconds, and 20 of them make a
# window long enough for CUDA events to time to well under 1%.
TIMING = {"cpu": (2, 3, 2), "cuda": (10, 5, 20)}


@dataclass
class BenchConfig:
    """What to benchmark and how; `resolve` fills in the device-dependent defaults (0 / None / auto)."""

    model: str = "alexnet_owt"
    """Model name (alexnet models); the baselines are always torchvision's alexnet."""
    mode: str = "all"
    """train, infer, data (the input pipeline alone; needs `data`), or all (train, infer, and data when `data` is given)."""
    batch_size: int = 0
    """Images per step; 0: 64 on the CPU, 256 on a GPU."""
    image_size: int = 0
    """Side of the model's square input; 0: the model's own (224 for alexnet_owt)."""
    precision: str = "auto"
    """fp32, bf16, fp16 (autocast), or auto: bf16 where the device computes it natively, else fp32."""
    channels_last: bool | None = None
    """Channels-last (NHWC) model and inputs; None: on (measured faster on this project's CPU; the GPU fast path)."""
    compile: bool | None = None
    """torch.compile the model; None: on for CUDA, off elsewhere (no gain on this project's CPU, and 30-60 s to compile)."""
    cuda_graphs: bool | None = None
    """Replay the compiled step as CUDA graphs (compile mode reduce-overhead); None: on when compiling on CUDA.
    They need both: `resolve` leaves this on only where they can run."""
    device_decode: bool | None = None
    """Data mode: decode JPEGs on the device a batch per call (data/jpeg.py); None: on for CUDA."""
    data: str = ""
    """Dataset spec for data mode, e.g. folder:DIR."""
    workers: int = -1
    """Data-loading worker processes for data mode (both loaders); -1: picked from the cores available."""
    baseline: bool = False
    """Also measure torchvision's alexnet run the standard way, and the ratios ours/theirs."""
    device: str = "auto"
    """auto, cpu, or cuda."""
    warmup: int = -1
    """Untimed steps before the windows, at least 1; -1: the device's default (TIMING)."""
    windows: int = 0
    """Timed windows; 0: the device's default."""
    steps: int = 0
    """Steps (batches) per window; 0: the device's default."""
    peak_tflops: float = 0.0
    """The device's peak in TFLOP/s for MFU; 0: from PEAK_FLOPS (known GPUs only, else no MFU)."""
    seed: int = 0
    """Seed of the weights and the synthetic batches."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UsageError(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        if self.precision not in PRECISIONS:
            raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")
        for name, low in (("batch_size", 0), ("image_size", 0), ("workers", -1), ("warmup", -1), ("windows", 0), ("steps", 0)):
            if getattr(self, name) < low:
                raise UsageError(f"{name} must be >= {low}; got {getattr(self, name)}")
        if self.warmup == 0:  # the first step builds what the step needs (and compiles): never timed
            raise UsageError("warmup must be at least 1 step (or -1: the device's default)")
        if not (math.isfinite(self.peak_tflops) and self.peak_tflops >= 0):
            raise UsageError(f"peak_tflops must be a finite number >= 0; got {self.peak_tflops}")
        if self.mode == "data" and not self.data:
            raise UsageError("--mode data needs --data SPEC (e.g. folder:DIR, a folder of class folders of images)")


@dataclass
class Runner:
    """One thing to time: `step()` runs one step and returns the images it processed."""

    name: str
    step: Callable[[], int]
    precision: str  # fp32, bf16 or fp16: what its peak FLOP/s is looked up for
    flops_per_image: float | None  # FLOPs of one image's step (train: 3x forward), None for data
    info: dict[str, Any] = field(default_factory=dict)  # extra fields of its result (compile, workers, ...)
    close: Callable[[], None] = lambda: None  # frees what it holds (loader workers)


def resolve(cfg: BenchConfig) -> tuple[BenchConfig, torch.device]:
    """`cfg` with every default that depends on the device filled in, and the device."""
    from alexnet.engine.train import resolve_device

    if cfg.device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"device must be auto, cpu or cuda; got {cfg.device!r}")
    device = resolve_device(cfg.device)
    gpu = device.type == "cuda"
    warmup, windows, steps = TIMING["cuda" if gpu else "cpu"]
    model_size = model_input_size(cfg.model)
    size = cfg.image_size or model_size[1]
    check_size(cfg.model, size)
    compiling = gpu if cfg.compile is None else cfg.compile
    return replace(
        cfg,
        batch_size=cfg.batch_size or (256 if gpu else 64),
        image_size=size,
        precision=cfg.precision if cfg.precision != "auto" else ("bf16" if bf16_native(device) else "fp32"),
        channels_last=True if cfg.channels_last is None else cfg.channels_last,
        compile=compiling,
        cuda_graphs=gpu and compiling and cfg.cuda_graphs is not False,
        device_decode=gpu if cfg.device_decode is None else cfg.device_decode,
        warmup=warmup if cfg.warmup < 0 else cfg.warmup,
        windows=cfg.windows or windows,
        steps=cfg.steps or steps,
    ), device


def bf16_native(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 in hardware (elsewhere autocast to bf16 is slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":  # oneDNN's check: AVX512-BF16 or AMX (this project's AMD EPYC has AVX512-BF16)
        check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return bool(check()) if check is not None else False
    return False


def model_input_size(name: str) -> tuple[int, int, int]:
    """C,H,W the model takes, read off a copy built on the meta device (no weights allocated)."""
    from alexnet.models import build_model

    with torch.device("meta"):
        return tuple(build_model(name).input_size)  # type: ignore[return-value]


def check_size(name: str, size: int) -> None:
    from alexnet.models import check_input_size

    check_input_size(name, size)  # the range [8, MAX_IMAGE_SIZE] too


def forward_flops(make: Callable[[], nn.Module], shape: Sequence[int]) -> int:
    """FLOPs of one forward pass of one C,H,W image, as torch.utils.flop_counter counts them
    (convolutions and matrix products, 2 per multiply-add). The net is built and run on the meta
    device: shapes only, no arithmetic, milliseconds even for VGG."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        net = make()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.empty(1, *shape, device="meta"))  # N=1,C,H,W
    return int(counter.get_total_flops())


def peak_flops(device: torch.device, precision: str, override_tflops: float = 0.0) -> float | None:
    """The device's peak FLOP/s for `precision`; None where unknown (CPUs, GPUs not in PEAK_FLOPS)."""
    if override_tflops > 0:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    table = next((t for fragment, t in PEAK_FLOPS.items() if fragment in name), None)
    if table is None:
        return None
    if precision == "fp32" and torch.backends.cudnn.allow_tf32:
        return table["tf32"]
    return table[precision]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
        name = found.group(1).strip() if found else platform.processor()
    except OSError:
        name = platform.processor()
    return f"{name or platform.machine()}, {torch.get_num_threads()} threads"


# -- memory ----------------------------------------------------------------------------------

_STATUS = Path("/proc/self/status")


def _rss_kib(key: str) -> int | None:
    """VmRSS / VmHWM of this process in KiB (Linux), else None."""
    try:
        found = re.search(rf"^{key}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(found.group(1)) if found else None


def memory_in_use(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device)
    rss = _rss_kib("VmRSS")
    return 0 if rss is None else rss * 1024


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    with contextlib.suppress(OSError):  # Linux >= 4.0: "5" resets the process's peak RSS (VmHWM)
        Path("/proc/self/clear_refs").write_text("5")


def peak_memory(device: torch.device, before: int) -> tuple[int, str]:
    """Peak memory since `reset_peak_memory`, less `before` (what was in use then), and what it measures."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) - before, "cuda_max_memory_allocated"
    hwm = _rss_kib("VmHWM")
    if hwm is not None and Path("/proc/self/clear_refs").exists():
        return hwm * 1024 - before, "cpu_peak_rss"
    import resource  # no /proc: the process's peak RSS since it started (KiB on Linux, bytes on macOS)

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return peak, "cpu_process_peak_rss"


MEMORY_KINDS = {
    "cuda_max_memory_allocated": "torch.cuda.max_memory_allocated while the run was built and warmed up, less what was allocated before",
    "cpu_peak_rss": "the process's peak RSS (VmHWM) while the run was built and warmed up, less the RSS before",
    "cpu_process_peak_rss": "the process's peak RSS since it started (resource.getrusage)",
}


# -- timing ----------------------------------------------------------------------------------

def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(device: torch.device, work: Callable[[], int]) -> tuple[float, int]:
    """Seconds `work` takes on `device` (CUDA events on a GPU, wall clock after a sync elsewhere), and what it returned."""
    synchronize(device)
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        n = work()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000, n
    t0 = time.perf_counter()
    n = work()
    synchronize(device)
    return time.perf_counter() - t0, n


def measure(factories: Sequence[Callable[[], Runner]], device: torch.device, *, warmup: int, windows: int, steps: int,
            interleave: bool = True, log: Callable[[str], None] = lambda m: None) -> dict[str, dict[str, Any]]:
    """Build, warm up and time each runner; per runner its images/s (median, min, max, every window),
    step time, first-step time (compilation included), and peak memory.

    Runners are built and warmed up one at a time, so the memory each adds can be told apart.
    With `interleave` their windows then take turns (fair under a varying load); without it each
    runner is timed to the end and closed before the next is built (data loaders).
    """
    runners: list[Runner] = []
    results: dict[str, dict[str, Any]] = {}

    def build(factory: Callable[[], Runner]) -> Runner:
        before = memory_in_use(device)
        reset_peak_memory(device)
        runner = factory()
        first, _ = timed(device, runner.step)
        for _ in range(max(warmup - 1, 0)):
            runner.step()
        synchronize(device)
        used, kind = peak_memory(device, before)
        results[runner.name] = {"first_step_s": first, "peak_memory_bytes": used, "memory_kind": kind, **runner.info}
        log(f"{runner.name}: built and warmed up ({warmup} steps, the first {first:.2f} s)")
        return runner

    def window(runner: Runner) -> None:
        seconds, images = timed(device, lambda: sum(runner.step() for _ in range(steps)))
        results[runner.name].setdefault("_windows", []).append((seconds, images))

    try:
        if interleave:
            runners = [build(f) for f in factories]
            for _ in range(windows):
                for runner in runners:
                    window(runner)
        else:
            for f in factories:
                runner = build(f)
                runners.append(runner)
                for _ in range(windows):
                    window(runner)
                runner.close()
    finally:
        for runner in runners:
            runner.close()
    for runner in runners:
        results[runner.name] = summarise(runner, results[runner.name], steps)
    return results


def summarise(runner: Runner, raw: dict[str, Any], steps: int) -> dict[str, Any]:
    """A runner's windows as images/s (median, min, max, each) and its median step time."""
    windows = raw.pop("_windows")
    rates = [images / seconds for seconds, images in windows]  # images/s per window
    median = statistics.median(rates)
    return {
        "images_per_s": median,
        "images_per_s_min": min(rates),
        "images_per_s_max": max(rates),
        "windows": rates,
        "step_ms": 1000 * statistics.median(seconds for seconds, _ in windows) / steps,
        "precision": runner.precision,
        "flops_per_image": runner.flops_per_image,
        "tflops_per_s": median * runner.flops_per_image / 1e12 if runner.flops_per_image else None,
        **raw,
    }


# -- our fast path and torchvision's standard loop ---------------------------------------------

def autocast(device: torch.device, precision: str) -> tuple[contextlib.AbstractContextManager, torch.amp.GradScaler | None]:
    """Autocast for `precision`, and the loss scaler fp16 training needs (its range is too small for raw gradients)."""
    if precision == "fp32":
        return contextlib.nullcontext(), None
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    return torch.autocast(device.type, dtype=dtype), scaler


def inference_dtype(precision: str) -> torch.dtype:
    """The dtype inference keeps its weights in for `precision` (fp32, bf16, fp16)."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)


def sgd(model: nn.Module) -> torch.optim.Optimizer:
    """SGD with momentum 0.9 as one fused update where this torch has it for the device, else foreach."""
    params = list(model.parameters())
    try:
        return torch.optim.SGD(params, lr=0.01, momentum=0.9, fused=True)
    except (RuntimeError, ValueError, TypeError):  # fused SGD unsupported on this device / torch
        return torch.optim.SGD(params, lr=0.01, momentum=0.9, foreach=True)


def synthetic_batch(batch_size: int, channels: int, side: int, num_classes: int, device: torch.device,
                    seed: int) -> tuple[Tensor, Tensor]:
    """Random uint8 images N,C,side,side and labels N, made on the CPU from `seed`, moved to `device`."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch_size, channels, side, side), dtype=torch.uint8, generator=g)  # N,C,R,R
    labels = torch.randint(0, num_classes, (batch_size,), generator=g)  # N
    return images.to(device), labels.to(device)


def compile_or_eager(model: nn.Module, first_call: Callable[[nn.Module], None], notes: list[str],
                     mode: str | None = None) -> tuple[nn.Module, bool]:
    """torch.compile(model, mode=mode), compiled now by `first_call`; the eager model and a one-line note if that fails."""
    net, failure = compile_now(model, first_call, mode)
    if failure:
        notes.append(f"torch.compile failed ({failure}); measured eagerly")
    return net, failure is None


def ours(cfg: BenchConfig, device: torch.device, kind: str, notes: list[str]) -> Runner:
    """Our fast path for `kind` (train or infer) on synthetic uint8 batches already on the device."""
    from alexnet.data.transforms import EvalViews, TrainAugment, resize_for
    from alexnet.models import build_model, model_options

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model).to(device)
    channels, size = model.input_size[0], cfg.image_size
    num_classes = int(model_options(cfg.model).get("num_classes", 1000))  # type: ignore[call-overload]
    # the paper's pipeline: R-squares (256 for 224 crops) stored as uint8, cropped on the device
    images, labels = synthetic_batch(cfg.batch_size, channels, resize_for(size, "paper"), num_classes, device, cfg.seed)
    layout = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.to(memory_format=layout)
    amp, scaler = autocast(device, cfg.precision)
    stats = dict(size=size, channels=channels, mean=MEAN, std=STD)
    graphs = bool(cfg.cuda_graphs)  # resolved: only where compiling on CUDA
    if kind == "train":
        augment = TrainAugment("paper", channels_last=bool(cfg.channels_last), **stats).to(device)
        optimizer = sgd(model)

        def train_step(net: nn.Module) -> int:
            x = augment(images)  # N,C,S,S float, normalised, in the model's memory layout
            if graphs:  # a new step: the graphs may reuse the previous step's output memory
                torch.compiler.cudagraph_mark_step_begin()
            with amp:
                loss = F.cross_entropy(net(x).float(), labels)
            optimizer.zero_grad(set_to_none=True)
            backward_and_step(loss, optimizer, scaler)
            return images.shape[0]

        step = train_step
    else:
        model.eval()
        # inference holds its weights in the autocast dtype, as deployed nets do; torchvision's
        # loop keeps fp32 weights, which autocast casts again at every batch (61 M of them, fc6
        # alone 38 M). On this project's CPU bf16 weights took alexnet_owt's forward alone from
        # 433 to 646 images/s (batch 64, channels-last, 2026-12-01)
        model.to(inference_dtype(cfg.precision))
        views = EvalViews(tta="center", channels_last=bool(cfg.channels_last), **stats).to(device)

        def infer_step(net: nn.Module) -> int:
            with torch.inference_mode(), amp:
                net(views(images))  # N,K from N,C,S,S
            return images.shape[0]

        step = infer_step
    info: dict[str, Any] = {"channels_last": bool(cfg.channels_last), "compile": False, "cuda_graphs": False}
    net = model
    if cfg.compile:
        started = time.perf_counter()
        net, info["compile"] = compile_or_eager(model, step, notes, "reduce-overhead" if graphs else None)
        info["cuda_graphs"] = graphs and info["compile"]
        synchronize(device)
        info["compile_s"] = time.perf_counter() - started  # the first step, compiling included
    flops = forward_flops(lambda: build_model(cfg.model), (channels, size, size))
    # training FLOPs are taken as 3x the forward's: the backward computes the gradients of both the
    # inputs and the weights, each a pass as costly as the forward (the usual MFU convention)
    return Runner("ours", lambda: step(net), cfg.precision, flops * (3 if kind == "train" else 1), info=info)


def torchvision_alexnet(cfg: BenchConfig, device: torch.device, kind: str, use_autocast: bool) -> Runner:
    """torchvision's alexnet in a plain eager loop, fed float32 normalised batches already on the
    device, as torchvision's reference script (references/classification/train.py) runs it:
    `optimizer.zero_grad(); loss.backward(); optimizer.step()`, SGD(momentum=0.9) with its
    defaults (a per-parameter loop on the CPU, foreach on CUDA), inference under inference_mode."""
    import torchvision

    from alexnet.engine.train import autocast_for

    torch.manual_seed(cfg.seed)
    model = torchvision.models.alexnet(num_classes=1000).to(device)
    size = cfg.image_size
    raw, labels = synthetic_batch(cfg.batch_size, 3, size, 1000, device, cfg.seed)
    mean = torch.tensor(MEAN, device=device)[:, None, None]
    std = torch.tensor(STD, device=device)[:, None, None]
    x = ((raw.float() / 255 - mean) / std).contiguous()  # N,3,S,S float32, normalised once
    amp, scaler = autocast_for(device, True) if use_autocast else (contextlib.nullcontext(), None)
    dtype = getattr(amp, "fast_dtype", torch.float32)
    precision = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")
    if kind == "train":
        criterion = nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step() -> int:
            with amp:
                loss = criterion(model(x), labels)
            optimizer.zero_grad()
            backward_and_step(loss, optimizer, scaler)
            return x.shape[0]
    else:
        model.eval()

        def step() -> int:
            with torch.inference_mode(), amp:
                model(x)  # N,1000
            return x.shape[0]

    flops = forward_flops(lambda: torchvision.models.alexnet(num_classes=1000), (3, size, size))  # x3 for training, as ours
    return Runner(BASELINE_AUTOCAST if use_autocast else BASELINE_FP32, step, precision,
                  flops * (3 if kind == "train" else 1))


def check_baseline_size(size: int) -> None:
    """torchvision's alexnet has no check of its own for small inputs; name the smallest it takes."""
    import torchvision

    with torch.device("meta"):
        net = torchvision.models.alexnet()
    try:
        with torch.no_grad():
            net(torch.empty(1, 3, size, size, device="meta"))  # N=1,C,H,W
    except RuntimeError:
        raise UsageError(f"--baseline needs an image size torchvision's alexnet takes (at least 63 px); got {size}") from None


# -- the input pipeline ----------------------------------------------------------------------

def endless(loader: Any, set_epoch: Callable[[Any, int], None] | None = None) -> Iterator[Any]:
    """Batches of `loader`, epoch after epoch (data smaller than the run is read again)."""
    epoch = 0
    while True:
        if set_epoch is not None:
            set_epoch(loader, epoch)
        yield from loader
        epoch += 1


def ours_data(cfg: BenchConfig, device: torch.device, source: Any, workers: int) -> Runner:
    """Our loader: workers decode and `Prepare` (shorter side to R, centre R-square) each file;
    the batch is then cropped, flipped, lit and normalised on the device (`TrainAugment`)."""
    from alexnet.data.loader import make_loader, set_epoch
    from alexnet.data.transforms import Prepare, TrainAugment

    channels, size = model_input_size(cfg.model)[0], cfg.image_size
    train = source.split("train")
    if len(train) == 0:
        raise UsageError(f"{cfg.data}: the training split has no images")
    loader = make_loader(train, Prepare("paper", size, channels), batch_size=cfg.batch_size, shuffle=True,
                         workers=workers, seed=cfg.seed, pin_memory=device.type == "cuda",
                         decode_on=device if cfg.device_decode else None)
    augment = TrainAugment("paper", size=size, channels=channels, mean=source.mean, std=source.std).to(device)
    batches = endless(loader, set_epoch)

    def step() -> int:
        batch = next(batches)
        if batch.images.numel() == 0:  # every file of the batch was unreadable
            return 0
        x = augment(batch.images.to(device, non_blocking=True))  # uint8 N,C,R,R -> float N,C,S,S
        return x.shape[0]

    info = {"workers": workers, "images_in_split": len(train), "device_decode": bool(cfg.device_decode)}
    return Runner("ours", step, "fp32", None, info=info, close=batches.close)


def imagefolder_root(source: Any) -> Path | None:
    """The class-folder tree torchvision's ImageFolder reads for the training split of `source`, or None."""
    if source.name not in ("folder", "imagenet") or ":" not in source.spec:
        return None
    root = Path(source.spec.split(":", 1)[1]).expanduser()
    train = next((p for p in root.iterdir() if p.is_dir() and p.name.lower() == "train"), None)
    return train if train is not None else (root if source.name == "folder" else None)


def torchvision_data(cfg: BenchConfig, device: torch.device, root: Path, workers: int, channels: int) -> Runner:
    """torchvision's standard pipeline doing the same work per image: ImageFolder decodes,
    Resize(R) + RandomCrop(S) + RandomHorizontalFlip + ToTensor + Normalize in the workers."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms as T

    from alexnet.data.transforms import resize_for

    size = cfg.image_size
    steps = [T.Grayscale(1)] if channels == 1 else []
    tf = T.Compose([*steps, T.Resize(resize_for(size, "paper")), T.RandomCrop(size), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize(MEAN[:channels] if channels == 3 else (sum(MEAN) / 3,), STD[:channels] if channels == 3 else (sum(STD) / 3,))])
    try:
        dataset = datasets.ImageFolder(str(root), transform=tf)
    except (FileNotFoundError, OSError) as e:
        raise UsageError(f"torchvision's ImageFolder cannot read {root}: {e}") from None
    loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, num_workers=workers,
                        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(cfg.seed))
    batches = endless(loader)

    def step() -> int:
        x, _ = next(batches)  # float N,C,S,S, normalised
        return x.to(device, non_blocking=True).shape[0]

    return Runner(BASELINE_DATA, step, "fp32", None, info={"workers": workers, "images_in_split": len(dataset)},
                  close=batches.close)


# -- the whole benchmark ---------------------------------------------------------------------

def run_bench(cfg: BenchConfig, log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Run the benchmark `cfg` describes; the JSON-ready report (see `alexnet bench --help`)."""
    import torchvision

    from alexnet.engine.memory import explain_out_of_memory

    asked_for_graphs = bool(cfg.cuda_graphs)
    cfg, device = resolve(cfg)
    modes = ["train", "infer"] if cfg.mode == "all" else [] if cfg.mode == "data" else [cfg.mode]
    if cfg.data and cfg.mode in ("data", "all"):
        modes.append("data")
    if cfg.baseline and ("train" in modes or "infer" in modes):
        check_baseline_size(cfg.image_size)
    source = None
    if "data" in modes:  # opened first: a bad spec is an error before minutes of measuring
        from alexnet.data import open_dataset

        source = open_dataset(cfg.data, seed=cfg.seed)
    notes: list[str] = []
    if asked_for_graphs and not cfg.cuda_graphs and {"train", "infer"} & set(modes):
        notes.append("CUDA graphs need --compile and a CUDA device; measured without them")
    results: dict[str, Any] = {}
    baselines: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    timing = dict(warmup=cfg.warmup, windows=cfg.windows, steps=cfg.steps, log=log)
    benchmark_was = torch.backends.cudnn.benchmark
    # both torchvision's reference script and our training pick cuDNN's fastest kernels per shape
    torch.backends.cudnn.benchmark = True
    try:
        with explain_out_of_memory(cfg.batch_size, device, doing="benchmarking"):
            for mode in modes:
                log(f"{mode}: {cfg.model}, batch {cfg.batch_size}, {cfg.image_size}x{cfg.image_size}, {device}")
                if mode == "data":
                    measured = measure_data(cfg, device, source, notes, timing)
                else:
                    factories = [lambda mode=mode: ours(cfg, device, mode, notes)]
                    if cfg.baseline:
                        factories += [lambda mode=mode, a=a: torchvision_alexnet(cfg, device, mode, a) for a in (False, True)]
                    measured = measure(factories, device, **timing)
                for entry in measured.values():
                    peak = peak_flops(device, entry["precision"], cfg.peak_tflops)
                    entry["peak_tflops"] = peak / 1e12 if peak else None
                    entry["mfu"] = entry["tflops_per_s"] * 1e12 / peak if peak and entry["tflops_per_s"] else None
                results[mode] = measured.pop("ours")
                if measured:
                    baselines[mode] = measured
                    ratios[mode] = {name: results[mode]["images_per_s"] / b["images_per_s"] for name, b in measured.items()}
    finally:
        torch.backends.cudnn.benchmark = benchmark_was
    compiled = [r.get("compile") for r in results.values() if "compile" in r]
    return {
        "device": device.type,
        "device_name": device_name(device),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "model": cfg.model,
        "mode": cfg.mode,
        "batch_size": cfg.batch_size,
        "image_size": cfg.image_size,
        "precision": cfg.precision,
        "channels_last": bool(cfg.channels_last),
        "compile": all(compiled) if compiled else bool(cfg.compile),
        "compile_requested": bool(cfg.compile),
        "cuda_graphs": any(r.get("cuda_graphs", False) for r in results.values()),
        "device_decode": bool(cfg.device_decode) if "data" in modes else None,
        "timing": {"warmup": cfg.warmup, "windows": cfg.windows, "steps": cfg.steps,
                   "clock": "cuda_events" if device.type == "cuda" else "perf_counter"},
        "memory_kinds": MEMORY_KINDS,
        "results": results,
        "baselines": baselines,
        "ratios": ratios,
        "notes": notes,
    }


def measure_data(cfg: BenchConfig, device: torch.device, source: Any, notes: list[str],
                 timing: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Our loader, then torchvision's (with --baseline), over the training split of `source`."""
    from alexnet.data.loader import default_workers
    from alexnet.engine.memory import is_out_of_memory

    workers = default_workers() if cfg.workers < 0 else cfg.workers
    factories: list[Callable[[], Runner]] = [lambda: ours_data(cfg, device, source, workers)]
    if cfg.baseline:
        root = imagefolder_root(source)
        if root is None:
            notes.append(f"no {BASELINE_DATA} baseline for {cfg.data}: torchvision's ImageFolder needs a folder of "
                         "class folders (folder:DIR or imagenet:DIR)")
        else:
            channels = model_input_size(cfg.model)[0]
            factories.append(lambda: torchvision_data(cfg, device, root, workers, channels))
    try:
        return measure(factories, device, interleave=False, **timing)
    except Exception as e:  # a worker that died (a broken file torchvision's loader does not skip, ...)
        if isinstance(e, UsageError) or is_out_of_memory(e):
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise RunFailed(f"the data pipeline failed on {cfg.data}: {type(e).__name__}: {first}") from None
