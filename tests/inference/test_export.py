"""Export: each format's file gives the PyTorch model's outputs, checked by an independent runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from alexnet.cli import main
from alexnet.inference.export import export
from alexnet.inference.weights import from_state_dict, load_weights
from alexnet.models import build_model
from alexnet.models.lrn import LocalResponseNorm


def _ckpt(name: str, **kwargs: object) -> dict:
    torch.manual_seed(0)
    model = build_model(name, **kwargs)
    return from_state_dict(model.state_dict(), name, source=name)


def _reference(ckpt: dict, x: torch.Tensor) -> torch.Tensor:
    from alexnet.engine.checkpoint import model_from_checkpoint

    with torch.no_grad():
        return model_from_checkpoint(ckpt).eval()(x)


def test_onnx_matches_pytorch_in_onnxruntime(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    ckpt = _ckpt("alexnet2012", num_classes=10)  # two towers, LRN within each tower
    result = export(ckpt, "onnx", tmp_path / "net.onnx")
    assert result["check"]["checker"].startswith("onnxruntime") and result["check"]["max_abs_diff"] <= 1e-4
    session = ort.InferenceSession(str(tmp_path / "net.onnx"), providers=["CPUExecutionProvider"])
    x = torch.randn(5, 3, 227, 227, generator=torch.Generator().manual_seed(7))  # another batch size than the export's
    got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
    assert (got - _reference(ckpt, x)).abs().max() <= 1e-4
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(tmp_path / "net.onnx")).metadata_props}
    assert meta["model_name"] == "alexnet2012" and meta["classes"] == [str(i) for i in range(10)]


def test_torchscript_runs_without_this_package_and_carries_its_description(tmp_path: Path) -> None:
    ckpt = _ckpt("alexnet_mini")
    export(ckpt, "torchscript", tmp_path / "net.ts.pt")
    extra = {"alexnet.json": ""}
    loaded = torch.jit.load(str(tmp_path / "net.ts.pt"), _extra_files=extra)
    x = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(loaded(x), _reference(ckpt, x), rtol=1e-5, atol=1e-5)
    assert json.loads(extra["alexnet.json"])["input_size"] == [3, 32, 32]


# a fresh interpreter with torch alone: no alexnet on its path, and it fails if alexnet gets imported
LOAD_PT2 = """
import json, sys, torch
extra = {"alexnet.json": ""}
program = torch.export.load(sys.argv[1], extra_files=extra)
x = torch.load(sys.argv[2])
with torch.no_grad():
    torch.save(program.module()(x), sys.argv[3])
assert not [m for m in sys.modules if m.split(".")[0] == "alexnet"], "alexnet was imported"
print(json.loads(extra["alexnet.json"])["model_name"])
"""


def test_pt2_runs_in_torch_alone_with_any_batch_and_carries_its_description(tmp_path: Path) -> None:
    ckpt = _ckpt("alexnet_mini", num_classes=10)  # LRN, as the paper's
    result = export(ckpt, "pt2", tmp_path / "net.pt2")
    assert result["check"]["checker"].startswith("torch.export.load") and result["check"]["max_abs_diff"] <= 1e-4
    x = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(7))  # another batch size than the export's
    torch.save(x, tmp_path / "x.pt")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", LOAD_PT2, str(tmp_path / "net.pt2"), str(tmp_path / "x.pt"),
                           str(tmp_path / "y.pt")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["alexnet_mini"]
    torch.testing.assert_close(torch.load(tmp_path / "y.pt"), _reference(ckpt, x), rtol=1e-4, atol=1e-4)


def test_pt2_of_a_mean_image_net_subtracts_the_mean_itself(tmp_path: Path) -> None:
    ckpt = _ckpt("alexnet_mini")
    mean_image = torch.rand(3, 36, 36) * 255  # C,R,R: the training set's mean image, larger than the 32 px patch
    ckpt["input_norm"], ckpt["mean_image"] = "mean_image", mean_image
    export(ckpt, "pt2", tmp_path / "net.pt2")
    extra = {"alexnet.json": ""}
    program = torch.export.load(str(tmp_path / "net.pt2"), extra_files=extra)
    pixels = torch.rand(2, 3, 32, 32) * 255  # N,C,S,S raw 0-255
    centre = mean_image[:, 2:34, 2:34]  # the centre 32x32 crop of the 36x36 mean image
    with torch.no_grad():
        torch.testing.assert_close(program.module()(pixels), _reference(ckpt, pixels - centre), rtol=1e-4, atol=1e-4)
    assert json.loads(extra["alexnet.json"])["input_norm"] == "mean_image"


def test_safetensors_round_trip(tmp_path: Path) -> None:
    ckpt = _ckpt("alexnet_simple", num_classes=4)
    ckpt["classes"] = ["circle", "square", "triangle", "star"]
    export(ckpt, "safetensors", tmp_path / "net.safetensors")
    back = load_weights(tmp_path / "net.safetensors")
    assert back["classes"] == ckpt["classes"] and back["model_args"] == {"num_classes": 4}
    for key, tensor in ckpt["model"].items():
        assert torch.equal(back["model"][key], tensor)


def test_traced_lrn_is_torchs_formula() -> None:
    """Under tracing the LRN takes torch's own formula; it must equal the hand-written kernel."""
    lrn = LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0, towers=2)
    x = torch.randn(2, 96, 9, 9) * 30
    traced = torch.jit.trace(lrn, x)
    torch.testing.assert_close(traced(x), lrn(x), rtol=1e-6, atol=1e-6)
    halves = torch.cat([torch.nn.functional.local_response_norm(h, 5, 1e-4, 0.75, 2.0) for h in x.chunk(2, dim=1)],
                       dim=1)
    torch.testing.assert_close(traced(x), halves, rtol=1e-6, atol=1e-6)


def test_cli_export_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from alexnet.engine.checkpoint import save_checkpoint

    ckpt = _ckpt("alexnet_mini")
    # CIFAR-10's
    ckpt["mean"], ckpt["std"] = [0.4913996827602386, 0.48215827, 0.44653124], [0.24703233, 0.24348505, 0.26158768]
    save_checkpoint(tmp_path / "best.pt", {k: v for k, v in ckpt.items() if k not in ("format", "version", "path")})
    assert main(["export", str(tmp_path), "--format", "onnx"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "best.onnx").is_file() and "wrote" in out
    # the statistics a user copies, to 4 significant digits (within 1/80 of a grey level), not float64's 17
    assert "normalised with mean (0.4914, 0.4822, 0.4465) and std (0.247, 0.2435, 0.2616)" in out
    assert ("largest absolute difference" in out) or ("not checked: onnxruntime is not installed" in out)
    before = (tmp_path / "best.onnx").read_bytes()
    assert main(["export", str(tmp_path), "--format", "onnx"]) == 2  # never replaces a file unasked
    assert "exists; pass --force" in capsys.readouterr().err
    assert (tmp_path / "best.onnx").read_bytes() == before
    assert main(["export", str(tmp_path), "--format", "safetensors", "--out",
                 str(tmp_path / "no" / "x.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["export", str(tmp_path), "--format", "pickle"]) == 2
