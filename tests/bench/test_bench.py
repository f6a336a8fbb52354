"""`alexnet bench` (alexnet.bench, cli/bench.py) on the CPU with tiny sizes and few steps.

What is checked: the report's structure, images/s positive and finite, the ratios equal
ours/theirs of the reported numbers, FLOPs per image against the layer summary's independent
count of multiply-adds, the order in which runners are warmed up and timed, the compile fallback,
the data mode on a folder of real JPEG files against torchvision's ImageFolder, and one-line
errors with exit code 2. Never speed: benchmarks print figures, tests do not time them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn

from alexnet.bench import (
    BASELINE_AUTOCAST,
    BASELINE_DATA,
    BASELINE_FP32,
    BenchConfig,
    Runner,
    compile_or_eager,
    forward_flops,
    measure,
    peak_flops,
    run_bench,
)
from alexnet.cli import main
from alexnet.errors import UsageError
from alexnet.models import build_model
from alexnet.models.summary import summarize

TOP_KEYS = {"device", "torch", "torchvision", "model", "mode", "batch_size", "precision", "channels_last", "compile",
            "results", "baselines", "ratios"}
QUICK = ["--warmup", "1", "--windows", "2", "--steps", "1", "--device", "cpu", "--ceiling-side", "128"]


def check_entry(entry: dict, windows: int = 2) -> None:
    rates = entry["windows"]
    assert len(rates) == windows and all(math.isfinite(r) and r > 0 for r in rates)
    assert entry["images_per_s_min"] <= entry["images_per_s"] <= entry["images_per_s_max"]
    assert entry["images_per_s"] == pytest.approx(float(np.median(rates)))
    assert entry["step_ms"] > 0 and entry["first_step_s"] > 0
    assert entry["memory_kind"] in ("cpu_peak_rss", "cpu_process_peak_rss")
    assert isinstance(entry["peak_memory_bytes"], int)


def check_ratios(report: dict) -> None:
    assert set(report["ratios"]) == set(report["baselines"])
    for mode, baselines in report["baselines"].items():
        ours = report["results"][mode]["images_per_s"]
        assert set(report["ratios"][mode]) == set(baselines)
        for name, theirs in baselines.items():
            assert report["ratios"][mode][name] == pytest.approx(ours / theirs["images_per_s"], rel=1e-12)


def test_flops_per_image_of_alexnet_owt_are_twice_the_summary_macs():
    flops = forward_flops(lambda: build_model("alexnet_owt"), (3, 224, 224))
    macs = summarize(build_model("alexnet_owt"))["total_macs"]  # forward hooks and the layer formulas
    assert flops == pytest.approx(2 * macs, rel=0.01)
    assert 1.3e9 < flops < 1.5e9  # AlexNet's well-known ~0.71 GMAC per 224x224 image
    # torchvision's alexnet has the same layers, so the baseline's count is the same
    assert forward_flops(torchvision.models.alexnet, (3, 224, 224)) == flops


@pytest.fixture(scope="module")
def infer_report() -> dict:
    cfg = BenchConfig(model="alexnet_owt", mode="infer", batch_size=2, image_size=64, baseline=True,
                      device="cpu", warmup=1, windows=2, steps=1, ceiling_side=128)
    return run_bench(cfg)


def test_infer_report_with_baselines(infer_report: dict):
    r = infer_report
    assert TOP_KEYS <= set(r)
    assert (r["device"], r["model"], r["mode"], r["batch_size"], r["image_size"]) == (
        "cpu", "alexnet_owt", "infer", 2, 64)
    assert r["torch"] == torch.__version__ and r["torchvision"] == torchvision.__version__
    assert set(r["results"]) == {"infer"} and set(r["baselines"]["infer"]) == {BASELINE_FP32, BASELINE_AUTOCAST}
    check_entry(r["results"]["infer"])
    for entry in r["baselines"]["infer"].values():
        check_entry(entry)
    check_ratios(r)
    assert r["baselines"]["infer"][BASELINE_FP32]["precision"] == "fp32"
    assert r["baselines"]["infer"][BASELINE_AUTOCAST]["precision"] == "bf16"
    ours = r["results"]["infer"]
    # inference FLOPs are one forward; achieved FLOP/s follow from them; no MFU on a CPU
    assert ours["flops_per_image"] == forward_flops(lambda: build_model("alexnet_owt"), (3, 64, 64))
    assert ours["tflops_per_s"] == pytest.approx(ours["images_per_s"] * ours["flops_per_image"] / 1e12)
    assert ours["mfu"] is None and ours["peak_tflops"] is None
    assert ours["compile"] is False and r["compile"] is False  # the CPU default
    json.dumps(r)  # the whole report is JSON


def test_cli_train_json_on_a_small_model(capsys):
    code = main(["bench", "--model", "alexnet_mini", "--mode", "train", "--image-size", "32", "--batch-size", "4",
                 "--precision", "fp32", "--no-channels-last", "--peak-tflops", "2", "--json", *QUICK])
    assert code == 0
    r = json.loads(capsys.readouterr().out)
    assert TOP_KEYS <= set(r)
    assert (r["model"], r["precision"], r["channels_last"], r["baselines"], r["ratios"]) == (
        "alexnet_mini", "fp32", False, {}, {})
    train = r["results"]["train"]
    check_entry(train)
    # training FLOPs per image: 3x the forward's (forward, input gradients, weight gradients)
    assert train["flops_per_image"] == 3 * 2 * summarize(build_model("alexnet_mini"), (3, 32, 32))["total_macs"]
    assert train["mfu"] == pytest.approx(train["tflops_per_s"] / 2)  # against --peak-tflops


def test_cli_table_with_training_baselines(capsys):
    code = main(["bench", "--mode", "train", "--image-size", "64", "--batch-size", "2", "--baseline", *QUICK])
    assert code == 0
    out = capsys.readouterr().out
    rows = {line.split()[1]: line.split() for line in out.splitlines() if line.startswith("train ")}
    assert set(rows) == {"ours", BASELINE_FP32, BASELINE_AUTOCAST}
    assert rows["ours"][-1] == "-" and rows[BASELINE_FP32][-1].endswith("x")
    assert "peak mem:" in out


def test_compile_failure_falls_back_to_eager():
    model = nn.Linear(3, 2)
    notes: list[str] = []

    def broken(net: nn.Module) -> None:
        raise RuntimeError("no C++ compiler found\nmore detail")

    net, compiled = compile_or_eager(model, broken, notes)
    assert net is model and compiled is False
    assert len(notes) == 1 and "no C++ compiler found" in notes[0] and "\n" not in notes[0]


def test_runners_are_warmed_up_one_by_one_then_take_turns():
    calls: list[str] = []

    def factory(name: str, images: int):
        def make() -> Runner:
            calls.append(f"build {name}")
            return Runner(name, lambda: calls.append(name) or images, "fp32", 10.0)
        return make

    out = measure([factory("a", 3), factory("b", 5)], torch.device("cpu"), warmup=2, windows=2, steps=3)
    assert calls == ["build a", "a", "a", "build b", "b", "b"] + (["a"] * 3 + ["b"] * 3) * 2
    assert len(out["a"]["windows"]) == 2
    assert out["b"]["tflops_per_s"] == pytest.approx(out["b"]["images_per_s"] * 10 / 1e12)


def test_peak_flops_table():
    assert peak_flops(torch.device("cpu"), "bf16") is None
    assert peak_flops(torch.device("cpu"), "fp32", override_tflops=1.5) == 1.5e12


@pytest.fixture(scope="module")
def jpeg_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two class folders of real JPEG files (random pictures of different sizes)."""
    root = tmp_path_factory.mktemp("jpegs")
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (root / c).mkdir()
        for i in range(8):
            h, w = int(rng.integers(60, 120)), int(rng.integers(60, 120))
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / c / f"{i}.jpg", quality=90)
    return root


def test_data_mode_against_imagefolder(jpeg_folder: Path, capsys):
    code = main(["bench", "--mode", "data", "--data", f"folder:{jpeg_folder}", "--baseline", "--workers", "0",
                 "--batch-size", "4", "--image-size", "64", "--json", *QUICK])
    assert code == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r["results"]) == {"data"} and set(r["baselines"]["data"]) == {BASELINE_DATA}
    ours, theirs = r["results"]["data"], r["baselines"]["data"][BASELINE_DATA]
    check_entry(ours)
    check_entry(theirs)
    assert ours["workers"] == theirs["workers"] == 0
    assert theirs["images_in_split"] == 16 and 0 < ours["images_in_split"] <= 16  # ours holds out a val split
    check_ratios(r)


def test_data_mode_with_jpegs_decoded_in_the_main_process(jpeg_folder: Path, capsys):
    """--device-decode on the CPU runs the device path (data/jpeg.py) with torchvision's CPU decoder."""
    code = main(["bench", "--mode", "data", "--data", f"folder:{jpeg_folder}", "--device-decode", "--workers", "0",
                 "--batch-size", "4", "--image-size", "64", "--json", *QUICK])
    assert code == 0
    r = json.loads(capsys.readouterr().out)
    assert r["device_decode"] is True and r["results"]["data"]["device_decode"] is True
    check_entry(r["results"]["data"])


def test_cuda_graphs_without_cuda_are_noted_not_used(capsys):
    code = main(["bench", "--mode", "infer", "--model", "alexnet_mini", "--image-size", "32", "--cuda-graphs", "--json",
                 *QUICK])
    assert code == 0
    r = json.loads(capsys.readouterr().out)
    assert r["cuda_graphs"] is False and r["results"]["infer"]["cuda_graphs"] is False
    assert "CUDA graphs need --compile and a CUDA device; measured without them" in r["notes"]


def test_switches_speak_as_training_does(capsys):
    """channels_last, compile, cuda_graphs and device_decode take auto/on/off, as TrainConfig's do,
    and auto is decided by the same rules (engine/fast.py)."""
    from alexnet.engine.fast import bf16_switch

    with pytest.raises(UsageError, match="channels_last must be one of auto, on, off; got True"):
        BenchConfig(channels_last=True)
    for flags, nhwc in ((["--no-channels-last"], False), (["--channels-last", "auto"],
                                                          bf16_switch("auto", torch.device("cpu")))):
        code = main(["bench", "--mode", "infer", "--model", "alexnet_mini", "--image-size", "32", "--batch-size", "2",
                     "--no-ceiling", "--json", *flags, *QUICK])
        r = json.loads(capsys.readouterr().out)
        assert code == 0 and r["channels_last"] is nhwc and r["results"]["infer"]["channels_last"] is nhwc
        assert r["compile"] is False  # auto: on for CUDA only


@pytest.mark.parametrize("args,words", [
    (["--mode", "data"], "--mode data needs --data"),
    (["--batch-size", "0"], "--batch-size"),
    (["--mode", "fast"], "--mode"),
    (["--precision", "fp8"], "--precision"),
    (["--compile", "maybe"], "--compile"),
    (["--channels-last", "true"], "--channels-last"),
    (["--model", "lenet"], "unknown model 'lenet'"),
    (["--image-size", "4"], "--image-size"),
    (["--model", "alexnet_mini", "--image-size", "32", "--baseline", "--mode", "infer"], "at least 63"),
    (["--mode", "data", "--data", "folder:/no/such/folder"], "/no/such/folder"),
    (["--mode", "data", "--data", "nosuch"], "unknown dataset"),
])
def test_bad_options_are_one_line_exit_2(args: list[str], words: str, capsys):
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_cuda_without_a_gpu_is_a_one_line_error(capsys):
    assert main(["bench", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "no CUDA GPU" in err and len(err.strip().splitlines()) == 1
