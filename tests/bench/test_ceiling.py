"""The bench's measured ceiling (bench/ceiling.py) and its baselines outside PyTorch (bench/runtimes.py).

What is checked: the ceiling's FLOP arithmetic against the formula 2*n^3 per product on a
clock we control, that a real measurement is a positive finite rate whose best window is the one
reported, that the report's MFU against it is tflops/ceiling for every entry and precision, that
ONNX Runtime and OpenVINO run the very model ours runs (their logits against torch's), and
that asking for a runtime that is missing, or for one in training, is a one-line error.
"""

from __future__ import annotations

import builtins
import json
import math

import pytest
import torch

from alexnet.bench import BenchConfig, run_bench
from alexnet.bench import ceiling as ceiling_module
from alexnet.bench.ceiling import matmul_ceiling
from alexnet.cli import main

QUICK = ["--warmup", "1", "--windows", "2", "--steps", "1", "--device", "cpu", "--ceiling-side", "128"]


def test_ceiling_rate_is_two_n_cubed_flops_per_product_over_the_clock(monkeypatch):
    calls = []

    def fake_timed(device, work):
        n = work()
        calls.append(n)
        return 0.5 * n, n  # every product "takes" half a second

    monkeypatch.setattr(ceiling_module, "timed", fake_timed)
    out = matmul_ceiling(torch.device("cpu"), "fp32", side=64, windows=3)
    assert out["side"] == 64 and out["precision"] == "fp32" and len(out["windows"]) == 3
    # 2*64^3 FLOPs per product, two products a second
    assert out["tflops_per_s"] == pytest.approx(2 * 64**3 * 2 / 1e12)
    assert calls[0] == 1 and all(c >= 1 for c in calls)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_real_ceiling_is_a_finite_rate_and_the_best_window(precision):
    out = matmul_ceiling(torch.device("cpu"), precision, side=128, windows=3)
    assert all(math.isfinite(r) and r > 0 for r in out["windows"])
    assert out["tflops_per_s"] == max(out["windows"])


def test_report_gives_mfu_against_the_ceiling_of_each_precision():
    cfg = BenchConfig(model="alexnet_mini", mode="infer", batch_size=2, image_size=32, device="cpu", warmup=1,
                      windows=2, steps=1, precision="fp32", ceiling_side=128)
    r = run_bench(cfg)
    assert set(r["ceilings"]) == {"fp32"} and r["ceilings"]["fp32"]["side"] == 128
    ours = r["results"]["infer"]
    assert ours["ceiling_tflops"] == r["ceilings"]["fp32"]["tflops_per_s"]
    assert ours["mfu_ceiling"] == pytest.approx(ours["tflops_per_s"] / ours["ceiling_tflops"])
    json.dumps(r)
    off = run_bench(BenchConfig(**{**cfg.__dict__, "ceiling": False}))
    assert off["ceilings"] == {} and off["results"]["infer"]["mfu_ceiling"] is None


def test_cli_table_names_the_ceiling(capsys):
    assert main(["bench", "--model", "alexnet_mini", "--image-size", "32", "--batch-size", "2", "--mode", "infer",
                 "--precision", "fp32", *QUICK]) == 0
    out = capsys.readouterr().out
    assert "of ceiling" in out and "ceiling (fp32): a 128x128 matmul" in out


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_runtime_baseline_runs_our_model(runtime, capsys):
    pytest.importorskip(runtime, reason=f"{runtime} is not installed (pip install 'alexnet[baselines]')")
    assert main(["bench", "--model", "alexnet_mini", "--image-size", "32", "--batch-size", "3", "--mode", "infer",
                 "--precision", "fp32", "--baseline", runtime, "--json", *QUICK]) == 0
    r = json.loads(capsys.readouterr().out)
    theirs = r["baselines"]["infer"][runtime]
    assert theirs["images_per_s"] > 0 and theirs["precision"] == "fp32"
    ours = r["results"]["infer"]["images_per_s"]
    assert r["ratios"]["infer"][runtime] == pytest.approx(ours / theirs["images_per_s"])
    assert theirs["flops_per_image"] == r["results"]["infer"]["flops_per_image"]  # the same net
    assert theirs["max_abs_diff"] < 1e-4  # its logits are torch's (fp32) on the same batch


def test_a_missing_runtime_is_a_one_line_error(monkeypatch, capsys):
    real = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name.split(".")[0] == "openvino":
            raise ImportError("No module named 'openvino'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    assert main(["bench", "--mode", "infer", "--baseline", "openvino", *QUICK]) == 2
    err = capsys.readouterr().err
    assert "pip install openvino" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args,words", [
    (["--baseline", "tensorrt"], "--baseline"),
    (["--baseline", "onnxruntime", "--mode", "train"], "measures inference"),
    (["--ceiling-side", "0"], "--ceiling-side"),
    (["--ceiling-side", "x"], "--ceiling-side"),
])
def test_bad_baseline_and_ceiling_options_are_one_line_exit_2(args, words, capsys):
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
