"""Where in the photo the net looked: Grad-CAM, occlusion and saliency maps, computed by captum.

    heat = alexnet.explain("dog.jpg", "runs/RUN", method="gradcam", layer="conv5")  # float32 S,S
    e = explanation("dog.jpg", ckpt, method="occlusion")   # the map, the view, the class, its probability

Every map is an S,S array over the view the net sees (the centre crop `net_view` gives, S the
net's input size), larger where the class depends more on the pixel:

- **gradcam** (Selvaraju et al., 2017): the maps of a conv layer weighted by the mean gradient of
  the class score (the logit) over each map, summed, rectified and upsampled bilinearly. As in
  the Caffe nets Grad-CAM was defined on, whose ReLUs run in place, `convK` means the layer's
  rectified output. `convK.tower1` / `.tower2` sums only that tower's half of the maps (the
  paper's two GPUs); a net's other feature layers (`pool5`, an index of net.features) work too.
- **occlusion** (Zeiler & Fergus, 2013, who introduced it on an AlexNet): a grey square (the
  training mean, 0 after normalisation) slid over the view; each pixel gets the mean drop in the
  class's softmax probability over the squares that covered it. The window is about a seventh
  of the view (35 pixels at 227, 6 at 32), the stride half of that, chosen to tile it exactly.
- **saliency** (Simonyan et al., 2014): the absolute gradient of the class score with respect to
  each input pixel, its largest over the colour channels.

The class is the net's top-1 unless `target` names one. captum's LayerGradCam, Occlusion and
Saliency do the work (captum/attr/_core/layer/grad_cam.py, occlusion.py, saliency.py in
github.com/pytorch/captum); this module chooses layers, windows and targets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from alexnet.engine.checkpoint import model_from_checkpoint
from alexnet.engine.fast import resolve_device
from alexnet.errors import UsageError
from alexnet.inference.inspect import Image, check_finite, feature_layer, net_inputs, net_view, towers_of
from alexnet.inference.weights import as_checkpoint

METHODS = {
    "gradcam": "Grad-CAM: the layer's maps weighted by the class score's gradient (red: evidence for the class)",
    "occlusion": "occlusion: how much a grey square there lowers the class's probability",
    "saliency": "saliency: the class score's gradient at each pixel (how much a small change there moves it)",
}
TOWER = re.compile(r"^(.+)\.tower(\d+)$")


@dataclass
class Explanation:
    """One map and what it explains: `heat` (float32 S,S) over `view` (uint8 C,S,S)."""

    heat: np.ndarray
    view: Tensor
    method: str
    layer: str | None
    target: int
    label: str
    prob: float

    @property
    def caption(self) -> str:
        where = f" of {self.layer}" if self.layer else ""
        said = f"{METHODS[self.method].split(':')[0]}{where} for {self.label} ({self.prob:.1%})"
        if not bool((self.heat > 0).any()):  # drawn, it would pass for "no evidence anywhere" at full scale
            said += ": the map is zero everywhere" if self.method != "occlusion" else ": no square lowers it"
        return said


def explain(image: Image, source: Any, *, method: str = "gradcam", layer: str | int | None = None,
            target: int | str | None = None, device: str | torch.device = "cpu") -> np.ndarray:
    """The map (float32 S,S over the net's view of `image`) of `method`; see the module docstring.

    `source` is whatever `alexnet.predict` takes: a run folder, a checkpoint, weights, or a model
    from `model_from_checkpoint`; `target` a class index or name (default: the top-1 class)."""
    return explanation(image, source, method=method, layer=layer, target=target, device=device).heat


def explanation(image: Image, source: Any, *, method: str = "gradcam", layer: str | int | None = None,
                target: int | str | None = None, device: str | torch.device = "cpu") -> Explanation:
    """`explain`'s map with the view it covers, the class explained and its probability."""
    ckpt = as_checkpoint(source)
    device = resolve_device(device) if isinstance(device, str) else device
    net = model_from_checkpoint(ckpt).to(device).eval()
    view = net_view(ckpt, image)  # uint8 C,S,S
    x = net_inputs(ckpt, [view], device)  # 1,C,S,S
    classes = list(ckpt["classes"])
    with torch.no_grad():
        probs = check_finite(net(x).float().softmax(dim=1)[0], ckpt)  # K
    k = int(probs.argmax()) if target is None else class_index(target, classes)
    towers = towers_of(ckpt)
    heat = attribute(net, x, [k], method=method, layer=layer, towers=towers)[0]  # S,S
    if not bool(torch.isfinite(heat).all()):  # finite outputs whose gradients overflow float32
        raise UsageError(f"{ckpt.get('path') or 'the net'}: its {method} map is not finite (NaN or infinity) for "
                         "this input: its weights are far out of range")
    name = grad_cam_layer(net, layer, towers)[0] if method == "gradcam" else None
    return Explanation(heat.numpy(), view.cpu(), method, name, k, classes[k], float(probs[k]))


def attribute(net: nn.Module, x: Tensor, targets: list[int], *, method: str = "gradcam", layer: str | int | None = None,
              towers: int = 1) -> Tensor:
    """The maps (float32 N,S,S on the CPU) of normalised inputs `x` (N,C,S,S) for `targets`."""
    if method not in METHODS:
        raise UsageError(f"unknown attribution method {method!r}; choose from: {', '.join(METHODS)}")
    if layer is not None and method != "gradcam":
        raise UsageError(f"a layer is chosen for gradcam only; {method} explains the input pixels")
    from captum.attr import LayerAttribution, LayerGradCam, Occlusion, Saliency

    net = net.eval()
    size = tuple(x.shape[-2:])
    if method == "gradcam":
        _, module, channels = grad_cam_layer(net, layer, towers)
        per_map = LayerGradCam(net, module).attribute(x, target=targets, attr_dim_summation=False)  # N,C,h,w
        cam = per_map[:, channels].sum(dim=1, keepdim=True).relu()  # N,1,h,w
        heat = LayerAttribution.interpolate(cam, size, interpolate_mode="bilinear")[:, 0]  # N,S,S
    elif method == "occlusion":
        window, stride = occlusion_window(size[0])
        c = x.shape[1]
        probs = Occlusion(lambda z: net(z).float().softmax(dim=1))
        heat = probs.attribute(x, sliding_window_shapes=(c, window, window), strides=(c, stride, stride),
                               baselines=0.0, target=targets, perturbations_per_eval=16).mean(dim=1)  # N,S,S
    else:
        grads = Saliency(net).attribute(x.detach().clone().requires_grad_(True), target=targets, abs=True)  # N,C,S,S
        heat = grads.amax(dim=1)  # N,S,S
    return heat.detach().float().cpu()


def occlusion_window(size: int) -> tuple[int, int]:
    """(window, stride) for a view `size` pixels wide: a window of about size/7, the stride about
    half of it, and (size - window) a multiple of the stride, so the squares cover every pixel."""
    stride = max(1, size // 14)
    return size - stride * ((size - max(2, round(size / 7))) // stride), stride


def grad_cam_layer(net: nn.Module, layer: str | int | None, towers: int = 1) -> tuple[str, nn.Module, slice]:
    """(name, the module whose output Grad-CAM weighs, the channels summed) for `layer`: convK by
    the paper's numbering, convK.towerT, or a layer of net.features by name or index."""
    convs = _convs(net)
    if not convs:
        raise UsageError(f"{getattr(net, 'arch', type(net).__name__)} has no conv layer to explain")
    name = f"conv{len(convs)}" if layer is None else str(layer).strip()  # the last conv, as Grad-CAM's authors chose
    half = TOWER.match(name)
    base = half.group(1) if half else name
    if re.fullmatch(r"conv[1-9][0-9]*", base):
        if int(base[4:]) > len(convs):
            raise UsageError(f"layer {name}: this net has conv1..conv{len(convs)}{_tower_hint(towers)}")
        module, maps = convs[int(base[4:]) - 1]
    elif half:
        raise UsageError(f"layer {name}: a tower is named on a conv layer, as conv1.tower1 .. "
                         f"conv{len(convs)}.tower2")
    else:
        base, module = feature_layer(net, base)  # its name in net.features, also when given by index
        name = base
        maps = next((c for _, c in _convs(net, upto=module)), 0)
    if half is None:
        return name, module, slice(None)
    if towers < 2:
        raise UsageError(f"layer {name}: this net has one tower; name the layer without .tower1/.tower2")
    if half.group(2) not in ("1", "2"):
        raise UsageError(f"layer {name}: the paper's net has two towers, .tower1 and .tower2")
    t = int(half.group(2)) - 1
    return name, module, slice(t * maps // 2, (t + 1) * maps // 2)


def _convs(net: nn.Module, upto: nn.Module | None = None) -> list[tuple[nn.Module, int]]:
    """(the module Grad-CAM hooks, its maps) per conv of net.features: the activation right after
    the conv where there is one (Caffe's in-place ReLU), else the conv; with `upto`, the last
    conv at or before that module only."""
    found: list[tuple[nn.Module, int]] = []
    children = list(net.features.children())
    for i, m in enumerate(children):
        if isinstance(m, nn.Conv2d):
            after = children[i + 1] if i + 1 < len(children) else None
            found.append((after if isinstance(after, (nn.ReLU, nn.Tanh)) else m, m.out_channels))
        if upto is not None and m is upto:
            return found[-1:]
    return found


def _tower_hint(towers: int) -> str:
    return ", each as convK.tower1 or convK.tower2 too" if towers > 1 else ""


def class_index(target: int | str, classes: list[str]) -> int:
    """A class given as its index or its name -> its index; anything else is a UsageError."""
    if isinstance(target, str) and target in classes:
        return classes.index(target)
    k = int(target) if isinstance(target, str) and re.fullmatch(r"\s*-?[0-9]+\s*", target) else target
    if isinstance(k, (int, np.integer)) and not isinstance(k, bool) and 0 <= k < len(classes):
        return int(k)
    raise UsageError(f"class {target!r}: give an index 0..{len(classes) - 1} or one of the net's class names "
                     f"({', '.join(classes[:3])}, ...)")
