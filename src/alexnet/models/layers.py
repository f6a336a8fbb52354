"""Building blocks shared by the nets: the ablation switches, LRN, argument checks and inits.

The switches follow Krizhevsky, Sutskever & Hinton (2012): section 3.1 (ReLU against tanh),
3.3 (local response normalization), 3.4 (overlapping pooling), 4.2 (dropout) and 5 (the
initialization). He et al. (2015), "Delving Deep into Rectifiers", section 2.2, is the
source of the Kaiming init the small nets and the VGGs use.
"""

from __future__ import annotations

import math
from collections import OrderedDict

from torch import nn

from alexnet.errors import UsageError
from alexnet.models.lrn import LocalResponseNorm

ACTIVATIONS = ("relu", "tanh")
POOLS = ("overlapping", "non_overlapping")


# ----------------------------------------------------------------------------- argument checks
# Builders are reached from YAML configs and the command line, so a bad value must become a
# one-line UsageError that names the argument, not a stack trace from deep inside nn.Conv2d.


def check_choice(arg: str, value: object, choices: tuple) -> None:
    if isinstance(value, bool) or value not in choices:
        allowed = ", ".join(str(c) for c in choices)
        raise UsageError(f"{arg} must be one of: {allowed} (got {value!r})")


def check_positive_int(arg: str, value: object) -> None:
    # bool is an int subclass; num_classes=True is a mistake, not 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{arg} must be an integer >= 1 (got {value!r})")


def check_bool(arg: str, value: object) -> None:
    if not isinstance(value, bool):
        raise UsageError(f"{arg} must be true or false (got {value!r})")


def check_positive_number(arg: str, value: object) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not ok:
        raise UsageError(f"{arg} must be a finite number > 0 (got {value!r})")


def check_dropout(value: object) -> None:
    # p = 1 would zero every hidden unit and the net could never learn
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not 0.0 <= value < 1.0 or math.isnan(value):
        raise UsageError(f"dropout must be a number in [0, 1) (got {value!r})")


# ----------------------------------------------------------------------------- layer factories


def conv_widths(widths: tuple[int, ...], scale: object, towers: int) -> tuple[int, ...]:
    """Kernel counts times `scale`, each rounded to a multiple of `towers` so every tower gets whole kernels."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 4:
        raise UsageError(f"conv_width must be a number in (0, 4], got {scale!r}")
    return tuple(max(towers, round(w * scale / towers) * towers) for w in widths)


def make_activation(kind: str) -> nn.Module:
    """ReLU or tanh: the comparison of section 3.1 (figure 1)."""
    check_choice("activation", kind, ACTIVATIONS)
    if kind == "relu":
        return nn.ReLU(inplace=True)  # in place: saves one activation-sized buffer per layer
    return nn.Tanh()


def make_pool(kind: str, overlap_padding: int = 0) -> nn.MaxPool2d:
    """Max-pooling of section 3.4: z=3, s=2 ('overlapping') or z=s=2 ('non_overlapping').

    overlap_padding lets the small nets pad the 3/2 pool by one so that both kinds halve the
    size exactly (32 -> 16 -> 8 -> 4) and an ablation changes one factor only.
    """
    check_choice("pool", kind, POOLS)
    if kind == "overlapping":
        return nn.MaxPool2d(kernel_size=3, stride=2, padding=overlap_padding)
    return nn.MaxPool2d(kernel_size=2, stride=2)


def make_head(in_features: int, hidden: int, num_classes: int, activation: str, dropout: float) -> nn.Sequential:
    """fc6 -> act -> dropout -> fc7 -> act -> dropout -> fc8: the paper's classifier (section 3.5).

    Dropout follows the activations of the two hidden layers: section 4.2 zeroes "the output of
    each hidden neuron". forward_features ends before fc8, so it returns fc7 after its activation.
    """
    return nn.Sequential(OrderedDict([
        ("fc6", nn.Linear(in_features, hidden)),  # N,hidden
        (f"{activation}6", make_activation(activation)),
        ("drop6", nn.Dropout(dropout)),
        ("fc7", nn.Linear(hidden, hidden)),  # N,hidden
        (f"{activation}7", make_activation(activation)),
        ("drop7", nn.Dropout(dropout)),
        ("fc8", nn.Linear(hidden, num_classes)),  # N,num_classes
    ]))


def make_lrn(towers: int = 1, k: float = 2.0) -> nn.LocalResponseNorm:
    """Local response normalization, section 3.3, with the paper's n=5, alpha=1e-4, beta=0.75, k=2.

    The module divides alpha by n (see lrn.py), so the published alpha is passed unchanged;
    with towers > 1 each tower's channels are normalised on their own. `k` other than the
    paper's 2: Caffe's bvlc_alexnet leaves it at caffe.proto's default, 1.
    """
    return LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=k, towers=towers)


# ----------------------------------------------------------------------------- initializations


def init_paper(model: nn.Module, ones: set[str], bias: float = 1.0, std: dict[str, float] | None = None) -> None:
    """Section 5: every weight from N(0, 0.01); biases 1 in the layers named in `ones`, else 0.

    The paper sets the biases of conv2, conv4, conv5 and the hidden fc layers to 1 so that the
    ReLUs start with positive inputs, which "accelerates the early stages of learning". `bias`
    replaces that 1 and `std` the 0.01 of the layers it names (Caffe's variant: 0.1, fc6/fc7 0.005).
    """
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            last = name.rsplit(".", 1)[-1]
            nn.init.normal_(module.weight, mean=0.0, std=(std or {}).get(last, 0.01))
            if module.bias is not None:
                nn.init.constant_(module.bias, bias if last in ones else 0.0)


def init_kaiming(model: nn.Module, activation: str = "relu") -> None:
    """He et al. (2015) for every conv and hidden fc layer; N(0, 0.01) for the last Linear.

    Kaiming keeps the activation scale constant from layer to layer, so the nets train from
    scratch without batch norm. The small last layer makes the first logits nearly equal, so
    training starts at loss ~ ln(num_classes) instead of a confident wrong guess.
    """
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for module in layers[:-1]:
        nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity=activation)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    last = layers[-1]
    nn.init.normal_(last.weight, mean=0.0, std=0.01)
    if last.bias is not None:
        nn.init.zeros_(last.bias)
