"""Tests for alexnet.models: sizes, torchvision compatibility, LRN, init, switches, build_model."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch
import torchvision
from torch import nn

from alexnet.errors import UsageError
from alexnet.models import MODELS, ModelEntry, build_model, check_input_size, list_models
from alexnet.models.layers import make_lrn
from alexnet.models.lrn import LocalResponseNorm


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def on_meta(name: str, **kwargs) -> nn.Module:
    """Build without allocating or initializing real weights: for structure and counts only."""
    with torch.device("meta"):
        return build_model(name, **kwargs)


def modules_of(model: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


@pytest.fixture(scope="module")
def alexnet2012() -> nn.Module:
    torch.manual_seed(0)
    return build_model("alexnet2012").eval()


# ----------------------------------------------------------------------------- registry


def test_list_models_names_every_model_paper_first():
    names = list_models()
    assert names[0] == "alexnet2012"
    assert sorted(names) == sorted(MODELS)
    for name in ["alexnet_owt", "alexnet_d2l", "alexnet_mini", "alexnet_simple",
                 "vgg11", "vgg13", "vgg16", "vgg19", "vgg_small"]:
        assert name in names


def test_model_entries_are_frozen_with_descriptions():
    for entry in MODELS.values():
        assert isinstance(entry, ModelEntry)
        assert callable(entry.builder) and entry.description
        with pytest.raises(dataclasses.FrozenInstanceError):
            entry.description = "x"


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_has_the_common_attributes(name):
    model = on_meta(name)
    assert isinstance(model.features, nn.Module)
    assert isinstance(model.classifier, nn.Sequential)
    assert isinstance(model.classifier[-1], nn.Linear)
    assert model.num_classes == model.classifier[-1].out_features
    assert len(model.input_size) == 3 and all(isinstance(s, int) for s in model.input_size)
    assert model.arch == name and model.arch_kwargs == {}
    small = on_meta(name, num_classes=7, in_channels=1)
    assert small.num_classes == 7 and small.input_size[0] == 1


# ----------------------------------------------------------------------------- parameter counts


@pytest.mark.parametrize(
    "name, kwargs, expected",
    [
        ("alexnet2012", {}, 60_965_224),
        ("alexnet2012", {"towers": 1}, 62_378_344),
        ("alexnet_owt", {}, 61_100_840),
        ("vgg16", {}, 138_357_544),
    ],
)
def test_parameter_counts(name, kwargs, expected):
    assert n_params(on_meta(name, **kwargs)) == expected


@pytest.mark.parametrize("name", ["vgg11", "vgg13", "vgg16", "vgg19"])
def test_vgg_parameter_names_and_shapes_match_torchvision(name):
    with torch.device("meta"):
        theirs = getattr(torchvision.models, name)()
    ours = on_meta(name)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }


# ----------------------------------------------------------------------------- torchvision compatibility


def test_alexnet_owt_matches_torchvision_both_ways():
    torch.manual_seed(0)
    theirs = torchvision.models.alexnet().eval()
    ours = build_model("alexnet_owt").eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))

    ours2 = build_model("alexnet_owt").eval()
    theirs.load_state_dict(ours2.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(theirs(x), ours2(x))


def test_vgg11_loads_torchvision_state_dict_strict():
    torch.manual_seed(0)
    theirs = torchvision.models.vgg11().eval()
    ours = build_model("vgg11").eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(1, 3, 32, 32)  # the adaptive pool lets a small input stand in for 224
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


# ----------------------------------------------------------------------------- output shapes


def test_alexnet2012_output_and_features(alexnet2012):
    x = torch.randn(1, 3, 227, 227)
    with torch.no_grad():
        logits = alexnet2012(x)
        feats = alexnet2012.forward_features(x)
        assert logits.shape == (1, 1000)
        assert feats.shape == (1, 4096)
        assert (feats >= 0).all()  # fc7 after its ReLU
        torch.testing.assert_close(alexnet2012.classifier.fc8(feats), logits)
    assert alexnet2012.input_size == (3, 227, 227)


@pytest.mark.parametrize("size", [224, 227])
def test_alexnet_owt_output_shape(size):
    model = build_model("alexnet_owt").eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, size, size)).shape == (1, 1000)
        assert model.forward_features(torch.randn(1, 3, size, size)).shape == (1, 4096)
    assert model.input_size == (3, 224, 224)


def test_alexnet_d2l_output_shape():
    model = build_model("alexnet_d2l").eval()
    assert model.input_size == (1, 224, 224)
    x = torch.randn(1, 1, 224, 224)
    with torch.no_grad():
        assert model(x).shape == (1, 10)
        assert model.forward_features(x).shape == (1, 4096)


@pytest.mark.parametrize("name, feature_dim", [("alexnet_mini", 512), ("alexnet_simple", 512), ("vgg_small", 512)])
@pytest.mark.parametrize("in_channels", [3, 1])
def test_small_models_output_shapes(name, feature_dim, in_channels):
    model = build_model(name, in_channels=in_channels).eval()
    assert model.input_size == (in_channels, 32, 32)
    x = torch.randn(2, in_channels, 32, 32)
    with torch.no_grad():
        assert model(x).shape == (2, 10)
        feats = model.forward_features(x)
        assert feats.shape == (2, feature_dim)
        torch.testing.assert_close(model.classifier[-1](feats), model(x))


@pytest.mark.parametrize("name", ["alexnet_mini", "alexnet_simple"])
@pytest.mark.parametrize("pool", ["overlapping", "non_overlapping"])
def test_small_models_train_a_step(name, pool):
    torch.manual_seed(0)
    model = build_model(name, pool=pool, lrn=True).train()
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    # the small last layer makes the first guesses nearly uniform
    assert abs(loss.item() - torch.log(torch.tensor(10.0)).item()) < 0.5
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


# ----------------------------------------------------------------------------- LRN


def lrn_by_hand(a: torch.Tensor, n: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0):
    """b_c = a_c / (k + alpha/n * sum over the centred window of a^2)^beta, window clipped at the edges."""
    channels = a.shape[1]
    out = torch.empty_like(a)
    for c in range(channels):
        lo, hi = max(0, c - n // 2), min(channels - 1, c + (n - 1) // 2)
        window = (a[:, lo:hi + 1] ** 2).sum(dim=1)
        out[:, c] = a[:, c] / (k + alpha / n * window) ** beta
    return out


def test_lrn_matches_the_formula_by_hand():
    torch.manual_seed(0)
    a = torch.randn(2, 11, 3, 4, dtype=torch.float64) * 30  # large enough that the sum matters
    lrn = make_lrn()
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 1e-4, 0.75, 2.0)
    assert isinstance(lrn, nn.LocalResponseNorm)
    expected = lrn_by_hand(a)
    torch.testing.assert_close(lrn(a), expected)
    torch.testing.assert_close(nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0)(a), expected)
    # the normalization is not negligible at this scale, so the test can tell the formulas apart
    assert (expected - a / 2.0 ** 0.75).abs().max() > 1e-3


@pytest.mark.parametrize("size", [5, 4, 1])
@pytest.mark.parametrize("beta", [0.75, 0.5])  # 0.75 takes the two-roots path of models/lrn.py, others pow
def test_lrn_gradient_matches_torch(size, beta):
    torch.manual_seed(0)
    a = (torch.randn(2, 7, 3, 3, dtype=torch.float64) * 20).requires_grad_()
    ours = LocalResponseNorm(size, alpha=1e-2, beta=beta, k=1.0)
    torch.autograd.gradcheck(ours, (a,))
    g = torch.randn(2, 7, 3, 3, dtype=torch.float64)
    out = ours(a)
    (grad_ours,) = torch.autograd.grad(out, a, g)
    expected = nn.LocalResponseNorm(size, 1e-2, beta, 1.0)(a)
    (grad_torch,) = torch.autograd.grad(expected, a, g)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(grad_ours, grad_torch)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_lrn_in_channels_last_and_bf16_matches_torch_in_fp32(dtype):
    """The CPU's window sum (a band-matrix product, models/lrn.py) in the layouts and precision
    the CPU fast path trains in, against torch's own module computing in fp32 on the same values:
    forward and input gradient within the input dtype's rounding (torch's default tolerances)."""
    torch.manual_seed(0)
    a = (torch.randn(4, 24, 6, 6) * 20).to(dtype).contiguous(memory_format=torch.channels_last).requires_grad_()
    g = torch.randn(4, 24, 6, 6).to(dtype)
    ours = LocalResponseNorm(5, alpha=1e-2, beta=0.75, k=1.0)
    out = ours(a)
    (grad_ours,) = torch.autograd.grad(out, a, g)
    a32 = a.detach().float().requires_grad_()
    expected = nn.LocalResponseNorm(5, 1e-2, 0.75, 1.0)(a32)
    (grad_torch,) = torch.autograd.grad(expected, a32, g.float())
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), expected,
                               **({} if dtype == torch.float32 else dict(rtol=1.6e-2, atol=1e-2)))
    torch.testing.assert_close(grad_ours.float(), grad_torch,
                               **({} if dtype == torch.float32 else dict(rtol=1.6e-2, atol=1e-2)))
    assert (expected - a32 / 1.0).abs().max() > 1e-1  # the normalisation is not negligible at this scale


def test_lrn_compiles_into_one_graph_with_torchs_numbers():
    """torch.compile takes the whole LRN (forward and the hand-written backward) as one graph,
    fullgraph=True: no break hands it back to eager code, so Inductor fuses its window sum and
    power into few kernels (the fused LRN of issue 6). Checked against torch's own module."""
    torch.manual_seed(0)
    a = (torch.randn(2, 8, 5, 6) * 20).requires_grad_()
    g = torch.randn(2, 8, 5, 6)
    ours = torch.compile(LocalResponseNorm(5, alpha=1e-2, beta=0.75, k=1.0, towers=2), fullgraph=True)
    per_tower = [nn.LocalResponseNorm(5, 1e-2, 0.75, 1.0)(t) for t in a.split(4, dim=1)]
    expected = torch.cat(per_tower, dim=1)
    torch.testing.assert_close(ours(a), expected)
    (grad_ours,) = torch.autograd.grad(ours(a), a, g)
    (grad_torch,) = torch.autograd.grad(expected, a, g)
    torch.testing.assert_close(grad_ours, grad_torch)


# ----------------------------------------------------------------------------- paper init


def test_alexnet2012_paper_init(alexnet2012):
    named = dict(alexnet2012.named_modules())
    layers = {n.rsplit(".", 1)[-1]: m for n, m in named.items() if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert sorted(layers) == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    for name, layer in layers.items():
        w = layer.weight.detach()
        assert abs(w.mean().item()) < 1e-3, name
        assert w.std().item() == pytest.approx(0.01, rel=0.05), name
        expected_bias = 1.0 if name in {"conv2", "conv4", "conv5", "fc6", "fc7"} else 0.0
        assert torch.equal(layer.bias.detach(), torch.full_like(layer.bias, expected_bias)), name


def test_alexnet2012_caffe_init_is_bvlc_alexnets_train_val():
    """BVLC/caffe models/bvlc_alexnet/train_val.prototxt: gaussian std 0.01, fc6 and fc7 0.005; bias 0.1 in conv2,
    conv4, conv5, fc6, fc7, else 0 (its readme: "initializing non-zero biases to 0.1 instead of 1")."""
    torch.manual_seed(0)
    model = build_model("alexnet2012", init="caffe")
    layers = {n.rsplit(".", 1)[-1]: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    prototxt = {"conv1": (0.01, 0.0), "conv2": (0.01, 0.1), "conv3": (0.01, 0.0), "conv4": (0.01, 0.1),
                "conv5": (0.01, 0.1), "fc6": (0.005, 0.1), "fc7": (0.005, 0.1), "fc8": (0.01, 0.0)}
    for name, (std, bias) in prototxt.items():
        assert layers[name].weight.detach().std().item() == pytest.approx(std, rel=0.05), name
        assert torch.equal(layers[name].bias.detach(), torch.full_like(layers[name].bias, bias)), name


# ----------------------------------------------------------------------------- structure and switches


def test_alexnet2012_layer_names_and_towers():
    model = on_meta("alexnet2012")
    assert list(dict(model.features.named_children())) == [
        "conv1", "relu1", "lrn1", "pool1", "conv2", "relu2", "lrn2", "pool2",
        "conv3", "relu3", "conv4", "relu4", "conv5", "relu5", "pool5",
    ]
    assert list(dict(model.classifier.named_children())) == [
        "fc6", "relu6", "drop6", "fc7", "relu7", "drop7", "fc8",
    ]
    groups = {n: m.groups for n, m in model.features.named_children() if isinstance(m, nn.Conv2d)}
    assert groups == {"conv1": 1, "conv2": 2, "conv3": 1, "conv4": 2, "conv5": 2}
    one = on_meta("alexnet2012", towers=1)
    assert all(m.groups == 1 for m in modules_of(one, nn.Conv2d))
    lrn = modules_of(model, nn.LocalResponseNorm)
    assert len(lrn) == 2 and all((m.size, m.alpha, m.beta, m.k) == (5, 1e-4, 0.75, 2.0) for m in lrn)
    pools = modules_of(model, nn.MaxPool2d)
    assert len(pools) == 3 and all((p.kernel_size, p.stride) == (3, 2) for p in pools)
    drops = list(model.classifier.named_children())
    # dropout acts on the hidden units' outputs: right after each ReLU
    assert isinstance(drops[1][1], nn.ReLU) and isinstance(drops[2][1], nn.Dropout)


SWITCHED = ["alexnet2012", "alexnet_mini", "alexnet_simple"]


@pytest.mark.parametrize("name", SWITCHED)
def test_activation_switch(name):
    relu, tanh = on_meta(name, activation="relu"), on_meta(name, activation="tanh")
    assert modules_of(relu, nn.ReLU) and not modules_of(relu, nn.Tanh)
    assert modules_of(tanh, nn.Tanh) and not modules_of(tanh, nn.ReLU)
    assert len(modules_of(tanh, nn.Tanh)) == len(modules_of(relu, nn.ReLU))
    assert n_params(relu) == n_params(tanh)


@pytest.mark.parametrize("name", SWITCHED)
def test_lrn_switch(name):
    on, off = on_meta(name, lrn=True), on_meta(name, lrn=False)
    assert len(modules_of(on, nn.LocalResponseNorm)) == 2
    assert not modules_of(off, nn.LocalResponseNorm)
    assert n_params(on) == n_params(off)


@pytest.mark.parametrize("name", SWITCHED)
def test_pool_switch(name):
    over, non = on_meta(name, pool="overlapping"), on_meta(name, pool="non_overlapping")
    assert all((p.kernel_size, p.stride) == (3, 2) for p in modules_of(over, nn.MaxPool2d))
    assert all((p.kernel_size, p.stride) == (2, 2) for p in modules_of(non, nn.MaxPool2d))
    assert len(modules_of(over, nn.MaxPool2d)) == len(modules_of(non, nn.MaxPool2d)) > 0
    assert n_params(over) == n_params(non)


@pytest.mark.parametrize("name", [*SWITCHED, "alexnet_owt", "alexnet_d2l", "vgg11", "vgg_small"])
def test_dropout_switch(name):
    default, changed = on_meta(name), on_meta(name, dropout=0.2)
    assert all(d.p == 0.5 for d in modules_of(default, nn.Dropout))
    assert len(modules_of(changed, nn.Dropout)) == len(modules_of(default, nn.Dropout)) > 0
    assert all(d.p == 0.2 for d in modules_of(changed, nn.Dropout))
    assert n_params(default) == n_params(changed)


@pytest.mark.parametrize("name", ["alexnet_mini", "alexnet_simple"])
def test_small_pools_give_the_same_sizes(name):
    for pool in ["overlapping", "non_overlapping"]:
        model = build_model(name, pool=pool).eval()
        with torch.no_grad():
            assert model.features(torch.randn(1, 3, 32, 32)).shape[-2:] == (4, 4)


# ----------------------------------------------------------------------------- build_model


@pytest.mark.parametrize(
    "name, kwargs, words",
    [
        ("resnet50", {}, ["unknown model 'resnet50'", "alexnet2012", "vgg_small"]),
        ("alexnet2012", {"activation": "gelu"}, ["activation", "relu", "tanh", "gelu"]),
        ("alexnet2012", {"pool": "x"}, ["pool", "overlapping", "non_overlapping"]),
        ("alexnet2012", {"dropout": 1.5}, ["dropout", "[0, 1)", "1.5"]),
        ("alexnet2012", {"towers": 3}, ["towers", "1, 2"]),
        ("alexnet2012", {"num_classes": 0}, ["num_classes", ">= 1"]),
        ("alexnet2012", {"lrn": "yes"}, ["lrn", "true or false"]),
        ("alexnet_mini", {"in_channels": 2.5}, ["in_channels"]),
        ("alexnet_simple", {"towers": 2}, ["alexnet_simple", "towers", "activation", "dropout"]),
        ("alexnet_mini", {"towers": 3}, ["towers", "1, 2"]),
        ("alexnet_mini", {"conv_width": 0}, ["conv_width", "(0, 4]"]),
        *[("alexnet_mini", {"conv1_std": v}, ["conv1_std must be a number in [0, 1)"])
          for v in (-0.01, 1.0, float("nan"), True, "0.01", None)],
        ("alexnet2012", {"conv_width": "half"}, ["conv_width"]),
        ("alexnet2012", {"init": "kaiming"}, ["init", "paper", "caffe"]),
        ("convnet4", {"dropout": 0.5}, ["convnet4", "dropout", "activation"]),
        ("vgg16", {"activation": "tanh"}, ["vgg16", "activation", "num_classes"]),
        # sizes out of bounds (issue 16), refused before any memory is taken: the first would be 1.6 TB of fc8
        *[(name, {"num_classes": 10**11}, ["num_classes must be at most 100,000"]) for name in MODELS],
        *[(name, {"in_channels": c}, ["in_channels must be 1 or 3"])
          for name in ("alexnet2012", "alexnet_d2l", "vgg11") for c in (2, 4, 0, True)],
        ("convnet_local", {"local3": 10**6}, ["55,360,129,866 weights, more than the 1,000,000,000 allowed"]),
        ("convnet_local", {"local3": 10**30}, ["cannot be built", "Overflow"]),
    ],
)
def test_build_model_errors(name, kwargs, words):
    with pytest.raises(UsageError) as info:
        build_model(name, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_arch_kwargs_round_trip():
    kwargs = {"num_classes": 5, "in_channels": 1, "activation": "tanh", "lrn": False,
              "pool": "non_overlapping", "dropout": 0.3}
    torch.manual_seed(0)
    model = build_model("alexnet_mini", **kwargs).eval()
    assert model.arch == "alexnet_mini" and model.arch_kwargs == kwargs
    kwargs["num_classes"] = 99  # the model keeps its own copy
    assert model.arch_kwargs["num_classes"] == 5
    rebuilt = build_model(model.arch, **model.arch_kwargs).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))
    assert repr(rebuilt) == repr(model)


def test_lrn_stays_within_each_tower():
    """Section 3.3 sums over adjacent maps on the same GPU: each tower is normalised on its own."""
    model = build_model("alexnet2012", towers=2)
    lrn = model.features.lrn1
    x = torch.randn(2, 96, 5, 5)
    reference = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
    expected = torch.cat([reference(x[:, :48]), reference(x[:, 48:])], dim=1)
    torch.testing.assert_close(lrn(x), expected)
    one_tower = build_model("alexnet2012", towers=1).features.lrn1
    torch.testing.assert_close(one_tower(x), reference(x))


@pytest.mark.parametrize("name,size", [("alexnet_mini", 64), ("alexnet_simple", 227), ("alexnet_d2l", 100)])
def test_check_input_size_names_exactly_the_sizes_a_net_takes(name, size):
    """The sizes in the message are checked against real CPU forwards: both ends work, one past each fails."""
    with pytest.raises(UsageError, match=f"image size {size} does not fit {name}") as info:
        check_input_size(name, size, num_classes=10)
    lo, hi = map(int, re.search(r"inputs of (\d+) to (\d+) px", str(info.value)).groups())
    net = build_model(name, num_classes=10).eval()
    channels = net.input_size[0]

    def runs(side: int) -> bool:
        try:
            with torch.no_grad():
                net(torch.zeros(1, channels, side, side))
            return True
        except RuntimeError:
            return False

    assert runs(lo) and runs(hi) and not runs(lo - 1) and not runs(hi + 1) and not runs(size)
    check_input_size(name, lo, num_classes=10)  # no error
    check_input_size(name, net.input_size[1], num_classes=10)


def test_check_input_size_limits():
    with pytest.raises(UsageError, match=r"out of range: it must be in \[8, 1024\]"):
        check_input_size("alexnet_owt", 4096)
    with pytest.raises(UsageError, match="at least 63 px"):  # owt has an adaptive pool: any size from 63 up
        check_input_size("alexnet_owt", 32)
    with pytest.raises(UsageError, match="model 'alexnet_mini': dropout"):  # bad build arguments still say so
        check_input_size("alexnet_mini", 32, dropout=3.0)


# ----------------------------------------------------------------- towers, conv_width, convnet4 (section 3.2, figure 1)


def conv_params(c_in: int, c_out: int, k: int, groups: int = 1) -> int:
    return c_out * (c_in // groups) * k * k + c_out


def test_alexnet_mini_towers_group_conv2_conv4_conv5_only():
    """Section 3.2: conv2, conv4 and conv5 see only their own tower's maps; conv3 and the fc layers cross."""
    two, one = build_model("alexnet_mini", towers=2), build_model("alexnet_mini")
    groups = {name: m.groups for name, m in two.features.named_children() if isinstance(m, nn.Conv2d)}
    assert groups == {"conv1": 1, "conv2": 2, "conv3": 1, "conv4": 2, "conv5": 2}
    saved = conv_params(24, 64, 5) - conv_params(24, 64, 5, 2) + conv_params(96, 96, 3) - conv_params(96, 96, 3, 2) \
        + conv_params(96, 64, 3) - conv_params(96, 64, 3, 2)
    assert n_params(one) - n_params(two) == saved


def test_alexnet_mini_tower_conv_equals_two_separate_convs():
    """A grouped conv is two convs side by side: each tower's output from its own half of the input."""
    torch.manual_seed(0)
    conv2 = build_model("alexnet_mini", towers=2).features.conv2
    x = torch.randn(2, 24, 8, 8)
    w, b = conv2.weight, conv2.bias
    halves = [nn.functional.conv2d(x[:, 12 * t:12 * (t + 1)], w[32 * t:32 * (t + 1)], b[32 * t:32 * (t + 1)], padding=2)
              for t in range(2)]
    torch.testing.assert_close(conv2(x), torch.cat(halves, dim=1))


def test_alexnet_mini_tower_lrn_is_per_tower():
    lrn = build_model("alexnet_mini", towers=2).features.lrn1
    x = torch.randn(2, 24, 4, 4)
    reference = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
    torch.testing.assert_close(lrn(x), torch.cat([reference(x[:, :12]), reference(x[:, 12:])], dim=1))


@pytest.mark.parametrize("name, widths", [("alexnet_mini", (12, 32, 48, 48, 64)),
                                          ("alexnet2012", (48, 128, 192, 192, 256))])
def test_half_width_one_tower_keeps_the_last_conv(name, widths):
    """The paper's comparison net: half the kernels in each conv layer but the last (footnote of section 3.2)."""
    model = build_model(name, towers=1, conv_width=0.5)
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert tuple(c.out_channels for c in convs) == widths
    assert model(torch.zeros(1, *model.input_size)).shape == (1, model.num_classes)


def test_convnet4_is_three_convs_and_one_fc():
    model = build_model("convnet4", activation="tanh")
    expected = conv_params(3, 32, 5) + conv_params(32, 32, 5) + conv_params(32, 64, 5) + 64 * 4 * 4 * 10 + 10
    assert n_params(model) == expected
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert [type(m).__name__ for m in layers] == ["Conv2d", "Conv2d", "Conv2d", "Linear"]
    assert sum(isinstance(m, nn.Tanh) for m in model.modules()) == 3
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_the_size_bounds_admit_their_limits():
    from alexnet.models import MAX_CLASSES

    with torch.device("meta"):  # shapes only: 4096 x 100,000 floats would be 1.6 GB
        assert build_model("alexnet2012", num_classes=MAX_CLASSES).num_classes == MAX_CLASSES
        assert build_model("alexnet_d2l", in_channels=3).input_size[0] == 3
