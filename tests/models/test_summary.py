"""Tests for alexnet.models.summary: per-layer shapes, totals, agreement with torch's FLOP counter."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from alexnet.errors import UsageError
from alexnet.models import build_model
from alexnet.models.summary import format_summary, summarize


@pytest.fixture(scope="module")
def alexnet2012() -> nn.Module:
    torch.manual_seed(0)
    return build_model("alexnet2012")


@pytest.fixture(scope="module")
def summary2012(alexnet2012) -> dict:
    return summarize(alexnet2012)


def flops(model: nn.Module, input_size: tuple[int, int, int]) -> int:
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, *input_size))
    return counter.get_total_flops()


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("alexnet2012", {}),  # grouped convs
        ("alexnet2012", {"towers": 1}),
        ("alexnet_owt", {}),
        ("alexnet_d2l", {}),
        ("alexnet_mini", {}),
        ("alexnet_simple", {"lrn": True}),
        ("vgg_small", {"in_channels": 1}),
    ],
)
def test_macs_agree_with_flop_counter(name, kwargs, alexnet2012):
    model = alexnet2012 if name == "alexnet2012" and not kwargs else build_model(name, **kwargs)
    summary = summarize(model)
    assert summary["total_macs"] > 0
    assert flops(model, model.input_size) == 2 * summary["total_macs"]


def test_alexnet2012_totals(summary2012):
    s = summary2012
    assert s["input_size"] == [3, 227, 227]
    assert s["total_params"] == s["trainable_params"] == 60_965_224
    assert s["conv_params"] == 2_334_080
    assert s["conv_params"] + s["fc_params"] == s["total_params"]
    assert 0.03 < s["conv_share"] < 0.05
    assert s["conv_share"] + s["fc_share"] == pytest.approx(1.0)
    assert sum(r["params"] for r in s["rows"]) == s["total_params"]
    assert s["total_macs"] == sum(r["macs"] for r in s["rows"])


def test_alexnet2012_layer_rows(summary2012):
    rows = {r["name"]: r for r in summary2012["rows"]}
    assert [r["name"] for r in summary2012["rows"]][:4] == [
        "features.conv1", "features.relu1", "features.lrn1", "features.pool1",
    ]
    assert rows["features.conv1"]["output_shape"] == [96, 55, 55]
    assert rows["features.pool1"]["output_shape"] == [96, 27, 27]
    assert rows["features.pool2"]["output_shape"] == [256, 13, 13]
    assert rows["features.conv3"]["output_shape"] == [384, 13, 13]
    assert rows["features.pool5"]["output_shape"] == [256, 6, 6]
    assert rows["classifier.fc6"]["output_shape"] == [4096]
    assert rows["classifier.fc8"]["output_shape"] == [1000]
    assert rows["features.lrn1"]["type"] == "LocalResponseNorm"
    assert rows["features.conv1"]["params"] == 96 * 3 * 11 * 11 + 96
    # conv2 is split in two towers: each kernel sees 48 of the 96 maps
    assert rows["features.conv2"]["macs"] == 256 * 27 * 27 * 48 * 5 * 5
    assert rows["classifier.fc6"]["macs"] == 9216 * 4096
    assert rows["features.pool1"]["macs"] == 0 and rows["features.pool1"]["params"] == 0


def test_non_overlapping_pools_keep_alexnet_sizes():
    with torch.device("meta"):  # shapes only; no weights needed
        model = build_model("alexnet2012", pool="non_overlapping")
    rows = {r["name"]: r["output_shape"] for r in summarize(model)["rows"]}
    assert rows["features.pool1"] == [96, 27, 27]
    assert rows["features.pool2"] == [256, 13, 13]
    assert rows["features.pool5"] == [256, 6, 6]


@pytest.mark.parametrize("size", [(3, 64, 64), (1, 227, 227)])
def test_wrong_input_size_is_a_usage_error(alexnet2012, size):
    with pytest.raises(UsageError) as info:
        summarize(alexnet2012, size)
    message = str(info.value)
    assert "alexnet2012" in message and "x".join(map(str, size)) in message
    assert "3x227x227" in message and "\n" not in message


@pytest.mark.parametrize("size", [(3, 227), (3, 0, 227), "3x227x227"])
def test_malformed_input_size_is_a_usage_error(alexnet2012, size):
    with pytest.raises(UsageError):
        summarize(alexnet2012, size)


def test_summarize_leaves_the_model_as_it_was(alexnet2012):
    model = build_model("alexnet_mini").train()
    summarize(model)
    assert model.training
    assert all(not m._forward_hooks for m in model.modules())
    summarize(alexnet2012)
    assert all(not m._forward_hooks for m in alexnet2012.modules())


def test_explicit_input_size():
    model = build_model("alexnet_owt")
    s = summarize(model, (3, 227, 227))
    assert s["input_size"] == [3, 227, 227]
    assert s["rows"][0]["output_shape"] == [64, 56, 56]


def test_format_summary(summary2012):
    text = format_summary(summary2012)
    lines = text.splitlines()
    assert lines[0].split() == ["Layer", "Type", "Kernel", "Stride", "Output", "shape", "Params", "MACs"]
    assert any("features.conv1" in line and "96x55x55" in line and "34,944" in line for line in lines)
    assert "60,965,224" in text
    assert "3.8%" in text and "96.2%" in text
    table = [line for line in lines if line.startswith(("features.", "classifier."))]
    assert len(table) == len(summary2012["rows"])
    # numbers are right-aligned, so every row of the table ends in the same column
    assert len({len(line) for line in [lines[0], *table]}) == 1


def test_kernels_and_strides_are_the_papers(summary2012):
    """Section 3.5 and figure 2: conv1 11x11 stride 4, conv2 5x5, conv3-5 3x3 (stride 1), the
    overlapping pools 3x3 stride 2; layers without a window have none."""
    by_name = {r["name"].split(".")[-1]: r for r in summary2012["rows"]}
    paper = {"conv1": (11, 4), "conv2": (5, 1), "conv3": (3, 1), "conv4": (3, 1), "conv5": (3, 1),
             "pool1": (3, 2), "pool2": (3, 2), "pool5": (3, 2)}
    for name, (k, stride) in paper.items():
        assert (by_name[name]["kernel"], by_name[name]["stride"]) == ([k, k], [stride, stride]), name
    assert all(by_name[n]["kernel"] is None and by_name[n]["stride"] is None for n in ("relu1", "lrn1", "fc6", "drop6"))
    text = format_summary(summary2012)
    conv1 = next(line for line in text.splitlines() if line.startswith("features.conv1"))
    assert conv1.split()[2:4] == ["11x11", "4"]
