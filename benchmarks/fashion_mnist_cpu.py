"""Benchmark: a small AlexNet on real Fashion-MNIST on the CPU, to at least 90% test accuracy.

    python benchmarks/fashion_mnist_cpu.py [--model alexnet_mini] [--epochs 6] [--data fashion-mnist[:DIR]]

Trains with the `fast` preset through the same `fit` the CLI uses, then prints the machine, the
versions, the equivalent command, the wall time and the test accuracy (no figure is written here
by hand). Needs the four Fashion-MNIST IDX files: Debian's `dataset-fashion-mnist` package or a
folder passed with --data fashion-mnist:DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import torch
import torchvision

from alexnet.config import make_config, read_yaml
from alexnet.engine.train import fit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="alexnet_mini")
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--workers", type=int, default=-1)
    args = p.parse_args()
    overrides = dict(model=args.model, data=args.data, epochs=args.epochs, batch_size=args.batch_size,
                     workers=args.workers, tensorboard=False)
    if args.lr is not None:
        overrides["lr"] = args.lr
    with tempfile.TemporaryDirectory() as tmp:
        cfg = make_config(read_yaml("fast"), out=os.path.join(tmp, "run"), **overrides)
        started = time.perf_counter()
        result = fit(cfg)
        wall = time.perf_counter() - started
    command = (f"alexnet train --config fast --model {args.model} --data {args.data} --epochs {args.epochs} "
               f"--batch-size {args.batch_size}" + (f" --lr {args.lr}" if args.lr is not None else ""))
    report = {
        "benchmark": "fashion-mnist-cpu",
        "command": command,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, torchvision "
                   f"{torchvision.__version__}, {torch.get_num_threads()} threads",
        "wall_seconds": round(wall, 1),
        "test_top1": round(result["final_top1"], 4),
        "best_top1": round(result["best_top1"], 4),
        "train_images_per_s": round(result["train_images_per_s"], 1),
        "target_top1": 0.90,
        "reached": result["final_top1"] >= 0.90,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
