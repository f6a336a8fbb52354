"""The small-image training step on the CPU (issue 19): where the time goes, and which of
bf16 autocast, channels-last, batch size and torch.compile pay on this machine.

Every variant is `alexnet bench`'s own training step (bench/synthetic.py's `ours`: the paper's
augmentation on uint8 batches, the model, SGD), measured in one process with bench/timing.py's
`measure`, the variants' windows taking turns, so the ratios are fair under a varying load.
`--profile` adds torch.profiler's top operators for the fp32 and the bf16 step.

    python benchmarks/cpu_small.py                      # alexnet_mini, 32x32, batches 128 and 256
    python benchmarks/cpu_small.py --compile --profile  # also the compiled step, and the profiles

It prints figures only; BENCHMARKS.md records them with the machine and the date.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from alexnet.bench import BenchConfig
from alexnet.bench.ceiling import matmul_ceiling
from alexnet.bench.synthetic import ours
from alexnet.bench.timing import measure


def variant(model: str, size: int, batch: int, precision: str, channels_last: bool, compile: bool) -> BenchConfig:
    return BenchConfig(model=model, mode="train", batch_size=batch, image_size=size, precision=precision,
                       channels_last="on" if channels_last else "off", compile="on" if compile else "off",
                       device="cpu", ceiling=False)


def label(cfg: BenchConfig) -> str:
    return (f"b{cfg.batch_size} {cfg.precision}{' cl' if cfg.channels_last == 'on' else ''}"
            f"{' compiled' if cfg.compile == 'on' else ''}")


def profile(cfg: BenchConfig, steps: int, rows: int) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    runner = ours(cfg, torch.device("cpu"), "train", [])
    for _ in range(3):  # warm-up: oneDNN primitive creation, allocator
        runner.step()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            runner.step()
    print(f"\nprofile of {label(cfg)}, {steps} steps (self CPU time, top {rows}):")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=40))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="alexnet_mini")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--compile", action="store_true",
                   help="also the compiled step (bf16 and fp32, channels-last), with its compile time")
    p.add_argument("--profile", action="store_true", help="torch.profiler's top operators of the fp32 and bf16 steps")
    p.add_argument("--windows", type=int, default=3)
    p.add_argument("--steps", type=int, default=20)
    a = p.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, oneDNN bf16 native: "
          f"{torch.ops.mkldnn._is_mkldnn_bf16_supported()}")
    for precision in ("fp32", "bf16"):
        c = matmul_ceiling(torch.device("cpu"), precision)
        print(f"ceiling {precision}: {c['side']}x{c['side']} matmul {c['tflops_per_s']:.3f} TFLOP/s")
    cfgs = [variant(a.model, a.image_size, b, prec, cl, False)
            for b in a.batch_sizes for prec in ("fp32", "bf16") for cl in (False, True)]
    if a.compile:
        cfgs += [variant(a.model, a.image_size, a.batch_sizes[-1], prec, True, True) for prec in ("fp32", "bf16")]
    factories = [lambda c=c: dataclasses.replace(ours(c, torch.device("cpu"), "train", []), name=label(c))
                 for c in cfgs]
    started = time.perf_counter()
    results = measure(factories, torch.device("cpu"), warmup=3, windows=a.windows, steps=a.steps)
    print(f"\n{a.model}, {a.image_size}x{a.image_size}, training step, median of {a.windows} windows of {a.steps} "
          f"steps ({time.perf_counter() - started:.0f} s in all)")
    base = results[label(cfgs[0])]["images_per_s"]
    for name, r in results.items():
        extra = ""
        if "compile_s" in r:
            eager = results[name.replace(" compiled", "")]["images_per_s"]
            gain = 1 / eager - 1 / r["images_per_s"]  # seconds saved per image
            extra = (f"  compile {r['compile_s']:.1f} s; break-even after "
                     f"{r['compile_s'] / gain:,.0f} images" if gain > 0
                     else f"  compile {r['compile_s']:.1f} s; never pays")
        print(f"  {name:22s} {r['images_per_s']:9,.1f} images/s  "
              f"({r['images_per_s_min']:,.0f}-{r['images_per_s_max']:,.0f})  {r['images_per_s'] / base:5.2f}x{extra}")
    if a.profile:
        best = a.batch_sizes[-1]
        profile(variant(a.model, a.image_size, best, "fp32", False, False), a.steps, 15)
        profile(variant(a.model, a.image_size, best, "bf16", True, False), a.steps, 15)


if __name__ == "__main__":
    main()
