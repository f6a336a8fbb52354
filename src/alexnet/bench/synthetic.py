"""The train and infer runs, on synthetic batches already on the device: our fast path (`ours`)
and torchvision's alexnet run the standard way (`torchvision_alexnet`), with what they need
(autocast per precision, the fused SGD, a compile that falls back to eager).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from alexnet.bench.config import BASELINE_AUTOCAST, BASELINE_FP32, MEAN, STD, BenchConfig
from alexnet.bench.flops import forward_flops
from alexnet.bench.timing import Runner, synchronize
from alexnet.engine.backends import backward_and_step
from alexnet.engine.fast import autocast_for, compile_now
from alexnet.errors import UsageError


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


def synthetic_input(batch_size: int, channels: int, side: int, seed: int, device: torch.device | None = None) -> Tensor:
    """A synthetic batch as a plain eager loop or an exported model takes it: float32 N,C,S,S,
    normalised with MEAN and STD once (what torchvision's ToTensor + Normalize give)."""
    raw, _ = synthetic_batch(batch_size, channels, side, 1000, device or torch.device("cpu"), seed)
    mean = torch.tensor((MEAN * channels)[:channels], device=raw.device)[:, None, None]
    std = torch.tensor((STD * channels)[:channels], device=raw.device)[:, None, None]
    return ((raw.float() / 255 - mean) / std).contiguous()


def compile_or_eager(model: nn.Module, first_call: Callable[[nn.Module], None], notes: list[str],
                     mode: str | None = None) -> tuple[nn.Module, bool]:
    """torch.compile(model, mode=mode), compiled now by `first_call`; the eager model and a one-line
    note if that fails."""
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
    nhwc = cfg.channels_last == "on"
    layout = torch.channels_last if nhwc else torch.contiguous_format
    model.to(memory_format=layout)
    amp, scaler = autocast_for(device, cfg.precision)
    stats = dict(size=size, channels=channels, mean=MEAN, std=STD)
    graphs = cfg.cuda_graphs == "on"  # resolved: only where compiling on CUDA
    if kind == "train":
        augment = TrainAugment("paper", channels_last=nhwc, **stats).to(device)
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
        # alone 38 M); bf16 weights made the forward markedly faster on the CPU (measured:
        # BENCHMARKS.md, 'CPU: this project's machine')
        model.to(inference_dtype(cfg.precision))
        views = EvalViews(tta="center", channels_last=nhwc, **stats).to(device)

        def infer_step(net: nn.Module) -> int:
            with torch.inference_mode(), amp:
                net(views(images))  # N,K from N,C,S,S
            return images.shape[0]

        step = infer_step
    info: dict[str, Any] = {"channels_last": nhwc, "compile": False, "cuda_graphs": False}
    net = model
    if cfg.compile == "on":
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

    torch.manual_seed(cfg.seed)
    model = torchvision.models.alexnet(num_classes=1000).to(device)
    size = cfg.image_size
    _, labels = synthetic_batch(cfg.batch_size, 3, size, 1000, device, cfg.seed)
    x = synthetic_input(cfg.batch_size, 3, size, cfg.seed, device)  # N,3,S,S float32, normalised once
    amp, scaler = autocast_for(device, "auto" if use_autocast else "fp32")
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

    # x3 for training, as ours
    flops = forward_flops(lambda: torchvision.models.alexnet(num_classes=1000), (3, size, size))
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
        raise UsageError("--baseline needs an image size torchvision's alexnet takes (at least 63 px); "
                         f"got {size}") from None
