"""int8 inference (inference/int8.py, `alexnet eval --int8`, `alexnet bench --baseline int8`).

The reference is the float32 net the int8 copy was made from: its logits on the same inputs,
its top-1 on the same held-out images. What is checked beside that: every conv and fc layer
really runs in int8 (quantized modules, uint8 activations between them), LRN runs in float32,
the float net is left as it was, and bad calls are one-line errors.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import pytest
import torch
from torch import nn

from alexnet.cli import main
from alexnet.errors import UsageError
from alexnet.inference.int8 import quantize_int8
from alexnet.models import build_model
from alexnet.models.lrn import LocalResponseNorm

QUICK = ["--warmup", "1", "--windows", "2", "--steps", "1", "--device", "cpu", "--ceiling-side", "128"]


def batches(n: int, size: int, seed: int, count: int = 4) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 3, size, size, generator=g) for _ in range(count)]  # N,C,H,W, unit variance


QD = torch.ops.quantized_decomposed


def int8_layers(q: nn.Module) -> list[str]:
    """The conv and linear nodes of the converted graph that take int8 weights (per channel) and
    uint8 activations: their weight and input each come out of a dequantize."""
    return [n.name for n in q.graph.graph.nodes
            if n.target in (torch.ops.aten.conv2d.default, torch.ops.aten.linear.default)
            and n.args[0].target == QD.dequantize_per_tensor.default
            and n.args[1].target == QD.dequantize_per_channel.default]


@pytest.mark.parametrize("name, kwargs, size", [
    ("alexnet_mini", {}, 32),
    ("alexnet_mini", {"towers": 2}, 32),  # grouped convs, LRN within each tower
    ("alexnet_simple", {"lrn": True}, 32),
    ("alexnet_owt", {}, 96),  # torchvision's layout: adaptive avgpool, no LRN
    ("alexnet2012", {}, 227),  # the paper's: 11x11/4, two towers, LRN
])
def test_int8_logits_follow_the_float_net_and_every_layer_is_int8(name: str, kwargs: dict, size: int) -> None:
    torch.manual_seed(0)
    net = build_model(name, **kwargs).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    # not lowered: the converted graph's reference arithmetic, without Inductor's compile
    q = quantize_int8(net, batches(4 if size > 100 else 16, size, seed=1), lower=False)
    x = batches(5, size, seed=2, count=1)[0]  # another batch size than the calibration's
    with torch.no_grad():
        want, got = net(x), q(x)  # N,K
    assert got.dtype == torch.float32 and got.shape == want.shape
    rel = float((got - want).norm() / want.norm())
    # measured 0.009 (alexnet_owt) to 0.021 (alexnet_mini) with torchao's x86 default config;
    # a layer left unscaled or a wrong zero point gives errors of order 1
    assert rel < 0.1, rel
    convs_and_fcs = [n for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(int8_layers(q)) == len(convs_and_fcs)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items()), "the float net changed"
    assert q.int8 and q.input_size == net.input_size and q.num_classes == net.num_classes


def test_lowered_net_runs_onednn_int8_kernels_and_gives_the_graphs_logits() -> None:
    """Inductor (freezing on) rewrites each dequantize-conv/linear-quantize pattern into one
    oneDNN int8 kernel; its counters say how many it lowered, the graph's arithmetic is the reference."""
    from torch._dynamo.utils import counters

    torch.manual_seed(0)
    net = build_model("alexnet_mini", towers=2).eval()
    counters.clear()
    q = quantize_int8(net, batches(16, 32, seed=1))
    lowered = {k: v for k, v in counters["inductor"].items() if k.endswith("_lower_count")}
    convs = sum(v for k, v in lowered.items() if k.startswith("qconv"))
    fcs = sum(v for k, v in lowered.items() if k.startswith("qlinear"))
    assert (convs, fcs) == (sum(isinstance(m, nn.Conv2d) for m in net.modules()),
                            sum(isinstance(m, nn.Linear) for m in net.modules())), lowered
    for n in (7, 1):  # any batch size, one compile
        x = batches(n, 32, seed=2, count=1)[0]
        with torch.no_grad():
            got, reference, want = q(x), q.graph(x), net(x)
        # oneDNN's int32 accumulation against the reference's float32 sums: a rounding step apart at most
        assert float((got - reference).abs().max()) <= 0.05 * float(want.abs().max()), (got - reference).abs().max()
    with pytest.raises(UsageError, match="locally connected"):
        quantize_int8(build_model("convnet_local").eval(), batches(2, 32, seed=0))


def test_lrn_runs_in_float32_between_int8_layers() -> None:
    torch.manual_seed(0)
    net = build_model("alexnet_mini").eval()
    q = quantize_int8(net, batches(16, 32, seed=1), lower=False)
    lrn = [n for n in q.graph.graph.nodes if n.op == "call_function" and any(
        issubclass_(t, LocalResponseNorm) for _, t in (n.meta.get("nn_module_stack") or {}).values())]
    assert lrn, "no LRN in the graph"
    quantized_ops = {QD.quantize_per_tensor.default, QD.dequantize_per_tensor.default}
    assert not [n.name for n in lrn if n.target in quantized_ops]  # nothing inside the LRN is int8
    conv2 = next(n for n in q.graph.graph.nodes if n.target == torch.ops.aten.conv2d.default
                 and "conv2" in str(n.meta.get("nn_module_stack")))
    # LRN1's float output quantized again (through the maxpool) for conv2
    assert conv2.args[0].target == QD.dequantize_per_tensor.default


def test_a_torch_without_torchaos_pt2e_is_a_one_line_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torchao.quantization.pt2e.quantize_pt2e", None)  # import fails
    with pytest.raises(UsageError, match="needs torchao's pt2e") as info:
        quantize_int8(build_model("alexnet_mini").eval(), batches(2, 32, seed=0))
    assert len(str(info.value).splitlines()) == 1


def issubclass_(t: object, cls: type) -> bool:
    if isinstance(t, str):  # the stack holds the class or its qualified name, by torch version
        return t.endswith(cls.__qualname__)
    return isinstance(t, type) and issubclass(t, cls)


def test_quantize_int8_bad_calls_are_usage_errors() -> None:
    net = build_model("alexnet_mini").eval()
    with pytest.raises(UsageError, match="at least one batch"):
        quantize_int8(net, [])
    with pytest.raises(UsageError, match="features/classifier"):
        quantize_int8(nn.Linear(3, 2), batches(2, 32, seed=0))
    with torch.device("meta"):
        meta = build_model("alexnet_mini")
    with pytest.raises(UsageError, match="on the CPU"):
        quantize_int8(meta, batches(2, 32, seed=0))

    class Branchy(nn.Module):  # a user's layer with data-dependent control flow: torch.export cannot capture it
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x if x.sum() > 0 else -x

    odd = build_model("alexnet_simple").eval()
    odd.features.add_module("branchy", Branchy())
    with pytest.raises(UsageError, match="cannot be captured"):
        quantize_int8(odd, batches(2, 32, seed=0))


# -- on a trained net and real held-out images ------------------------------------------------

N_TEST = 500  # the shared net's held-out images (tests/conftest.py)


@pytest.fixture(scope="module")
def trained(trained_shapes: dict[str, Any]) -> dict[str, Any]:
    return trained_shapes


def test_int8_top1_is_the_float_top1_within_two_standard_errors(trained: dict[str, Any]) -> None:
    from alexnet.engine.evaluate import evaluate_checkpoint

    fp32 = evaluate_checkpoint(trained, workers=0)
    int8 = evaluate_checkpoint(trained, workers=0, calibrate=quantize_int8, calibration_images=128)
    assert fp32["n"] == int8["n"] == N_TEST
    assert fp32["top1"] > 0.5, "the net did not train: the comparison would say nothing"
    assert abs(int8["top1"] - fp32["top1"]) <= 2 * math.sqrt(0.25 / N_TEST), (int8["top1"], fp32["top1"])


def test_eval_cli_int8(trained: dict[str, Any], capsys) -> None:
    run = str(trained["path"])
    assert main(["eval", run, "--int8", "--calibration-images", "64", "--workers", "0", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["precision"] == "int8" and got["n"] == N_TEST and got["confusion_png"].endswith("-int8.png")
    assert main(["eval", run, "--int8", "--calibration-images", "64", "--workers", "0"]) == 0
    assert "int8)" in capsys.readouterr().out


@pytest.mark.parametrize("args, words", [
    (["--int8", "--amp"], "two precisions"),
    (["--int8", "--device", "cuda"], "runs on the CPU"),
    (["--int8", "--device", "mps"], "runs on the CPU"),
    (["--int8", "--calibration-images", "0"], "--calibration-images"),
    (["--int8", "--calibration-images", "-5"], "--calibration-images"),
    (["--int8", "--calibration-images", "lots"], "--calibration-images"),
])
def test_eval_int8_bad_options_are_one_line_exit_2(trained: dict[str, Any], args: list[str], words: str,
                                                   capsys) -> None:
    assert main(["eval", str(trained["path"]), "--workers", "0", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_calibration_needs_a_count_and_training_images(trained: dict[str, Any]) -> None:
    from alexnet.engine.evaluate import evaluate_checkpoint

    with pytest.raises(UsageError, match="calibration_images"):
        evaluate_checkpoint(trained, workers=0, calibrate=quantize_int8, calibration_images=0)


def test_bench_int8_beside_ours(capsys) -> None:
    assert main(["bench", "--model", "alexnet_mini", "--mode", "infer", "--image-size", "32", "--batch-size", "8",
                 "--baseline", "int8", "--json", *QUICK]) == 0
    r = json.loads(capsys.readouterr().out)
    entry = r["baselines"]["infer"]["int8"]
    assert entry["precision"] == "int8" and entry["images_per_s"] > 0
    assert entry["ceiling_tflops"] is None and entry["mfu"] is None  # no int8 ceiling is timed
    ours = r["results"]["infer"]["images_per_s"]
    assert r["ratios"]["infer"]["int8"] == pytest.approx(ours / entry["images_per_s"], rel=1e-12)
    assert entry["top1_agreement"] >= 0.5 and math.isfinite(entry["max_abs_diff"])
    assert main(["bench", "--mode", "train", "--baseline", "int8", *QUICK]) == 2
    assert "measures inference" in capsys.readouterr().err
