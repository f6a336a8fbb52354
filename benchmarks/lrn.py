"""Benchmark: local response normalization, forward + backward, at alexnet2012's two LRN layers.

    python benchmarks/lrn.py [--device auto|cpu|cuda] [--batch-size N] [--repeats 10] [--no-compile]

Three versions on the same input and output gradient, each timed for --repeats calls after a
warm-up, in alternating rounds (a change in the machine's load hits all alike):
- torch: `torch.nn.LocalResponseNorm` (a square, a pad and an avg_pool3d, autograd's backward);
- ours: `alexnet.models.lrn.LocalResponseNorm` eager (five shifted adds, backward by hand);
- ours compiled: the same under `torch.compile` (one graph, section "fused LRN" of issue 6).
The shapes are those after conv1 (96 maps of 55x55) and conv2 (256 of 27x27), in the paper's two
towers. Prints the machine, versions, the median ms of each and the speed-up over torch's.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--batch-size", type=int, default=0, help="default: 32 on the CPU, 256 on a GPU")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    args = p.parse_args()

    import torch
    from torch import nn

    from alexnet.models.lrn import LocalResponseNorm

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    n = args.batch_size or (256 if device.type == "cuda" else 32)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    name = (torch.cuda.get_device_name() if device.type == "cuda"
            else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    print(f"{name}; torch {torch.__version__}; batch {n}; forward + backward, median of {args.repeats} calls")
    for layer, (c, side) in {"lrn1": (96, 55), "lrn2": (256, 27)}.items():
        torch.manual_seed(0)
        x = (torch.randn(n, c, side, side, device=device) * 10).requires_grad_()  # N,C,H,W
        g = torch.randn_like(x)
        params = dict(size=5, alpha=1e-4, beta=0.75, k=2.0)
        plain = nn.LocalResponseNorm(**params)

        def torch_lrn(t: torch.Tensor, plain=plain, c=c, side=side) -> torch.Tensor:  # each tower's maps alone, as ours
            return plain(t.reshape(n * 2, c // 2, side, side)).reshape(n, c, side, side)

        versions = {"torch": torch_lrn, "ours": LocalResponseNorm(**params, towers=2)}
        if args.compile:
            versions["ours compiled"] = torch.compile(LocalResponseNorm(**params, towers=2))
        times: dict[str, list[float]] = {k: [] for k in versions}
        for fn in versions.values():  # warm-up (and compiling)
            for _ in range(2):
                torch.autograd.grad(fn(x), x, g)
        for _ in range(args.repeats):
            for key, fn in versions.items():
                sync()
                t0 = time.perf_counter()
                torch.autograd.grad(fn(x), x, g)
                sync()
                times[key].append(time.perf_counter() - t0)
        base = statistics.median(times["torch"])
        for key, ts in times.items():
            ms = 1000 * statistics.median(ts)
            print(f"{layer} {n}x{c}x{side}x{side}  {key:<14} {ms:9.2f} ms  {base / statistics.median(ts):5.2f}x torch")


if __name__ == "__main__":
    main()
