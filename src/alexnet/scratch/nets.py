"""The NumPy AlexNets: alexnet2012, alexnet_mini and alexnet_simple, composed from layers.py.

Each builder lists the same layers, in the same order and under the same names, as its torch
twin in alexnet.models (alexnet2012.py, small.py), so a Net's parameters carry torch's
state_dict keys and shapes ("features.conv1.weight", "classifier.fc6.bias", ...) and weights
move between the two with a dict comprehension. The inits follow the torch builders in
distribution: the paper's N(0, 0.01) with some biases at 1 for alexnet2012 (Krizhevsky et al.
2012, section 5), Kaiming (He et al. 2015) for the small nets, as alexnet.models.layers does.

The layer lists are written out here again, not built from a spec shared with alexnet.models,
on purpose: this package is read alone, NumPy only, as the paper's layers one after another,
and a shared spec would put an indirection (and a dependency outside scratch/) in front of it.
tests/scratch/test_scratch_nets.py holds the two lists together: same names, shapes, outputs
and gradients as the torch nets.

    net = build("alexnet_simple", seed=0)
    logits, caches = net.forward(x, train=True, rng=np.random.default_rng(0))  # x: N,3,32,32
    grads = net.backward(dlogits, caches)  # {"features.conv1.weight": ..., ...}
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alexnet.scratch import layers as L

ACTIVATIONS = ("relu", "tanh")
POOLS = ("overlapping", "non_overlapping")
# alexnet.models.alexnet2012.BIAS_ONE (repeated, as importing it would import torch)
BIAS_ONE = {"conv2", "conv4", "conv5", "fc6", "fc7"}


@dataclass(frozen=True)
class Layer:
    """One step of a net. name is the torch module's path ("features.conv1"); a conv or linear
    layer's parameters are f"{name}.weight" and f"{name}.bias"."""

    name: str
    kind: str  # conv | linear | relu | tanh | lrn | pool | dropout | flatten
    opts: dict[str, Any] = field(default_factory=dict)


class Net:
    """A feed-forward stack of Layers with its parameters, keyed and shaped as torch's state_dict."""

    def __init__(
        self, arch: str, layers: list[Layer], input_size: tuple[int, int, int], dtype: type = np.float32
    ) -> None:
        self.arch = arch
        self.layers = layers
        self.input_size = tuple(input_size)  # C,H,W the net is built for
        self.params: dict[str, np.ndarray] = {}
        for layer in layers:
            if layer.kind == "conv":
                o = layer.opts
                shape = (o["out_channels"], o["in_channels"] // o["groups"], o["kernel_size"], o["kernel_size"])
            elif layer.kind == "linear":
                shape = (layer.opts["out_features"], layer.opts["in_features"])
            else:
                continue
            self.params[f"{layer.name}.weight"] = np.zeros(shape, dtype=dtype)
            self.params[f"{layer.name}.bias"] = np.zeros(shape[0], dtype=dtype)
        self.num_classes = layers[-1].opts["out_features"]

    @property
    def dtype(self) -> np.dtype:
        return next(iter(self.params.values())).dtype

    def forward(
        self, x: np.ndarray, train: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, list]:
        """x: N,C,H,W -> (logits: N,num_classes, caches for backward). Dropout is on only when
        train is True, and then draws its masks from rng."""
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 4 or x.shape[1:] != self.input_size:
            raise ValueError(f"{self.arch} takes N,{','.join(map(str, self.input_size))} inputs, got {x.shape}")
        caches = []
        for layer in self.layers:
            x, cache = self._forward_layer(layer, x, train, rng)
            caches.append(cache)
        return x, caches

    def _forward_layer(
        self, layer: Layer, x: np.ndarray, train: bool, rng: np.random.Generator | None
    ) -> tuple[np.ndarray, tuple]:
        o, kind = layer.opts, layer.kind
        if kind == "conv":
            w, b = self.params[f"{layer.name}.weight"], self.params[f"{layer.name}.bias"]
            return L.conv2d_forward(x, w, b, o["stride"], o["padding"], o["groups"])
        if kind == "linear":
            return L.linear_forward(x, self.params[f"{layer.name}.weight"], self.params[f"{layer.name}.bias"])
        if kind == "relu":
            return L.relu_forward(x)
        if kind == "tanh":
            return L.tanh_forward(x)
        if kind == "lrn":
            return L.lrn_forward(x, o["size"], o["alpha"], o["beta"], o["k"], o["towers"])
        if kind == "pool":
            return L.max_pool2d_forward(x, o["kernel_size"], o["stride"], o["padding"])
        if kind == "dropout":
            return L.dropout_forward(x, o["p"], train, rng)
        if kind == "flatten":
            return L.flatten_forward(x)
        raise ValueError(f"unknown layer kind {kind!r}")

    def backward(self, dlogits: np.ndarray, caches: list) -> dict[str, np.ndarray]:
        """dlogits: N,num_classes (d loss / d logits) -> gradients keyed like self.params."""
        grads: dict[str, np.ndarray] = {}
        d = np.asarray(dlogits, dtype=self.dtype)
        for index in range(len(self.layers) - 1, -1, -1):
            layer, cache = self.layers[index], caches[index]
            need_dx = index > 0  # nobody needs the gradient of the input image
            if layer.kind in ("conv", "linear"):
                backward = L.conv2d_backward if layer.kind == "conv" else L.linear_backward
                d, grads[f"{layer.name}.weight"], grads[f"{layer.name}.bias"] = backward(d, cache, need_dx=need_dx)
            else:
                d = _BACKWARD[layer.kind](d, cache)
        return {key: grads[key] for key in self.params}  # in state_dict order

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters, in torch's order: torch.from_numpy each to load into the torch net."""
        return {key: value.copy() for key, value in self.params.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy `state` into the parameters (cast to the net's dtype), strictly: a missing or
        unexpected key or a wrong shape raises ValueError naming it, and then nothing is copied."""
        missing = [key for key in self.params if key not in state]
        unexpected = [key for key in state if key not in self.params]
        if missing or unexpected:
            raise ValueError(f"{self.arch}: state_dict keys do not match; missing: {missing}, unexpected: {unexpected}")
        arrays = {key: np.asarray(state[key]) for key in self.params}
        for key, value in arrays.items():
            if value.shape != self.params[key].shape:
                raise ValueError(
                    f"{self.arch}: {key} has shape {value.shape} in the state_dict, "
                    f"the net needs {self.params[key].shape}"
                )
        for key, value in arrays.items():
            self.params[key][...] = value

    def num_parameters(self) -> int:
        return sum(p.size for p in self.params.values())

    def __repr__(self) -> str:
        rows = [
            f"  {layer.name}: {layer.kind} {layer.opts}" if layer.opts else f"  {layer.name}: {layer.kind}"
            for layer in self.layers
        ]
        return (
            f"Net({self.arch}, input {self.input_size}, {self.num_parameters():,} parameters\n"
            + "\n".join(rows) + "\n)"
        )


_BACKWARD: dict[str, Callable[[np.ndarray, tuple], np.ndarray]] = {
    "relu": L.relu_backward,
    "tanh": L.tanh_backward,
    "lrn": L.lrn_backward,
    "pool": L.max_pool2d_backward,
    "dropout": L.dropout_backward,
    "flatten": L.flatten_backward,
}


# ------------------------------------------------------------------- layer factories (as alexnet.models.layers)


def _conv(i: int, cin: int, cout: int, kernel_size: int, stride: int = 1, padding: int = 0, groups: int = 1) -> Layer:
    return Layer(f"features.conv{i}", "conv", dict(in_channels=cin, out_channels=cout, kernel_size=kernel_size,
                                                   stride=stride, padding=padding, groups=groups))


def _pool(name: str, kind: str, overlap_padding: int = 0) -> Layer:
    """make_pool: 3/2 ('overlapping', section 3.4, optionally padded) or 2/2 ('non_overlapping')."""
    if kind == "overlapping":
        return Layer(name, "pool", dict(kernel_size=3, stride=2, padding=overlap_padding))
    return Layer(name, "pool", dict(kernel_size=2, stride=2, padding=0))


def _lrn(name: str, towers: int = 1) -> Layer:
    """make_lrn: the paper's n=5, alpha=1e-4, beta=0.75, k=2 (section 3.3)."""
    return Layer(name, "lrn", dict(size=5, alpha=1e-4, beta=0.75, k=2.0, towers=towers))


def _conv_block(
    i: int, conv: Layer, activation: str, lrn: bool, pool: str | None, overlap_padding: int = 0, towers: int = 1
) -> list[Layer]:
    block = [conv, Layer(f"features.{activation}{i}", activation)]
    if lrn:
        block.append(_lrn(f"features.lrn{i}", towers))
    if pool is not None:
        block.append(_pool(f"features.pool{i}", pool, overlap_padding))
    return block


def _linear(name: str, din: int, dout: int) -> Layer:
    return Layer(f"classifier.{name}", "linear", dict(in_features=din, out_features=dout))


def _head(in_features: int, hidden: int, num_classes: int, activation: str, dropout: float) -> list[Layer]:
    """make_head: fc6 -> act -> dropout -> fc7 -> act -> dropout -> fc8 (sections 3.5, 4.2)."""
    return [
        Layer("flatten", "flatten"),
        _linear("fc6", in_features, hidden), Layer(f"classifier.{activation}6", activation),
        Layer("classifier.drop6", "dropout", dict(p=dropout)),
        _linear("fc7", hidden, hidden), Layer(f"classifier.{activation}7", activation),
        Layer("classifier.drop7", "dropout", dict(p=dropout)),
        _linear("fc8", hidden, num_classes),
    ]


# ----------------------------------------------------------------------------- initializations


def init_paper(net: Net, ones: set[str], rng: np.random.Generator) -> None:
    """Section 5: every weight from N(0, 0.01); biases 1 in the layers named in `ones`, else 0."""
    for layer in net.layers:
        if layer.kind in ("conv", "linear"):
            w = net.params[f"{layer.name}.weight"]
            w[...] = rng.normal(0.0, 0.01, size=w.shape)
            net.params[f"{layer.name}.bias"][...] = 1.0 if layer.name.rsplit(".", 1)[-1] in ones else 0.0


def init_kaiming(net: Net, activation: str, rng: np.random.Generator) -> None:
    """He et al. (2015), fan-in mode, for every conv and hidden fc layer: std = gain / sqrt(fan_in)
    with torch's gains (sqrt 2 for ReLU, 5/3 for tanh); N(0, 0.01) for the last layer, all
    biases 0. As alexnet.models.layers.init_kaiming, so the first logits are nearly equal."""
    gain = math.sqrt(2.0) if activation == "relu" else 5.0 / 3.0
    weighted = [layer for layer in net.layers if layer.kind in ("conv", "linear")]
    for k, layer in enumerate(weighted):
        w = net.params[f"{layer.name}.weight"]
        fan_in = int(np.prod(w.shape[1:]))  # in_channels/groups * kh * kw, or in_features
        std = 0.01 if k == len(weighted) - 1 else gain / math.sqrt(fan_in)
        w[...] = rng.normal(0.0, std, size=w.shape)
        net.params[f"{layer.name}.bias"][...] = 0.0


# ----------------------------------------------------------------------------- argument checks


def _check_choice(arg: str, value: object, choices: tuple) -> None:
    if isinstance(value, bool) or value not in choices:
        raise ValueError(f"{arg} must be one of: {', '.join(map(str, choices))} (got {value!r})")


def _check_switches(
    num_classes: object, in_channels: object, activation: object, lrn: object, pool: object, dropout: object
) -> None:
    for arg, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{arg} must be an integer >= 1 (got {value!r})")
    _check_choice("activation", activation, ACTIVATIONS)
    if not isinstance(lrn, bool):
        raise ValueError(f"lrn must be true or false (got {lrn!r})")
    _check_choice("pool", pool, POOLS)
    ok = isinstance(dropout, (int, float)) and not isinstance(dropout, bool)
    if not ok or not 0.0 <= dropout < 1.0 or math.isnan(dropout):
        raise ValueError(f"dropout must be a number in [0, 1) (got {dropout!r})")


# ----------------------------------------------------------------------------- the nets


def alexnet2012(
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    towers: int = 2,
    activation: str = "relu",
    lrn: bool = True,
    pool: str = "overlapping",
    dropout: float = 0.5,
    seed: int = 0,
    dtype: type = np.float32,
) -> Net:
    """The paper's net (section 3.5, figure 2) for 227x227 inputs, as alexnet.models.alexnet2012:
    conv2, conv4, conv5 grouped by tower, LRN within each tower after conv1 and conv2."""
    _check_switches(num_classes, in_channels, activation, lrn, pool, dropout)
    _check_choice("towers", towers, (1, 2))
    a, t = activation, towers
    layers = (
        _conv_block(1, _conv(1, in_channels, 96, 11, stride=4), a, lrn, pool, towers=t)  # N,96,27,27
        + _conv_block(2, _conv(2, 96, 256, 5, padding=2, groups=t), a, lrn, pool, towers=t)  # N,256,13,13
        + _conv_block(3, _conv(3, 256, 384, 3, padding=1), a, False, None)  # N,384,13,13
        + _conv_block(4, _conv(4, 384, 384, 3, padding=1, groups=t), a, False, None)  # N,384,13,13
        + _conv_block(5, _conv(5, 384, 256, 3, padding=1, groups=t), a, False, pool)  # N,256,6,6
        + _head(256 * 6 * 6, 4096, num_classes, a, dropout)  # N,num_classes
    )
    net = Net("alexnet2012", layers, (in_channels, 227, 227), dtype)
    init_paper(net, BIAS_ONE, np.random.default_rng(seed))
    return net


def alexnet_mini(
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    activation: str = "relu",
    lrn: bool = True,
    pool: str = "overlapping",
    dropout: float = 0.5,
    seed: int = 0,
    dtype: type = np.float32,
) -> Net:
    """Five conv + three fc layers in the paper's arrangement for 32x32 inputs (alexnet.models.small);
    the 3/2 pools are padded by one so both pool kinds halve the size."""
    _check_switches(num_classes, in_channels, activation, lrn, pool, dropout)
    a = activation
    layers = (
        _conv_block(1, _conv(1, in_channels, 24, 5, padding=2), a, lrn, pool, overlap_padding=1)  # N,24,16,16
        + _conv_block(2, _conv(2, 24, 64, 5, padding=2), a, lrn, pool, overlap_padding=1)  # N,64,8,8
        + _conv_block(3, _conv(3, 64, 96, 3, padding=1), a, False, None)  # N,96,8,8
        + _conv_block(4, _conv(4, 96, 96, 3, padding=1), a, False, None)  # N,96,8,8
        + _conv_block(5, _conv(5, 96, 64, 3, padding=1), a, False, pool, overlap_padding=1)  # N,64,4,4
        + _head(64 * 4 * 4, 512, num_classes, a, dropout)  # N,num_classes
    )
    net = Net("alexnet_mini", layers, (in_channels, 32, 32), dtype)
    init_kaiming(net, activation, np.random.default_rng(seed))
    return net


def alexnet_simple(
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    activation: str = "relu",
    lrn: bool = False,
    pool: str = "non_overlapping",
    dropout: float = 0.5,
    seed: int = 0,
    dtype: type = np.float32,
) -> Net:
    """Three conv layers (32-64-128) and one hidden fc layer for 32x32 inputs (alexnet.models.small)."""
    _check_switches(num_classes, in_channels, activation, lrn, pool, dropout)
    a = activation
    layers = (
        _conv_block(1, _conv(1, in_channels, 32, 3, padding=1), a, lrn, pool, overlap_padding=1)  # N,32,16,16
        + _conv_block(2, _conv(2, 32, 64, 3, padding=1), a, lrn, pool, overlap_padding=1)  # N,64,8,8
        + _conv_block(3, _conv(3, 64, 128, 3, padding=1), a, False, pool, overlap_padding=1)  # N,128,4,4
        + [
            Layer("flatten", "flatten"),  # N,2048
            _linear("fc4", 128 * 4 * 4, 512), Layer(f"classifier.{a}4", a),  # N,512
            Layer("classifier.drop4", "dropout", dict(p=dropout)),
            _linear("fc5", 512, num_classes),  # N,num_classes
        ]
    )
    net = Net("alexnet_simple", layers, (in_channels, 32, 32), dtype)
    init_kaiming(net, activation, np.random.default_rng(seed))
    return net


MODELS: dict[str, Callable[..., Net]] = {
    "alexnet2012": alexnet2012,
    "alexnet_mini": alexnet_mini,
    "alexnet_simple": alexnet_simple,
}


def list_models() -> list[str]:
    """The nets with a NumPy version."""
    return list(MODELS)


def build(name: str, **kwargs: Any) -> Net:
    """Build the NumPy net called `name` with the torch builder's keywords plus seed and dtype.
    Unknown names and bad keywords raise a one-line ValueError."""
    if name not in MODELS:
        raise ValueError(f"no NumPy version of model {name!r}; choose from: {', '.join(MODELS)}")
    options = list(inspect.signature(MODELS[name]).parameters)
    for key in kwargs:
        if key not in options:
            raise ValueError(f"model '{name}' has no option '{key}'; options: {', '.join(options)}")
    try:
        return MODELS[name](**kwargs)
    except ValueError as err:
        raise ValueError(f"model '{name}': {err}") from None
