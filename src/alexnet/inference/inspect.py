"""Looking inside a trained net: the view it sees of a photo, its layers' kernels and feature
maps, and all its class probabilities. `alexnet viz` draws these; a notebook calls them directly.

    ckpt = alexnet.load_weights("imagenet1k", "alexnet_owt")       # or load_checkpoint(RUN)
    view = net_view(ckpt, "dog.jpg")                                # uint8 3,224,224: the centre crop
    name, maps = feature_maps(ckpt, view, layer="relu2")            # float C,h,w
    probs = probabilities(ckpt, view)                               # float K, sums to 1

The view is prepared as the checkpoint's training data was (eval_prepare, the centre of the
five crops of section 4.1) and normalised with its mean and std (EvalViews), as predict does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from alexnet.data.images import BadImage, load_image, normalise_image
from alexnet.data.transforms import EvalViews, eval_prepare, five_crops, prep_stats
from alexnet.engine.checkpoint import model_from_checkpoint
from alexnet.engine.evaluate import class_probabilities
from alexnet.errors import UsageError
from alexnet.inference.weights import as_checkpoint

Image = str | os.PathLike | Tensor | Any  # a path, a uint8 C,H,W tensor, or a PIL image
RUN_FILES = ("best.pt", "last.pt")  # the checkpoints a run folder holds: named by their folder


def decode_image(item: Image) -> Any:
    """A PIL image (RGB or L) or a uint8 C,H,W tensor ready for `Prepare`, or a BadImage saying
    why not: a file is read by `load_image`, a PIL image goes through the same mode conversion."""
    if isinstance(item, (str, os.PathLike)):
        return load_image(item)
    if isinstance(item, Tensor):
        if item.dtype != torch.uint8 or item.ndim != 3 or item.shape[0] not in (1, 3) or 0 in item.shape:
            return BadImage(
                "<tensor>",
                f"tensor images must be uint8 C,H,W with 1 or 3 channels; got {item.dtype} {tuple(item.shape)}",
            )
        return item
    if hasattr(item, "getpixel"):  # a PIL image
        return normalise_image(item)
    kind = type(item).__name__
    return BadImage(f"<{kind}>", f"not an image: a {kind} (give a path, a PIL image or a uint8 C,H,W tensor)")


def net_view(model: Any, image: Image) -> Tensor:
    """The uint8 C,S,S centre view the net sees of `image`; an unreadable one is a UsageError."""
    ckpt = as_checkpoint(model)
    channels, size = int(ckpt["input_size"][0]), int(ckpt["input_size"][1])
    if isinstance(image, Tensor) and image.dtype == torch.uint8 and tuple(image.shape) == (channels, size, size):
        return image  # already a view
    picture = decode_image(image)
    if isinstance(picture, BadImage):
        raise UsageError(f"cannot read {picture.path}: {picture.reason}")
    prepare = eval_prepare(ckpt["augment"], size=size, channels=channels)
    return five_crops(prepare(picture), size)[4]  # uint8 C,S,S


def net_inputs(model: Any, views: Sequence[Tensor], device: str | torch.device = "cpu") -> Tensor:
    """uint8 C,S,S views -> the normalised float N,C,S,S batch the net takes."""
    ckpt = as_checkpoint(model)
    c, s = int(ckpt["input_size"][0]), int(ckpt["input_size"][1])
    norm = EvalViews(size=s, channels=c, **prep_stats(ckpt)).to(device)
    return norm(torch.stack(list(views)).to(device))  # N,C,S,S


def towers_of(model: Any, kernels: int | None = None) -> int:
    """How many towers (the paper's two GPUs) the net has: 2 for alexnet2012, else 1. With
    `kernels`, 1 where that many kernels do not split evenly into them (one panel, not one a tower)."""
    from alexnet.models import model_options

    ckpt = as_checkpoint(model)
    towers = int(ckpt["model_args"].get("towers", model_options(ckpt["model_name"]).get("towers", 1)))
    return towers if kernels is None or kernels % towers == 0 else 1


def net_label(ckpt: dict[str, Any]) -> str:
    """"alexnet_mini (RUN_NAME)" for a run's checkpoint, "alexnet2012 (FILE)" for a weights file,
    else the model and where its weights came from."""
    source = str(ckpt.get("path") or "")
    if source.startswith(ckpt["model_name"]):  # an in-memory description, e.g. "alexnet2012 (untrained, seed 0)"
        return source
    path = Path(source)
    if path.is_file():
        return f"{ckpt['model_name']} ({path.absolute().parent.name if path.name in RUN_FILES else path.name})"
    return f"{ckpt['model_name']} ({source})" if source else ckpt["model_name"]


def conv_weights(net: nn.Module) -> list[tuple[str, Tensor]]:
    """(name, weight K,C,h,w) of every conv layer, in order."""
    return [(name, m.weight.detach()) for name, m in net.named_modules() if isinstance(m, nn.Conv2d)]


def feature_layer(net: nn.Module, layer: str | int | None) -> tuple[str, nn.Module]:
    """The (name, module) of net.features that `layer` names or indexes; default: the first activation."""
    named = list(net.features.named_children())
    if layer is None:
        return next(((n, m) for n, m in named if isinstance(m, (nn.ReLU, nn.Tanh))), named[0])
    for n, m in named:
        if n == str(layer):
            return n, m
    if str(layer).lstrip("-").isdigit() and -len(named) <= int(layer) < len(named):
        return named[int(layer)]
    raise UsageError(
        f"--layer {layer}: net.features has {', '.join(n for n, _ in named)} (or an index 0..{len(named) - 1})"
    )


@torch.no_grad()
def feature_maps(
    model: Any, image: Image, layer: str | int | None = None, device: str | torch.device = "cpu"
) -> tuple[str, Tensor]:
    """(layer name, its float C,h,w output) for `image`'s view, read by a forward hook."""
    ckpt = as_checkpoint(model)
    net = model_from_checkpoint(ckpt).to(device).eval()
    name, module = feature_layer(net, layer)
    captured: list[Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: captured.append(out.detach().float().cpu()))
    try:
        net(net_inputs(ckpt, [net_view(ckpt, image)], device))
    finally:
        handle.remove()
    return name, captured[0][0]  # C,h,w


def check_finite(probs: Tensor, ckpt: dict[str, Any]) -> Tensor:
    """`probs` if every value is a finite number; else a UsageError: finite weights can still
    overflow float32, and a map or top-5 of NaNs would be a picture of nothing."""
    if not bool(torch.isfinite(probs).all()):
        raise UsageError(f"{ckpt.get('path') or 'the net'}: its outputs are not finite numbers (NaN or infinity) "
                         "for this input: its weights are damaged or far out of range")
    return probs


@torch.no_grad()
def probabilities(model: Any, image: Image, device: str | torch.device = "cpu") -> Tensor:
    """All K softmax outputs of the net for `image`'s centre view (float K, on the CPU)."""
    ckpt = as_checkpoint(model)
    net = model_from_checkpoint(ckpt).to(device).eval()
    probs = class_probabilities(net, net_inputs(ckpt, [net_view(ckpt, image)], device))[0].cpu()  # K
    return check_finite(probs, ckpt)
