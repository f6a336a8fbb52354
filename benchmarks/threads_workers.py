"""Benchmark: torch's compute threads against the loader's worker processes on a small CPU (issue 19).

    python benchmarks/threads_workers.py [--data folder:../shared/datasets/imagenet-sample] [--steps 12]

Runs `alexnet train` (alexnet_owt, the fast preset at 224 px, batch 32, --max-steps) once per
setting, each in a fresh process, and prints its training images/s as the run reports it. The
settings: torch's threads (OMP_NUM_THREADS; default: all cores) x loader workers (0: decode in
the main process, between steps; default: cores - 1), with the images decoded from JPEG files
at every step (--no-cache-images), and once decoded into memory first (the default for a set
this size), where workers only fill the cache. On 32 px sets (CIFAR-10, Fashion-MNIST) the
training batches always come from memory, so only the threads count there.
It prints figures only; BENCHMARKS.md records them with the machine and the date.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile


def run(data: str, steps: int, threads: int, workers: int, cache: str) -> float | None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "alexnet", "train", "--model", "alexnet_owt", "--data", data, "--image-size",
               "224", "--batch-size", "32", "--max-steps", str(steps), "--val-images", "32", "--workers", str(workers),
               "--cache-images", cache, "--no-tensorboard", "--out", os.path.join(tmp, "run")]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    found = re.findall(r"([\d,.]+) img/s", out.stdout + out.stderr)
    if out.returncode != 0 or not found:
        print(f"  failed: {' '.join(cmd)}\n{out.stderr[-500:]}")
        return None
    return float(found[-1].replace(",", ""))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="folder:../shared/datasets/imagenet-sample")
    p.add_argument("--steps", type=int, default=12)
    args = p.parse_args()
    import torch

    cores = len(os.sched_getaffinity(0))
    print(f"{cores} cores, torch {torch.__version__}; alexnet_owt, 224 px, batch 32, {args.steps} steps, {args.data}")
    settings = [(t, w, "off") for t in sorted({cores, max(1, cores - 1)}, reverse=True)
                for w in sorted({0, max(0, cores - 1), cores})]
    settings.append((cores, max(0, cores - 1), "on"))
    for threads, workers, cache in settings:
        rate = run(args.data, args.steps, threads, workers, cache)
        if rate is not None:
            print(f"  threads {threads}  workers {workers}  cache {cache:<3}  {rate:8.1f} img/s")


if __name__ == "__main__":
    main()
