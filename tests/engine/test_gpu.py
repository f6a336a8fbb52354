"""The GPU fast path on a CUDA device: nvJPEG decoding, CUDA graphs, the bench's CUDA clock.

Skipped without a CUDA GPU (CI has none); run on the device machine by benchmarks/gpu_check.sh.
The same code paths are tested on the CPU elsewhere (tests/data/test_jpeg.py, test_fast_path.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from alexnet.bench import BenchConfig, run_bench
from alexnet.config import make_config, read_yaml
from alexnet.data.datasets import ImageFiles
from alexnet.data.loader import make_loader
from alexnet.data.transforms import Prepare
from alexnet.engine.train import fit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


def photos(folder: Path, n: int = 12) -> ImageFiles:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        h, w = (40, 60) if i % 3 else (int(rng.integers(30, 80)), int(rng.integers(30, 80)))
        # photo-like blocks
        smooth = np.kron(rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3)), np.ones((4, 4, 1)))[:h, :w]
        img = Image.fromarray(smooth.astype(np.uint8)).convert("L" if i == 5 else "RGB")
        folder.mkdir(parents=True, exist_ok=True)
        img.save(folder / f"{i}.jpg", quality=90)
        paths.append(str(folder / f"{i}.jpg"))
    return ImageFiles(paths, list(range(n)))


def test_nvjpeg_decodes_as_pil_does(tmp_path):
    """nvJPEG's inverse DCT and colour conversion round differently from libjpeg-turbo's: the
    prepared pixels agree to a few grey levels, not bit for bit."""
    files = photos(tmp_path)
    prepare = Prepare("paper", 56, 3)
    pil = list(make_loader(files, prepare, batch_size=6, shuffle=False, workers=0))
    gpu = list(make_loader(files, prepare, batch_size=6, shuffle=False, workers=0, decode_on=CUDA))
    for p, g in zip(pil, gpu):
        assert g.images.is_cuda and torch.equal(g.labels, p.labels)
        diff = (g.images.cpu().float() - p.images.float()).abs()
        assert diff.mean() < 1.0 and diff.max() <= 16


def test_cuda_graphs_train_as_the_compiled_step_does(tmp_path):
    common = dict(model="alexnet_simple", model_args={"dropout": 0.0}, augment="none",
                  data="shapes:train=256,test=64,size=32",
                  epochs=2, batch_size=64, workers=0, tensorboard=False, device="cuda", compile="on")
    losses = {}
    for graphs in ("off", "on"):
        fit(make_config(read_yaml("fast"), out=str(tmp_path / graphs), cuda_graphs=graphs, **common))
        lines = (tmp_path / graphs / "metrics.jsonl").read_text().splitlines()
        losses[graphs] = [json.loads(line)["train_loss"] for line in lines]
    assert losses["on"] == pytest.approx(losses["off"], rel=1e-2)


def test_bench_times_with_cuda_events_and_graphs():
    r = run_bench(BenchConfig(model="alexnet_mini", mode="train", image_size=32, batch_size=64, warmup=3, windows=2,
                              steps=3))
    assert r["device"] == "cuda" and r["timing"]["clock"] == "cuda_events"
    assert r["compile"] and r["cuda_graphs"] and r["results"]["train"]["images_per_s"] > 0
