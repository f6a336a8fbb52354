"""The training fast path's switches (channels-last, torch.compile): each changes the speed, not
the arithmetic beyond float rounding; a compiler failure falls back to eager training."""

import json
from pathlib import Path

import pytest
import torch

from alexnet.config import make_config, read_yaml
from alexnet.engine import fast as engine
from alexnet.engine.checkpoint import load_checkpoint
from alexnet.engine.train import fit

# no dropout and no augmentation: nothing random differs between the eager and compiled programs
# (Inductor draws dropout masks from its own generator)
PLAIN = dict(model="alexnet_simple", model_args={"dropout": 0.0}, augment="none",
             data="shapes:train=256,test=64,size=32", epochs=2, batch_size=64, workers=0, tensorboard=False,
             deterministic=True, amp="off")


def losses(run: Path) -> list[float]:
    return [json.loads(line)["train_loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def run(tmp_path: Path, name: str, **switches) -> Path:
    fit(make_config(read_yaml("fast"), out=str(tmp_path / name), **PLAIN, **switches))
    return tmp_path / name


def test_switches_resolve_per_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not engine.switch("auto", cpu) and engine.switch("auto", cuda)
    assert engine.switch("on", cpu) and not engine.switch("off", cuda)
    assert make_config({"compile": True}).compile == "on"  # YAML's bare `on` arrives as a bool


@pytest.mark.parametrize("native", [False, True])
def test_amp_and_channels_last_auto_follow_native_bf16_and_a_cpu_without_it_trains_in_fp32(
        native, tmp_path, monkeypatch):
    """auto turns bf16 autocast and channels-last on for a CPU that computes bf16 natively, and
    leaves a CPU without it (AVX2 only: emulated bf16, slower than fp32) on the fp32 NCHW path;
    forced here either way, whatever this machine has."""
    from alexnet.engine import backends as torch_backend

    cpu = torch.device("cpu")
    monkeypatch.setattr(engine, "bf16_native", lambda device: native)
    assert engine.bf16_switch("auto", cpu) is native
    assert engine.bf16_switch("on", cpu) and not engine.bf16_switch("off", cpu)
    assert engine.bf16_switch("auto", torch.device("cuda"))
    asked, layouts = [], []
    real = torch_backend.autocast_for
    monkeypatch.setattr(torch_backend, "autocast_for",
                        lambda device, precision: asked.append(precision) or real(device, precision))
    cfg = make_config(read_yaml("fast"), out=str(tmp_path / "run"), **{**PLAIN, "amp": "auto", "channels_last": "auto"},
                      max_steps=2)
    original = torch.nn.Conv2d.forward

    def conv_forward(self, x):
        layouts.append(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())
        return original(self, x)

    monkeypatch.setattr(torch.nn.Conv2d, "forward", conv_forward)
    fit(cfg)
    assert asked == ["auto" if native else "fp32"]
    assert layouts[0] is native  # the batch as conv1 receives it: channels-last only on the bf16 path
    assert all(torch.isfinite(torch.tensor(losses(tmp_path / "run"))))


def gap(a: list[float], b: list[float]) -> float:
    """The greatest relative difference of two loss curves."""
    assert len(a) == len(b)
    return max(abs(x - y) / abs(y) for x, y in zip(a, b))


def test_channels_last_and_compile_train_the_same_numbers(tmp_path):
    eager = losses(run(tmp_path, "eager", channels_last="off", compile="off"))
    # What the order of the sums alone does on this machine: the same batches in 2 and 4
    # micro-batches (measured here: 2e-5 and 9e-8 of the loss). Another layout or fused kernels
    # only sum in another order, so they must stay within ten times that; the floor is 8 float32
    # epsilons, for a machine where both orders happen to agree.
    spread = max(gap(losses(run(tmp_path, f"accum{k}", channels_last="off", compile="off", accum_steps=k)), eager)
                 for k in (2, 4))
    allowed = 10 * max(spread, 1e-6)
    nhwc = losses(run(tmp_path, "nhwc", channels_last="on", compile="off"))
    fast = losses(run(tmp_path, "compiled", channels_last="on", compile="on"))
    assert gap(nhwc, eager) <= allowed, (nhwc, eager, spread)
    assert gap(fast, eager) <= allowed, (fast, eager, spread)
    saved = load_checkpoint(tmp_path / "compiled", prefer="last")["model"]
    assert not any(k.startswith(("_orig_mod", "module")) for k in saved)  # the plain model is saved


def test_cuda_graphs_resolve_per_device_and_world():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    graphs = engine.use_cuda_graphs
    assert graphs(make_config(), cuda) == (True, None)  # auto: with compile on CUDA in one process
    assert graphs(make_config(), cpu) == (False, None) and graphs(make_config(), cuda, 2) == (False, None)
    assert graphs(make_config(compile="off"), cuda) == (False, None)
    assert graphs(make_config(cuda_graphs="off"), cuda) == (False, None)
    for cfg, device, world, why in ((make_config(cuda_graphs="on", compile="on"), cpu, 1, "need a CUDA device"),
                                    (make_config(cuda_graphs="on", compile="off"), cuda, 1, "come with compiling"),
                                    (make_config(cuda_graphs="on"), cuda, 2, "DistributedDataParallel")):
        used, note = graphs(cfg, device, world)
        assert not used and note.startswith("cuda_graphs on is ignored") and why in note


def test_jpegs_decoded_in_the_main_process_train_the_same_numbers(tmp_path, capsys):
    """--device-decode on (here on the CPU: torchvision's decoder instead of PIL in the workers)
    feeds the same pixels in the same order: the same losses, to the last bit."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b", "c"):
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(12):
            h, w = int(rng.integers(30, 50)), int(rng.integers(30, 50))
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / "data" / c / f"{i}.jpg")
    folder = dict(PLAIN, data=f"folder:{tmp_path / 'data'}", image_size=32, batch_size=8, augment="paper", lighting=0.1)
    runs = {}
    for decode in ("off", "on"):
        fit(make_config(read_yaml("fast"), out=str(tmp_path / decode), **folder, device_decode=decode,
                        cuda_graphs="on"))
        runs[decode] = losses(tmp_path / decode)
    assert runs["on"] == runs["off"]
    assert "cuda_graphs on is ignored: they need a CUDA device" in capsys.readouterr().err


def test_a_compiler_failure_falls_back_to_eager(tmp_path, monkeypatch, capsys):
    def broken(net, *args, **kwargs):
        raise RuntimeError("InductorError: no working C++ compiler found")
    monkeypatch.setattr(torch, "compile", broken)
    result = fit(make_config(read_yaml("fast"), out=str(tmp_path / "run"), **{**PLAIN, "epochs": 1}, compile="on"))
    assert result["epochs"] == 1
    assert ("torch.compile failed (RuntimeError: InductorError: no working C++ compiler found); training eagerly"
            in capsys.readouterr().err)
