"""Training speed by thread count, alone and beside a competing load: what `--threads auto` picks.

    python benchmarks/threads.py [--epochs 2] [--threads 1 2]

For each thread count it runs the Quickstart's training (`alexnet train`, alexnet_mini on the
built-in shapes) twice: on a quiet machine, and while a second training process (the
competing load, 2 threads of its own) runs beside it. It prints the median images/s of the
measured run's epochs after the first, from its metrics.jsonl, and the load average it started
under. Figures go to BENCHMARKS.md ('threads on a busy machine').
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ALEXNET = [sys.executable, "-m", "alexnet"]
DATA = "shapes:train=4000,test=500"


def train(out: Path, threads: str, epochs: int) -> tuple[float, int]:
    """Median images/s of epochs 2.. of one quickstart-sized run with `threads`, and the threads it took."""
    done = subprocess.run([*ALEXNET, "train", "--data", DATA, "--epochs", str(epochs), "--threads", threads,
                           "--no-tensorboard", "--json", "--out", str(out)], check=True, capture_output=True, text=True)
    took = json.loads(done.stdout.strip().splitlines()[-1])["threads"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(r["images_per_s"] for r in records[1:] or records), took


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", nargs="+", default=["1", "2", "0"], help="0: auto, the cores idle at the start")
    args = p.parse_args()
    print(f"{os.cpu_count()} cores; {DATA}, {args.epochs} epochs, median images/s of epochs 2..")
    with tempfile.TemporaryDirectory() as tmp:
        for loaded in (False, True):
            for threads in args.threads:
                load = None
                if loaded:  # the competing load: another training run, long enough to outlast this one
                    load = subprocess.Popen([*ALEXNET, "train", "--data", DATA, "--epochs", "50", "--threads", "2",
                                             "--no-tensorboard", "--out", f"{tmp}/load-{threads}"],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(20)  # past its start-up, and long enough for the load average to see it
                started_under = os.getloadavg()[0]
                try:
                    rate, took = train(Path(tmp) / f"run-{threads}-{int(loaded)}", threads, args.epochs)
                finally:
                    if load is not None:
                        load.terminate()
                        load.wait()
                print(f"{'with a competing load' if loaded else 'alone':>21} --threads {threads}: {rate:5.0f} images/s "
                      f"with {took} thread{'' if took == 1 else 's'} (load average {started_under:.2f})", flush=True)
                time.sleep(5)


if __name__ == "__main__":
    main()
