"""The training fast path's switches (channels-last, torch.compile): each changes the speed, not
the arithmetic beyond float rounding; a compiler failure falls back to eager training."""

import json
from pathlib import Path

import pytest
import torch

from alexnet.config import make_config, read_yaml
from alexnet.engine import train as engine
from alexnet.engine.checkpoint import load_checkpoint
from alexnet.engine.train import fit

# no dropout and no augmentation: nothing random differs between the eager and compiled programs
# (Inductor draws dropout masks from its own generator)
PLAIN = dict(model="alexnet_simple", model_args={"dropout": 0.0}, augment="none", data="shapes:train=256,test=64,size=32",
             epochs=2, batch_size=64, workers=0, tensorboard=False, deterministic=True)


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


def test_channels_last_and_compile_train_the_same_numbers(tmp_path):
    eager = losses(run(tmp_path, "eager", channels_last="off", compile="off"))
    nhwc = losses(run(tmp_path, "nhwc", channels_last="on", compile="off"))
    fast = losses(run(tmp_path, "compiled", channels_last="on", compile="on"))
    assert nhwc == pytest.approx(eager, rel=1e-4)
    assert fast == pytest.approx(eager, rel=1e-3)
    saved = load_checkpoint(tmp_path / "compiled", prefer="last")["model"]
    assert not any(k.startswith(("_orig_mod", "module")) for k in saved)  # the plain model is saved


def test_a_compiler_failure_falls_back_to_eager(tmp_path, monkeypatch, capsys):
    def broken(net, *args, **kwargs):
        raise RuntimeError("InductorError: no working C++ compiler found")
    monkeypatch.setattr(torch, "compile", broken)
    result = fit(make_config(read_yaml("fast"), out=str(tmp_path / "run"), **{**PLAIN, "epochs": 1}, compile="on"))
    assert result["epochs"] == 1
    assert "torch.compile failed (RuntimeError: InductorError: no working C++ compiler found); training eagerly" in capsys.readouterr().err
