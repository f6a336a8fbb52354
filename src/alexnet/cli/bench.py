"""Measure training and inference speed: alexnet bench [--model NAME] [--mode MODE] [--baseline] [--json].

Images/s (the median of several timed windows after a warm-up; CUDA events on a GPU), peak
memory, and model FLOP utilisation against the device's peak, for our fast path (uint8 batches
on the device, batched augmentation there, channels-last, autocast, fused SGD, torch.compile on
GPUs). --baseline also measures torchvision's alexnet run the standard way (eager fp32, and eager
under autocast) in the same process, its windows taking turns with ours, and prints the ratios
ours/theirs; --baseline onnxruntime openvino runs our model exported to ONNX in those runtimes.
MFU is also given against a large matmul timed in the same run (--ceiling): the device's own
ceiling, where no datasheet peak is known (CPUs). --mode data times the input pipeline alone
(decode and augment) against torchvision's ImageFolder + transforms + DataLoader with the same
workers.
"""

from __future__ import annotations

import argparse
import json

from alexnet.cli.common import add_switch, number
from alexnet.limits import MAX_BATCH_SIZE, MAX_IMAGE_SIZE, MAX_WORKERS

# the CPU defaults below (no compiling, the short timing) are measured choices: BENCHMARKS.md,
# 'CPU: this project's machine'
EPILOG = """examples:
  alexnet bench --baseline                                  # alexnet_owt, train and infer, batch 64 on the CPU
  alexnet bench --mode infer --precision fp32 --no-channels-last
  alexnet bench --mode infer --baseline torchvision onnxruntime openvino   # needs pip install 'alexnet[baselines]'
  alexnet bench --mode infer --baseline int8 openvino                      # ours in int8 beside ours in bf16
  alexnet bench --mode data --data folder:../shared/datasets/imagenet-sample --baseline
  alexnet bench --model alexnet_mini --image-size 32 --steps 5 --json

defaults that depend on the device: batch 64 on the CPU, 256 on a GPU; precision bf16 where the
device computes it natively (CUDA GPUs with bf16, CPUs with AVX512-BF16 or AMX), else fp32;
channels-last on; torch.compile, CUDA graphs and JPEG decoding on the device on CUDA only (on
the CPU compiling gained nothing); timing 2 warm-up steps + 3 windows of 2 steps on the CPU,
10 + 5 x 20 on a GPU."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from alexnet.bench.config import MODES, PRECISIONS, RUNTIME_NAMES

    p.add_argument("--model", default="alexnet_owt", metavar="NAME",
                   help="model to measure (default alexnet_owt; see alexnet models)")
    p.add_argument("--mode", default="all", choices=MODES,
                   help="train step, inference, the input pipeline alone (needs --data), or all "
                        "(default: train and infer, and data with --data)")
    p.add_argument("--batch-size", type=number(int, 1, MAX_BATCH_SIZE), default=None, metavar="N",
                   help="images per step (default 64 on the CPU, 256 on a GPU)")
    p.add_argument("--image-size", type=number(int, 8, MAX_IMAGE_SIZE), default=None, metavar="S",
                   help="side of the square input (default: the model's own, 224 for alexnet_owt); smaller is quicker")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="autocast precision of ours (default auto: bf16 where native, else fp32)")
    add_switch(p, "channels_last", "NHWC model and inputs: on (the default), off, or auto (as training: on for CUDA "
                                   "and CPUs with native bf16)", default="on")
    add_switch(p, "compile", "torch.compile ours: auto (the default: on for CUDA only), on, off", default="auto")
    add_switch(p, "cuda_graphs", "replay ours as CUDA graphs, compile mode reduce-overhead: auto (the default: on when "
                                 "compiling on CUDA), on, off", default="auto")
    add_switch(p, "device_decode", "--mode data: decode JPEGs on the device, a batch per call: auto (the default: on "
                                   "for CUDA), on, off", default="auto")
    p.add_argument("--data", default="", metavar="SPEC",
                   help="dataset for --mode data, e.g. folder:DIR (a folder of class folders)")
    p.add_argument("--workers", type=number(int, -1, MAX_WORKERS), default=-1, metavar="N",
                   help="data-loading processes for --mode data, both loaders (-1: auto)")
    p.add_argument("--baseline", nargs="*", default=None, choices=("torchvision", *RUNTIME_NAMES), metavar="NAME",
                   help="also measure these, and the ratios ours/theirs: torchvision (the default with no NAME: "
                        "its alexnet the standard way), onnxruntime, openvino (our model exported to ONNX, "
                        "inference only; pip install 'alexnet[baselines]'), int8 (ours quantized to int8, "
                        "inference only)")
    p.add_argument("--ceiling", action=argparse.BooleanOptionalAction, default=True,
                   help="time a large matmul in each precision measured: the ceiling MFU is also taken against "
                        "(default on)")
    p.add_argument("--ceiling-side", type=number(int, 16, 16384), default=None, metavar="N",
                   help="side of the ceiling's square matrices (default 4096 on the CPU, 8192 on a GPU)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--warmup", type=number(int, 1), default=None, metavar="N",
                   help="untimed steps before timing (default 2 on the CPU, 10 on a GPU)")
    p.add_argument("--windows", type=number(int, 1), default=None, metavar="K",
                   help="timed windows; the median is reported (default 3 on the CPU, 5 on a GPU)")
    p.add_argument("--steps", type=number(int, 1), default=None, metavar="M",
                   help="steps per window (default 2 on the CPU, 20 on a GPU)")
    p.add_argument("--peak-tflops", type=number(float, 0.001), default=None, metavar="X",
                   help="the device's peak TFLOP/s for MFU (default: known GPUs only; none on CPUs)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from alexnet.bench import BenchConfig, format_report, run_bench
    from alexnet.engine.console import log

    baselines = None if args.baseline is None else (args.baseline or ["torchvision"])
    cfg = BenchConfig(
        model=args.model, mode=args.mode, batch_size=args.batch_size or 0, image_size=args.image_size or 0,
        precision=args.precision, channels_last=args.channels_last, compile=args.compile, data=args.data,
        cuda_graphs=args.cuda_graphs, device_decode=args.device_decode,
        workers=args.workers, device=args.device,
        baseline=baselines is not None and "torchvision" in baselines,
        runtimes=tuple(dict.fromkeys(n for n in baselines or () if n != "torchvision")),
        ceiling=args.ceiling, ceiling_side=args.ceiling_side or 0,
        warmup=-1 if args.warmup is None else args.warmup, windows=args.windows or 0, steps=args.steps or 0,
        peak_tflops=args.peak_tflops or 0.0,
    )
    report = run_bench(cfg, log=log)
    for note in report["notes"]:
        log(f"note: {note}")
    print(json.dumps(report) if args.json else format_report(report))
    return 0
