"""The NumPy nets against alexnet.models: same keys, same outputs and gradients, weights both ways."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from alexnet import scratch
from alexnet.models import build_model


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|: the error relative to the reference's scale."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def to_numpy(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in model.state_dict().items()}


def torch_logits(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


SMALL = [
    ("alexnet_simple", {}),
    ("alexnet_simple", dict(activation="tanh", lrn=True, pool="overlapping", num_classes=3, in_channels=1)),
    ("alexnet_mini", {}),
    ("alexnet_mini", dict(activation="tanh", lrn=False, pool="non_overlapping", dropout=0.2)),
]


@pytest.mark.parametrize("name,kw", SMALL)
def test_small_nets_match_torch(name, kw):
    torch.manual_seed(0)
    model = build_model(name, **kw)
    net = scratch.build(name, **kw)
    assert list(net.params) == list(model.state_dict())  # same keys, same order
    assert {k: v.shape for k, v in net.params.items()} == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    x = np.random.default_rng(0).standard_normal((4, *net.input_size)).astype(np.float32)
    # float32: torch's weights into the NumPy net
    net.load_state_dict(to_numpy(model))
    assert rel_err(scratch.evaluate_batch(net, x), torch_logits(model, x)) <= 1e-5
    # float64
    model.double()
    net64 = scratch.build(name, dtype=np.float64, **kw)
    net64.load_state_dict(to_numpy(model))
    assert rel_err(scratch.evaluate_batch(net64, x.astype(np.float64)),
                   torch_logits(model, x.astype(np.float64))) <= 1e-10


@pytest.mark.parametrize("name,kw", SMALL[::2])
def test_small_nets_gradients_match_torch(name, kw):
    """Whole-net backward, float64, training mode with dropout off so both do the same arithmetic."""
    torch.manual_seed(1)
    model = build_model(name, dropout=0.0, **kw).double().train()
    net = scratch.build(name, dropout=0.0, dtype=np.float64, **kw)
    net.load_state_dict(to_numpy(model))
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((3, *net.input_size)), rng.integers(0, net.num_classes, 3)
    loss, grads = scratch.loss_and_grads(net, x, y, rng)
    ref = F.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
    ref.backward()
    assert abs(loss - ref.item()) <= 1e-10 * abs(ref.item())
    for key, param in model.named_parameters():
        assert rel_err(grads[key], param.grad.numpy()) <= 1e-8, key


@pytest.fixture(scope="module")
def alexnet2012_torch():
    torch.manual_seed(0)
    return build_model("alexnet2012").eval()


def test_alexnet2012_matches_torch_float32(alexnet2012_torch):
    model = alexnet2012_torch
    net = scratch.build("alexnet2012")
    assert {k: v.shape for k, v in net.params.items()} == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    # the paper's init (section 5): N(0, 0.01) weights, biases 1 in conv2, conv4, conv5, fc6, fc7
    for key, value in net.params.items():
        if key.endswith("bias"):
            assert np.array_equal(value, model.state_dict()[key].numpy()), key
        else:
            assert abs(value.std() / 0.01 - 1) < 0.1 and abs(value.mean()) < 0.003, key
    net.load_state_dict(to_numpy(model))
    x = np.random.default_rng(2).standard_normal((2, 3, 227, 227)).astype(np.float32)
    assert rel_err(scratch.evaluate_batch(net, x), torch_logits(model, x)) <= 1e-5


def test_alexnet2012_matches_torch_float64(alexnet2012_torch):
    model = alexnet2012_torch
    net = scratch.build("alexnet2012", dtype=np.float64)
    net.load_state_dict(to_numpy(model))  # float32 weights, cast to the net's float64
    x = np.random.default_rng(3).standard_normal((1, 3, 227, 227))
    model64 = copy.deepcopy(model).double()
    assert rel_err(scratch.evaluate_batch(net, x), torch_logits(model64, x)) <= 1e-10


def test_alexnet2012_one_tower_matches_torch():
    torch.manual_seed(0)
    kw = dict(towers=1, num_classes=10, pool="non_overlapping")
    model = build_model("alexnet2012", **kw).eval()
    net = scratch.build("alexnet2012", **kw)
    net.load_state_dict(to_numpy(model))
    x = np.random.default_rng(4).standard_normal((1, 3, 227, 227)).astype(np.float32)
    assert rel_err(scratch.evaluate_batch(net, x), torch_logits(model, x)) <= 1e-5


@pytest.mark.parametrize("name", ["alexnet_simple", "alexnet_mini"])
def test_numpy_weights_load_into_torch(name):
    net = scratch.build(name, seed=5)
    model = build_model(name)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()}, strict=True)
    x = np.random.default_rng(5).standard_normal((3, *net.input_size)).astype(np.float32)
    assert rel_err(scratch.evaluate_batch(net, x), torch_logits(model, x)) <= 1e-5


def test_load_state_dict_is_strict():
    net = scratch.build("alexnet_simple")
    good = net.state_dict()
    before = net.state_dict()
    missing = {k: v for k, v in good.items() if k != "classifier.fc4.bias"}
    with pytest.raises(ValueError, match=r"classifier\.fc4\.bias"):
        net.load_state_dict(missing)
    with pytest.raises(ValueError, match=r"features\.conv9\.weight"):
        net.load_state_dict({**good, "features.conv9.weight": np.zeros(3)})
    wrong = {**{k: v + 1 for k, v in good.items()}, "features.conv2.weight": np.zeros((64, 32, 5, 5))}
    with pytest.raises(ValueError, match=r"features.conv2.weight has shape \(64, 32, 5, 5\)"):
        net.load_state_dict(wrong)
    for key, value in net.params.items():  # a failed load changes nothing
        assert np.array_equal(value, before[key])
    # the state_dict is a copy, and loading copies in
    good["features.conv1.weight"][...] = 7
    assert not np.any(net.params["features.conv1.weight"] == 7)


def test_init_follows_the_torch_builders():
    """Kaiming (fan-in, gain of the activation) with a N(0, 0.01) last layer, zero biases
    (alexnet2012's paper init is checked in test_alexnet2012_matches_torch_float32)."""
    for activation, gain in (("relu", math.sqrt(2)), ("tanh", 5 / 3)):
        net = scratch.build("alexnet_mini", activation=activation, seed=3)
        model = build_model("alexnet_mini", activation=activation)
        weights = [k for k in net.params if k.endswith("weight")]
        for key in weights:
            w = net.params[key]
            std = 0.01 if key == weights[-1] else gain / math.sqrt(np.prod(w.shape[1:]))
            assert abs(w.std() / std - 1) < 0.1, key
            assert abs(model.state_dict()[key].std().item() / std - 1) < 0.1, key  # the same rule in torch
        for key in net.params:
            if key.endswith("bias"):
                assert not net.params[key].any()
    a, b = scratch.build("alexnet_simple", seed=1), scratch.build("alexnet_simple", seed=1)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert not np.array_equal(scratch.build("alexnet_simple", seed=2).params["features.conv1.weight"],
                              a.params["features.conv1.weight"])


def test_forward_with_dropout_needs_rng_and_is_reproducible():
    net = scratch.build("alexnet_simple")
    x = np.random.default_rng(6).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with pytest.raises(ValueError, match="rng"):
        net.forward(x, train=True)
    a, _ = net.forward(x, train=True, rng=np.random.default_rng(0))
    b, _ = net.forward(x, train=True, rng=np.random.default_rng(0))
    c, _ = net.forward(x, train=False)
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_bad_arguments_raise_one_line_errors():
    with pytest.raises(ValueError, match="no NumPy version of model 'vgg11'"):
        scratch.build("vgg11")
    with pytest.raises(ValueError, match="has no option 'widht'"):
        scratch.build("alexnet_mini", widht=2)
    with pytest.raises(ValueError, match="activation must be one of"):
        scratch.build("alexnet_simple", activation="gelu")
    with pytest.raises(ValueError, match="towers"):
        scratch.build("alexnet2012", towers=3)
    with pytest.raises(ValueError, match="dropout"):
        scratch.build("alexnet_mini", dropout=1.0)
    with pytest.raises(ValueError, match="takes N,3,32,32"):
        scratch.build("alexnet_simple").forward(np.zeros((1, 3, 28, 28)))


@pytest.mark.parametrize("name,kw", [("alexnet_mini", dict(activation="tanh")), ("alexnet_simple", dict(lrn=True))])
def test_layer_names_follow_torch_modules(name, kw, alexnet2012_torch):
    for net, model in ((scratch.build(name, **kw), build_model(name, **kw)),
                       (scratch.build("alexnet2012", num_classes=10), alexnet2012_torch)):
        torch_names = [path for path, m in model.named_modules() if path and not list(m.children())]
        assert [layer.name for layer in net.layers if layer.name != "flatten"] == torch_names
        for layer in net.layers:  # the layers' settings are the torch modules'
            module = model.get_submodule(layer.name) if layer.name != "flatten" else None
            if layer.kind == "conv":
                assert (module.stride, module.padding, module.groups) == (
                    (layer.opts["stride"],) * 2, (layer.opts["padding"],) * 2, layer.opts["groups"])
            elif layer.kind == "pool":
                assert (module.kernel_size, module.stride, module.padding, module.ceil_mode) == (
                    layer.opts["kernel_size"], layer.opts["stride"], layer.opts["padding"], False)
            elif layer.kind == "lrn":
                assert (module.size, module.alpha, module.beta, module.k, module.towers) == tuple(layer.opts.values())
            elif layer.kind == "dropout":
                assert module.p == layer.opts["p"]
