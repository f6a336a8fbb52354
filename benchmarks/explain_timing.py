"""Seconds per attribution map and per photo of the demo page, on the CPU, each measured twice.

    python benchmarks/explain_timing.py [--photo FILE]

alexnet_mini and alexnet2012, freshly initialised (seed 0): the time does not depend on the
weights. Each `explanation` builds its net from the checkpoint dict, as the API and the demo do.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from alexnet.demo.panels import load_net, panels
from alexnet.inference.explain import explanation
from alexnet.inference.weights import describe_model
from alexnet.models import build_model

SAMPLE = Path(__file__).resolve().parents[2] / "shared/datasets/imagenet-sample"
PHOTO = SAMPLE / "n02099601/n02099601_golden_retriever.JPEG"


def twice(work) -> str:
    work()  # warm up
    times = []
    for _ in range(2):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return ", ".join(f"{t:.2f} s" for t in times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photo", default=str(PHOTO))
    photo = p.parse_args().photo
    for name in ("alexnet_mini", "alexnet2012"):
        torch.manual_seed(0)
        ckpt = describe_model(build_model(name), source=f"{name} (untrained)")
        for method in ("gradcam", "occlusion", "saliency"):
            print(f"{name} {method}: {twice(lambda c=ckpt, m=method: explanation(photo, c, method=m))}")
        net = load_net(ckpt)
        print(f"{name} demo panels per photo: {twice(lambda n=net: panels(n, photo))}")


if __name__ == "__main__":
    main()
