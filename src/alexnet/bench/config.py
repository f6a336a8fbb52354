"""What `alexnet bench` measures and how: `BenchConfig` (validated), its choices (MODES,
PRECISIONS), the names of the baseline runs, the statistics synthetic batches are normalised
with, the timing defaults per device, and `resolve`, which fills in every default that depends
on the device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from alexnet.config import SWITCHES
from alexnet.errors import UsageError

if TYPE_CHECKING:  # torch is imported where it is used, so `alexnet bench --help` loads none
    import torch

MODES = ("train", "infer", "data", "all")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BASELINE_FP32 = "torchvision_eager_fp32"
BASELINE_AUTOCAST = "torchvision_eager_autocast"
BASELINE_DATA = "torchvision_imagefolder"
# inference baselines: the exported model, and ours in int8 (bench/runtimes.py)
RUNTIME_NAMES = ("onnxruntime", "openvino", "int8")

# ImageNet's per-channel statistics in [0, 1] units: synthetic batches are normalised with them
# as ImageNet batches would be (the values change no timing).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

# Timing defaults per device type: (warm-up steps, windows, steps per window). A CPU step of
# alexnet_owt at batch 64, 224x224 takes seconds (measured: BENCHMARKS.md, 'CPU: this
# project's machine'), so 2 + 3x2 steps keep `alexnet bench` (train and infer, ours only) under
# a minute; a GPU step takes milliseconds, and 20 of them make a window long enough for CUDA
# events to time to well under 1%.
TIMING = {"cpu": (2, 3, 2), "cuda": (10, 5, 20)}


@dataclass
class BenchConfig:
    """What to benchmark and how; `resolve` fills in the device-dependent defaults (0 / None / auto)."""

    model: str = "alexnet_owt"
    """Model name (alexnet models); the baselines are always torchvision's alexnet."""
    mode: str = "all"
    """train, infer, data (the input pipeline alone; needs `data`), or all (train, infer, and data when
    `data` is given)."""
    batch_size: int = 0
    """Images per step; 0: 64 on the CPU, 256 on a GPU."""
    image_size: int = 0
    """Side of the model's square input; 0: the model's own (224 for alexnet_owt)."""
    precision: str = "auto"
    """fp32, bf16, fp16 (autocast), or auto: bf16 where the device computes it natively, else fp32."""
    channels_last: str = "on"
    """Channels-last (NHWC) model and inputs: on, off, or auto (as training decides it: on for CUDA and for
    CPUs with native bf16). On by default: faster on this project's CPU too (BENCHMARKS.md)."""
    compile: str = "auto"
    """torch.compile the model: auto (on for CUDA, off elsewhere: no gain on the CPU, and slow to compile,
    BENCHMARKS.md, 'CPU: this project's machine'), on, off."""
    cuda_graphs: str = "auto"
    """Replay the compiled step as CUDA graphs (compile mode reduce-overhead): auto (on when compiling on
    CUDA), on, off. They need both: `resolve` leaves this on only where they can run."""
    device_decode: str = "auto"
    """Data mode: decode JPEGs on the device a batch per call (data/jpeg.py): auto (on for CUDA), on, off."""
    data: str = ""
    """Dataset spec for data mode, e.g. folder:DIR."""
    workers: int = -1
    """Data-loading worker processes for data mode (both loaders); -1: picked from the cores available."""
    baseline: bool = False
    """Also measure torchvision's alexnet run the standard way, and the ratios ours/theirs."""
    runtimes: tuple[str, ...] = ()
    """Inference baselines outside PyTorch, run on our model exported to ONNX (bench/runtimes.py):
    onnxruntime, openvino (an extra: pip install 'alexnet[baselines]'); int8, ours quantized to int8. CPU only."""
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
    ceiling: bool = True
    """Also time a large square matmul in each measured precision (bench/ceiling.py): the device's
    own ceiling, the denominator of `mfu_ceiling`."""
    ceiling_side: int = 0
    """Side of the ceiling's square matrices; 0: the device's default (4096 on a CPU, 8192 on a GPU)."""
    seed: int = 0
    """Seed of the weights and the synthetic batches."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UsageError(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        if self.precision not in PRECISIONS:
            raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")
        for name in ("channels_last", "compile", "cuda_graphs", "device_decode"):
            if getattr(self, name) not in SWITCHES:
                raise UsageError(f"{name} must be one of {', '.join(SWITCHES)}; got {getattr(self, name)!r}")
        for name, low in (("batch_size", 0), ("image_size", 0), ("workers", -1), ("warmup", -1), ("windows", 0),
                          ("steps", 0), ("ceiling_side", 0)):
            if getattr(self, name) < low:
                raise UsageError(f"{name} must be >= {low}; got {getattr(self, name)}")
        if self.warmup == 0:  # the first step builds what the step needs (and compiles): never timed
            raise UsageError("warmup must be at least 1 step (or -1: the device's default)")
        if not (math.isfinite(self.peak_tflops) and self.peak_tflops >= 0):
            raise UsageError(f"peak_tflops must be a finite number >= 0; got {self.peak_tflops}")
        self.runtimes = tuple(self.runtimes)
        for name in self.runtimes:
            if name not in RUNTIME_NAMES:
                raise UsageError(f"unknown baseline {name!r}; choose from: torchvision, {', '.join(RUNTIME_NAMES)}")
        if self.runtimes and self.mode in ("train", "data"):
            raise UsageError(f"--baseline {self.runtimes[0]} measures inference: use --mode infer or all")
        if self.mode == "data" and not self.data:
            raise UsageError("--mode data needs --data SPEC (e.g. folder:DIR, a folder of class folders of images)")


def resolve(cfg: BenchConfig) -> tuple[BenchConfig, torch.device]:
    """`cfg` with every default that depends on the device filled in (each switch "on" or "off",
    decided as training decides it: engine/fast.py), and the device."""
    from alexnet.engine.fast import bf16_native, bf16_switch, resolve_device, switch

    if cfg.device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"device must be auto, cpu or cuda; got {cfg.device!r}")
    device = resolve_device(cfg.device)
    gpu = device.type == "cuda"
    warmup, windows, steps = TIMING["cuda" if gpu else "cpu"]
    model_size = model_input_size(cfg.model)
    size = cfg.image_size or model_size[1]
    check_size(cfg.model, size)
    compiling = switch(cfg.compile, device)

    def word(on: bool) -> str:
        return "on" if on else "off"

    return replace(
        cfg,
        batch_size=cfg.batch_size or (256 if gpu else 64),
        image_size=size,
        precision=cfg.precision if cfg.precision != "auto" else ("bf16" if bf16_native(device) else "fp32"),
        channels_last=word(bf16_switch(cfg.channels_last, device)),
        compile=word(compiling),
        cuda_graphs=word(gpu and compiling and cfg.cuda_graphs != "off"),
        device_decode=word(switch(cfg.device_decode, device)),
        warmup=warmup if cfg.warmup < 0 else cfg.warmup,
        windows=cfg.windows or windows,
        steps=cfg.steps or steps,
    ), device


def model_input_size(name: str) -> tuple[int, int, int]:
    """C,H,W the model takes, read off a copy built on the meta device (no weights allocated)."""
    import torch

    from alexnet.models import build_model

    with torch.device("meta"):
        return tuple(build_model(name).input_size)  # type: ignore[return-value]


def check_size(name: str, size: int) -> None:
    from alexnet.models import check_input_size

    check_input_size(name, size)  # the range [8, MAX_IMAGE_SIZE] too
