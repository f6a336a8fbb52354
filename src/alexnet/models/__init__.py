"""The nets this package trains, by name: a plain dict of builders and build_model to call one.

A built model remembers its name and keywords (model.arch, model.arch_kwargs), so a checkpoint
can rebuild it with build_model(model.arch, **model.arch_kwargs).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from torch import nn

from alexnet.errors import UsageError
from alexnet.models.alexnet2012 import alexnet2012
from alexnet.models.alexnet_d2l import alexnet_d2l
from alexnet.models.alexnet_owt import alexnet_owt
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


def build_model(name: str, **kwargs: object) -> nn.Module:
    """Build the model called `name`; bad names and keywords raise a one-line UsageError."""
    options = model_options(name)
    for key in kwargs:
        if key not in options:
            raise UsageError(f"model '{name}' has no option '{key}'; options: {', '.join(options)}")
    try:
        model = MODELS[name].builder(**kwargs)
    except UsageError as err:
        raise UsageError(f"model '{name}': {err}") from None
    model.arch = name
    model.arch_kwargs = dict(kwargs)
    return model


def _entry(name: str) -> ModelEntry:
    if name not in MODELS:
        raise UsageError(f"unknown model {name!r}; choose from: {', '.join(MODELS)}")
    return MODELS[name]


__all__ = ["MODELS", "ModelEntry", "build_model", "list_models", "model_options"]
