"""cuda-convnet's CIFAR-10 nets (models/cudaconvnet.py) against the layer files' numbers, the
locally connected layer against a loop over positions, and cuda-convnet's response normalisation
formula against torch's LocalResponseNorm."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from alexnet.models import build_model
from alexnet.models.local import LocallyConnected2d
from alexnet.models.lrn import LocalResponseNorm


def shapes(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    out = {}
    for name, layer in model.features.named_children():
        x = layer(x)
        out[name] = tuple(x.shape[1:])
    return out


def test_convnet4_is_the_18pct_layout_with_avg_pools_and_cuda_convnets_sizes():
    model = build_model("convnet4")
    s = shapes(model, torch.zeros(1, 3, 32, 32))
    assert s["pool1"] == (32, 16, 16) and s["pool2"] == (32, 8, 8) and s["pool3"] == (64, 4, 4)
    pools = [m for m in model.features if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
    assert [type(p) for p in pools] == [nn.MaxPool2d, nn.AvgPool2d, nn.AvgPool2d]
    # cuda-convnet's outputsX = ceil((32 - 3) / 2) + 1 = 16: the pool rounds up
    assert all(p.ceil_mode for p in pools)
    assert [type(m) for m in model.classifier] == [nn.Linear]


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_convnet4_init_is_the_layer_files_for_both_activations(activation: str):
    torch.manual_seed(0)
    model = build_model("convnet4", activation=activation)
    stds = {"conv1": 1e-4, "conv2": 0.01, "conv3": 0.01, "fc4": 0.01}
    layers = dict(model.named_modules())
    for name, std in stds.items():
        layer = layers[f"features.{name}"] if name.startswith("conv") else layers[f"classifier.{name}"]
        assert float(layer.weight.detach().std()) == pytest.approx(std, rel=0.1)
        assert float(layer.bias.detach().abs().max()) == 0.0


def test_an_average_pool_of_the_last_window_averages_only_the_pixels_inside():
    pool = build_model("convnet4").features.pool2
    x = torch.arange(16.0).view(1, 1, 4, 4)
    out = pool(x)  # windows start at 0 and 2; the last holds columns/rows 2..3 only
    assert out.shape == (1, 1, 2, 2)
    assert float(out[0, 0, 1, 1]) == pytest.approx(float(x[0, 0, 2:, 2:].mean()))


def test_locally_connected_layer_matches_a_loop_over_positions():
    torch.manual_seed(0)
    layer = LocallyConnected2d(3, 4, in_size=5, kernel_size=3, padding=1)
    nn.init.normal_(layer.bias)
    x = torch.randn(2, 3, 5, 5)
    out = layer(x).detach().numpy()
    w, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()  # L,C*k*k,out ; out,H,W
    xp = np.pad(x.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.zeros((2, 4, 5, 5))
    for i in range(5):
        for j in range(5):
            patch = xp[:, :, i:i + 3, j:j + 3].reshape(2, -1)  # N,C*k*k in unfold's order (C, then rows, then cols)
            expected[:, :, i, j] = patch @ w[i * 5 + j] + b[:, i, j]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    # unshared: changing one position's kernel changes that position's output only
    with torch.no_grad():
        layer.weight[7] += 1.0
    diff = (layer(x).detach() - torch.from_numpy(out)).abs().sum(dim=(0, 1))
    assert int((diff > 1e-6).sum()) == 1 and float(diff[1, 2]) > 0


def test_convnet_local_is_the_11pct_net_and_lrn_false_only_drops_the_norms():
    with_norm, without = build_model("convnet_local"), build_model("convnet_local", lrn=False)
    s = shapes(with_norm, torch.zeros(1, 3, 32, 32))
    assert list(s) == ["conv1", "relu1", "pool1", "lrn1", "conv2", "relu2", "lrn2", "pool2", "local3", "relu3",
                       "local4", "relu4"]
    assert s["pool2"] == (64, 8, 8) and s["local3"] == (64, 8, 8) and s["local4"] == (32, 8, 8)
    assert [n for n in shapes(without, torch.zeros(1, 3, 32, 32))] == [n for n in s if not n.startswith("lrn")]
    assert sum(p.numel() for p in with_norm.parameters()) == sum(p.numel() for p in without.parameters())
    assert build_model("convnet_local", local3=32).features.local3.out_channels == 32  # the 13% file's width
    norm = with_norm.features.lrn1
    assert isinstance(norm, nn.LocalResponseNorm)
    assert (norm.size, norm.alpha, norm.beta, norm.k) == (9, 0.001, 0.75, 1.0)


def test_cuda_convnets_cmrnorm_formula_is_torchs_local_response_norm():
    """cuda-convnet: b = a (1 + scale/size * sum over `size` maps of a^2)^-pow (layer.py divides scale
    by size; conv_util.cu kFCNorm adds 1), the window starting size/2 maps below, clipped at the ends."""
    g = torch.Generator().manual_seed(3)
    a = torch.randn(2, 16, 3, 3, generator=g) * 20
    size, scale, pw = 9, 0.001, 0.75
    x = a.numpy().astype(np.float64)
    expected = np.empty_like(x)
    for f in range(16):
        start = f - size // 2  # kFCNorm: startF = -sizeF/2 + filterIdx (C division: -4 for size 9)
        lo, hi = max(0, start), min(16, start + size)
        s = (x[:, lo:hi] ** 2).sum(axis=1)
        expected[:, f] = x[:, f] * (1 + scale / size * s) ** -pw
    ours = LocalResponseNorm(size=size, alpha=scale, beta=pw, k=1.0)(a)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-5)
    torch.testing.assert_close(ours, nn.LocalResponseNorm(size, scale, pw, 1.0)(a), rtol=1e-5, atol=1e-5)


def test_summary_counts_the_local_layers_as_flop_counter_does():
    from torch.utils.flop_counter import FlopCounterMode

    from alexnet.models.summary import summarize

    model = build_model("convnet_local").eval()
    table = summarize(model)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    assert 2 * table["total_macs"] == counter.get_total_flops()
