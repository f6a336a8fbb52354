"""What the demo page shows for one photo and one net, computed without Gradio (so it is tested
without a browser): the top-5, the Grad-CAM and occlusion maps over the net's view, the 25 x 40
grid of all softmax outputs, conv1's filters and the feature maps of a chosen layer.

    net = load_net("runs/RUN")                        # a checkpoint, its label, its layers
    shown = panels(net, "dog.jpg", cam_layer="conv5", feature_layer="relu2")
    shown["top5"] == {"golden retriever": 0.62, ...}  # gr.Label's value: the bars
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alexnet.data.images import BadImage, load_image
from alexnet.engine.checkpoint import model_from_checkpoint
from alexnet.errors import UsageError
from alexnet.inference.explain import explanation
from alexnet.inference.inspect import (
    conv_weights,
    feature_layer,
    feature_maps,
    net_label,
    net_view,
    probabilities,
    towers_of,
)
from alexnet.inference.weights import as_checkpoint

MAX_MAPS = 32  # feature maps drawn at most, the most active first


@dataclass
class Net:
    """One net the page offers: its checkpoint, the name the picker shows, the layers it has."""

    ckpt: dict[str, Any]
    label: str
    cam_layers: list[str] = field(default_factory=list)  # conv1..conv5, and per tower for alexnet2012
    feature_layers: list[str] = field(default_factory=list)  # net.features by name
    first_activation: str = ""  # the feature layer shown first
    filters: Any = None  # conv1's figure, drawn once


def load_net(source: Any, label: str | None = None) -> Net:
    """A `Net` for whatever `alexnet.predict` takes (run folder, checkpoint, weights, model)."""
    ckpt = as_checkpoint(source)
    module = model_from_checkpoint(ckpt)
    convs = len(conv_weights(module))
    cams = [f"conv{i}" for i in range(1, convs + 1)]
    if towers_of(ckpt) > 1:
        cams += [f"conv{i}.tower{t}" for i in range(1, convs + 1) for t in (1, 2)]
    return Net(ckpt, label or net_label(ckpt), cams, [name for name, _ in module.features.named_children()],
               feature_layer(module, None)[0])


def read_photo(path: str | os.PathLike | None) -> Any:
    """The uploaded file as a PIL image; anything else is a one-line UsageError the page shows."""
    if not isinstance(path, (str, os.PathLike)):
        raise UsageError("upload a photo first (JPEG, PNG, WebP, ...), or pick one of the examples")
    image = load_image(path)
    if isinstance(image, BadImage):
        raise UsageError(f"{Path(path).name}: {image.reason}")
    return image


def top5(net: Net, probs: torch.Tensor) -> dict[str, float]:
    """{class: probability} of the five most probable classes (all K when K < 5)."""
    top = probs.topk(min(5, probs.numel()))
    return {net.ckpt["classes"][int(i)]: float(p) for p, i in zip(top.values, top.indices)}


def panels(net: Net, image: Any, *, cam_layer: str | None = None, feature_layer: str | None = None) -> dict[str, Any]:
    """Everything the page shows for `image` (a path or PIL image), keyed by panel."""
    from alexnet.viz.explain import overlay
    from alexnet.viz.features import plot_features
    from alexnet.viz.heatmap import plot_heatmap

    picture = read_photo(image) if isinstance(image, (str, os.PathLike)) or image is None else image
    view = net_view(net.ckpt, picture)  # uint8 C,S,S
    probs = probabilities(net.ckpt, view)  # K
    cam = explanation(view, net.ckpt, method="gradcam", layer=cam_layer)
    occ = explanation(view, net.ckpt, method="occlusion")
    name, maps = feature_maps(net.ckpt, view, feature_layer)  # C,h,w
    k = probs.numel()
    return {
        "top5": top5(net, probs),
        "gradcam": enlarged(overlay(view, cam.heat)),
        "gradcam_caption": cam.caption,
        "occlusion": enlarged(overlay(view, occ.heat)),
        "occlusion_caption": occ.caption,
        "heatmap": plot_heatmap(probs, list(net.ckpt["classes"]), title=f"{net.label}: all {k} softmax outputs",
                                image=view),
        "features": plot_features(view, maps, title=f"{net.label}: {name}", max_maps=MAX_MAPS, layer=name),
        "filters": filters(net),
    }


def enlarged(picture: np.ndarray, side: int = 256) -> np.ndarray:
    """An H,W,3 picture repeated pixel by pixel to about `side` pixels, so a 32 x 32 view is seen."""
    times = max(1, side // picture.shape[0])
    return picture.repeat(times, axis=0).repeat(times, axis=1)


def filters(net: Net) -> Any:
    """conv1's kernels as the paper's Figure 3 (each tower in a panel of its own), drawn once per net."""
    from alexnet.viz.filters import plot_filters

    if net.filters is None:
        name, weight = conv_weights(model_from_checkpoint(net.ckpt))[0]
        k, c, h, w = weight.shape
        net.filters = plot_filters(weight, title=f"{net.label}: {name}, {k} kernels of {h}x{w}x{c}",
                                   towers=towers_of(net.ckpt, k))
    return net.filters
