"""Benchmark: how long opening the built-in and the shared datasets takes (what a test used to
assert, and a test never asserts a duration).

    python benchmarks/data_open.py [--repeats 3]

Times `open_dataset("shapes")` (generating its 5,000 + 1,000 pictures) after a warm-up, and, where
../shared/datasets/cifar10-jpeg.tar.gz is present, CIFAR-10's second open (its decoded cache).
Prints the machine and the median seconds of each.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

from alexnet.data import open_dataset

CIFAR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"


def timed(spec: str, repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        open_dataset(spec)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {platform.python_version()}")
    open_dataset("shapes:train=100,test=10")  # warm-up: imports and first allocations
    print(f"shapes (5,000 + 1,000 pictures generated): {timed('shapes', args.repeats):.2f} s")
    if CIFAR.exists():
        open_dataset(f"cifar10:{CIFAR}")  # the first open decodes and caches
        print(f"cifar10, decoded cache: {timed(f'cifar10:{CIFAR}', args.repeats):.2f} s")
    else:
        print(f"cifar10: skipped ({CIFAR} not found)")


if __name__ == "__main__":
    main()
