"""The nets this package trains, by name: a plain dict of builders and build_model to call one.

A built model remembers its name and keywords (model.arch, model.arch_kwargs), so a checkpoint
can rebuild it with build_model(model.arch, **model.arch_kwargs).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from alexnet.errors import UsageError
from alexnet.limits import MAX_CLASSES, MAX_IMAGE_SIZE
from alexnet.models.alexnet2012 import alexnet2012
from alexnet.models.alexnet_d2l import alexnet_d2l
from alexnet.models.alexnet_owt import alexnet_owt
from alexnet.models.cudaconvnet import convnet4, convnet_local
from alexnet.models.small import alexnet_mini, alexnet_simple
from alexnet.models.vgg import vgg11, vgg13, vgg16, vgg19, vgg_small


@dataclass(frozen=True)
class ModelEntry:
    builder: Callable[..., nn.Module]
    description: str


MODELS: dict[str, ModelEntry] = {
    "alexnet2012": ModelEntry(alexnet2012, "the 2012 paper's net: two towers, LRN, overlapping pools, paper init"),
    "alexnet_owt": ModelEntry(alexnet_owt, "torchvision's one-weird-trick AlexNet, loads its weights"),
    "alexnet_d2l": ModelEntry(alexnet_d2l, "Dive into Deep Learning's AlexNet for Fashion-MNIST"),
    "alexnet_mini": ModelEntry(alexnet_mini, "AlexNet at 1/4 width for CIFAR-10, with the paper's switches"),
    "alexnet_simple": ModelEntry(alexnet_simple, "three-conv teaching net with the paper's switches"),
    "convnet4": ModelEntry(
        convnet4, "the four-layer CIFAR-10 net of the paper's figure 1 (ReLU vs tanh), cuda-convnet's layout and init"
    ),
    "convnet_local": ModelEntry(
        convnet_local, "cuda-convnet's CIFAR-10 net of section 3.3 (11% with LRN, 13% without)"
    ),
    "vgg11": ModelEntry(vgg11, "VGG configuration A, torchvision layout"),
    "vgg13": ModelEntry(vgg13, "VGG configuration B, torchvision layout"),
    "vgg16": ModelEntry(vgg16, "VGG configuration D, torchvision layout"),
    "vgg19": ModelEntry(vgg19, "VGG configuration E, torchvision layout"),
    "vgg_small": ModelEntry(vgg_small, "VGG configuration A at 1/4 width for CIFAR-10"),
}


def list_models() -> list[str]:
    """The model names, the paper's net first."""
    return list(MODELS)


def model_options(name: str) -> dict[str, object]:
    """The keywords a model takes, with their defaults."""
    entry = _entry(name)
    params = inspect.signature(entry.builder).parameters.values()
    return {p.name: p.default for p in params}


# The most weights a net may have: 7 times VGG-19's 144 million (4 GB as float32). Counted on the
# meta device (shapes only, no memory) before the net is built, so that no builder argument
# (local3, a width) can ask for more, whichever check it has.
MAX_PARAMS = 10**9
# The input channels the data pipeline makes (data/transforms.py ToChannels): grey or RGB.
INPUT_CHANNELS = (1, 3)


def build_model(name: str, **kwargs: object) -> nn.Module:
    """Build the model called `name`; bad names and keywords, and sizes out of bounds (classes,
    input channels, weights in all), raise a one-line UsageError before any memory is taken."""
    options = model_options(name)
    for key in kwargs:
        if key not in options:
            raise UsageError(f"model '{name}' has no option '{key}'; options: {', '.join(options)}")
    classes, channels = kwargs.get("num_classes"), kwargs.get("in_channels", INPUT_CHANNELS[1])
    if isinstance(classes, int) and classes > MAX_CLASSES:
        raise UsageError(f"model '{name}': num_classes must be at most {MAX_CLASSES:,} (got {classes!r})")
    if isinstance(channels, bool) or channels not in INPUT_CHANNELS:
        raise UsageError(
            f"model '{name}': in_channels must be 1 or 3, the grey or RGB images the data pipeline makes "
            f"(got {channels!r})"
        )
    shapes = _build(name, kwargs, torch.device("meta"))
    weights = sum(p.numel() for p in shapes.parameters())
    if weights > MAX_PARAMS:
        raise UsageError(
            f"model '{name}' with {kwargs} would have {weights:,} weights, more than the {MAX_PARAMS:,} allowed"
        )
    if torch.empty(()).device.type == "meta":  # built under `with torch.device("meta")` already
        return shapes
    return _build(name, kwargs, None)


def _build(name: str, kwargs: dict[str, object], device: torch.device | None) -> nn.Module:
    try:
        with device if device is not None else contextlib.nullcontext():
            model = MODELS[name].builder(**kwargs)
    except UsageError as err:
        raise UsageError(f"model '{name}': {err}") from None
    # an argument no builder check knows, e.g. local3=10**30
    except (RuntimeError, ValueError, TypeError, OverflowError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:120]
        raise UsageError(f"model '{name}' cannot be built with {kwargs}: {reason}") from None
    model.arch = name
    model.arch_kwargs = dict(kwargs)
    return model


def check_input_size(name: str, size: int, **kwargs: object) -> None:
    """Raise a one-line UsageError unless model `name` (with `kwargs`) takes size x size inputs.

    The net is built and run on PyTorch's meta device, which propagates shapes only: no weights
    are allocated and no arithmetic is done, so the check is cheap even for VGG-19.
    On failure, the sizes the net does take (between 8 and MAX_IMAGE_SIZE) are found the same
    way and named in the message.
    """
    if not 8 <= size <= MAX_IMAGE_SIZE:
        raise UsageError(f"image size {size} is out of range: it must be in [8, {MAX_IMAGE_SIZE}]")
    with torch.device("meta"):
        net = build_model(name, **kwargs)
    channels = net.input_size[0]

    def fits(side: int) -> bool:
        try:
            with torch.no_grad():
                net(torch.empty(1, channels, side, side, device="meta"))  # N=1,C,H,W
            return True
        except RuntimeError:  # too small for a pool or kernel, or the wrong size for a Linear
            return False

    if fits(size):
        return
    lo = next((s for s in range(8, MAX_IMAGE_SIZE + 1) if fits(s)), None)
    if lo is None:
        raise UsageError(f"{name} takes no input size between 8 and {MAX_IMAGE_SIZE} px")
    hi = lo
    while hi < MAX_IMAGE_SIZE and fits(hi + 1):
        hi += 1
    takes = f"{lo} px" if lo == hi else f"{lo} to {hi} px" if hi < MAX_IMAGE_SIZE else f"at least {lo} px"
    raise UsageError(
        f"image size {size} does not fit {name}: it takes inputs of {takes} (its own: {net.input_size[1]})"
    )


def _entry(name: str) -> ModelEntry:
    if name not in MODELS:
        raise UsageError(f"unknown model {name!r}; choose from: {', '.join(MODELS)}")
    return MODELS[name]


__all__ = ["MODELS", "ModelEntry", "build_model", "check_input_size", "list_models", "model_options"]


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The net's first convolution (conv1: the kernels of the paper's Figure 3)."""
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))
