"""Caffe's weights files, read by hand: `bvlc_alexnet.caffemodel` as alexnet2012, `imagenet_mean.binaryproto`.


The net (models/bvlc_alexnet/deploy.prototxt) is alexnet2012 layer for layer: conv1 96 11x11/4,
conv2 256 5x5 pad 2 group 2, conv3 384, conv4 384 group 2, conv5 256 group 2 (3x3 pad 1), max
pools 3/2 after norm1, norm2 and conv5, fc6 and fc7 4096, fc8 1000. Caffe stores weights as torch
does, (out, in/group, kh, kw) and (out, in), and flattens pool5 in the same C,H,W order. Three
things differ, and are settled here:

- colour order: Caffe reads images with OpenCV, as BGR; conv1's input channels are reversed, so
  the loaded net takes RGB as every net of this package does;
- LRN: norm1 and norm2 (local_size 5, alpha 1e-4, beta 0.75) compute a / (k + alpha/5 * sum a^2)^beta
  (src/caffe/layers/lrn_layer.cpp: `alpha_ / size_`) with k unset, so caffe.proto's default 1, over
  one blob of all 96 / 256 maps: alexnet2012(lrn_k=1.0, lrn_per_tower=False) (`CAFFE_ARGS`);
- inputs: 227x227 crops (train_val.prototxt crop_size 227) of 0-255 BGR minus the ImageNet mean.
  With the mean file the checkpoint takes input_norm mean_image with its 3x256x256 mean in RGB
  order; our paper preparation crops 227 from a 256-square, so each pixel loses the mean at its
  own place, as data_transformer.cpp subtracts it. Without one, the channel means of that mean
  image (B, G, R = 104.00698793, 116.66876762, 122.67891434: examples/00-classification.ipynb)
  as mean and 1/255 as std: (x/255 - m/255) / (1/255) = x - m, in 0-255 units.

One difference remains: Caffe's ImageNet recipe warps each image to 256x256
(examples/imagenet/create_imagenet.sh, --resize_height/--resize_width 256) where ours scales the
shorter side to 256 and takes the central square (the paper's section 2); a square photo is
prepared the same either way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from alexnet.errors import UsageError
from alexnet.inference.caffe_proto import CaffeBlob, CaffeLayer, Malformed, parse_blob, parse_net
from alexnet.limits import MAX_IMAGE_SIZE, MiB, Refused, read_regular
from alexnet.models import build_model

# bvlc_alexnet.caffemodel's sha1 (models/bvlc_alexnet/readme.md in BVLC/caffe): the file BVLC released
BVLC_SHA1 = "9116a64c0fbe4459d18f4bb6b56d647b63920377"
CAFFE_ARGS: dict[str, Any] = {"lrn_k": 1.0, "lrn_per_tower": False}  # alexnet2012 computing Caffe's LRN
CAFFE_BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)  # 0-255 units, B, G, R
MEAN_FILE = "imagenet_mean.binaryproto"  # its name in caffe_ilsvrc12.tar.gz (data/ilsvrc12/get_ilsvrc_aux.sh)
# bvlc_alexnet's layer names and where their weights go in alexnet2012's state_dict
LAYERS = {"conv1": "features.conv1", "conv2": "features.conv2", "conv3": "features.conv3", "conv4": "features.conv4",
          "conv5": "features.conv5", "fc6": "classifier.fc6", "fc7": "classifier.fc7", "fc8": "classifier.fc8"}
# alexnet2012's weights are 244 MB as float32 (1,000 classes); a snapshot with its diffs twice that
MODEL_BYTES = 1024 * MiB
MEAN_BYTES = 64 * MiB  # Caffe's ImageNet mean is 786 KB (3x256x256 floats)


@dataclass(frozen=True)
class CaffeWeights:
    """What a .caffemodel (and mean file) give alexnet2012: the build arguments, its state_dict,
    the input preparation (checkpoint keys) and a line saying which mean the inputs lose."""
    model_args: dict[str, Any]
    state: dict[str, Tensor]
    prep: dict[str, Any]
    note: str




# ----------------------------------------------------------------------------- the files


def _read(path: Path, limit: int, kind: str) -> bytes:
    """The file's bytes, or a one-line UsageError for a file that cannot be this `kind`."""
    try:
        buf = read_regular(path, limit)
    except Refused as e:
        raise UsageError(f"cannot read {kind} {path}: {e}") from None
    except OSError as e:
        raise UsageError(f"cannot read {kind} {path}: {e.strerror or e}") from None
    if not buf:
        raise UsageError(f"cannot read {kind} {path}: the file is empty")
    head = buf[:512]
    # text: printable ASCII only (a binary protobuf has length bytes and keys below 32), not only blanks
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head) and any(32 < b < 127 for b in head):
        shown = head[:24].decode("ascii").split("\n")[0]
        raise UsageError(f"cannot read {kind} {path}: it is a text file (starting {shown!r}; a .prototxt?), "
                         f"not Caffe's binary format")
    return buf


def read_caffemodel(path: str | os.PathLike) -> dict[str, CaffeLayer]:
    """The layers of a .caffemodel that hold weights, by name (either layer format of caffe.proto)."""
    path = Path(path)
    buf = _read(path, MODEL_BYTES, "Caffe model")
    try:
        layers = parse_net(buf)
    except Malformed as e:
        raise UsageError(f"cannot read Caffe model {path}: {e}") from None
    held: dict[str, CaffeLayer] = {}
    for layer in layers:
        if layer.blobs and layer.name in held:
            raise UsageError(f"Caffe model {path}: two layers named {layer.name!r} hold weights")
        if layer.blobs:
            held[layer.name] = layer
    if not held:
        raise UsageError(f"Caffe model {path}: no layer holds weights (read {len(layers)} layers): a net definition, "
                         "or not a .caffemodel")
    return held


def read_binaryproto(path: str | os.PathLike) -> CaffeBlob:
    """The one BlobProto of a .binaryproto file (Caffe's mean files)."""
    path = Path(path)
    buf = _read(path, MEAN_BYTES, "Caffe blob")
    try:
        return parse_blob(buf)
    except Malformed as e:
        raise UsageError(f"cannot read Caffe blob {path}: {e}") from None


def read_mean_image(path: str | os.PathLike) -> Tensor:
    """A Caffe mean file (1x3xRxR BGR, 0-255) as the RGB 3,R,R float32 mean image a checkpoint keeps."""
    blob = read_binaryproto(path)
    shape = blob.shape[next((i for i, d in enumerate(blob.shape) if d != 1), len(blob.shape)):]  # leading 1s dropped
    if len(shape) != 3 or shape[0] != 3 or shape[1] != shape[2] or not 227 <= shape[1] <= 2 * MAX_IMAGE_SIZE:
        raise UsageError(
            f"Caffe mean file {path}: shape {blob.shape} is not a 3xRxR BGR image "
            f"with R from 227 to {2 * MAX_IMAGE_SIZE}"
        )
    mean = torch.from_numpy(blob.values.astype(np.float32)).reshape(shape).flip(0).contiguous()  # 3,R,R RGB
    if not bool(torch.isfinite(mean).all()):
        raise UsageError(f"Caffe mean file {path}: it holds values that are not finite numbers")
    return mean


def mean_file_beside(model_path: str | os.PathLike) -> Path | None:
    """The imagenet_mean.binaryproto in the .caffemodel's folder, if there is one."""
    candidate = Path(model_path).with_name(MEAN_FILE)
    return candidate if candidate.is_file() else None


def _fits(blob: CaffeBlob, want: tuple[int, ...]) -> bool:
    """Blob::ShapeEquals: a legacy 4-D shape against the tensor's padded with leading 1s, else equal."""
    if blob.legacy:
        return len(want) <= 4 and blob.shape == (1,) * (4 - len(want)) + want
    return blob.shape == want


def alexnet_state(layers: dict[str, CaffeLayer], source: str) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """alexnet2012's state_dict and build arguments from bvlc_alexnet's layers; conv1 takes RGB.

    Shapes are checked against the net built on the meta device (no memory): each layer present
    first, in order, then that none is missing. fc8's rows set the number of classes."""
    fc8 = layers.get("fc8")
    rows = fc8.blobs[0].shape[-2] if fc8 is not None and len(fc8.blobs[0].shape) >= 2 else 1000
    args = {**({"num_classes": rows} if rows != 1000 else {}), **CAFFE_ARGS}
    try:
        with torch.device("meta"):
            wanted = build_model("alexnet2012", **args).state_dict()
    except UsageError as e:
        raise UsageError(
            f"Caffe model {source}: layer fc8 has shape {fc8.blobs[0].shape if fc8 else None}: {e}"
        ) from None
    state: dict[str, Tensor] = {}
    for name, prefix in LAYERS.items():
        layer = layers.get(name)
        if layer is None:
            continue
        kind = "Convolution" if name.startswith("conv") else "InnerProduct"
        if layer.type != kind:
            raise UsageError(
                f"Caffe model {source}: layer {name} is a {layer.type or 'typeless'} layer, bvlc_alexnet's is {kind}"
            )
        if len(layer.blobs) != 2:
            raise UsageError(
                f"Caffe model {source}: layer {name} holds {len(layer.blobs)} blobs, not its weights and bias"
            )
        for blob, part in zip(layer.blobs, ("weight", "bias")):
            want = tuple(wanted[f"{prefix}.{part}"].shape)
            if not _fits(blob, want):
                raise UsageError(f"Caffe model {source}: layer {name}'s {part} has shape {blob.shape}, alexnet2012 "
                                 f"(bvlc_alexnet) wants {want}")
            state[f"{prefix}.{part}"] = torch.from_numpy(blob.values.astype(np.float32)).reshape(want)
    missing = [name for name in LAYERS if name not in layers]
    if missing:
        held = ", ".join(list(layers)[:10]) + (", ..." if len(layers) > 10 else "")
        raise UsageError(f"Caffe model {source} has no layer {missing[0]} (its layers with weights: {held}): "
                         "not bvlc_alexnet, or a truncated file")
    state["features.conv1.weight"] = state["features.conv1.weight"].flip(1).contiguous()  # BGR -> RGB input channels
    return state, args


def caffe_alexnet2012(path: str | os.PathLike, mean_file: str | os.PathLike | None = None) -> CaffeWeights:
    """bvlc_alexnet.caffemodel as alexnet2012: weights, build arguments and input preparation.

    `mean_file` (a .binaryproto, as imagenet_mean.binaryproto): the inputs lose its mean image;
    None: Caffe's per-channel ImageNet mean (see the module docstring)."""
    state, args = alexnet_state(read_caffemodel(path), str(path))
    size = 227  # crop_size of bvlc_alexnet's train_val.prototxt; the paper preparation's R-square is 256
    prep: dict[str, Any] = {"input_size": [3, size, size], "std": [1 / 255] * 3, "augment": "paper", "pca": None}
    if mean_file is not None:
        image = read_mean_image(mean_file)  # 3,R,R RGB, 0-255
        prep.update(input_norm="mean_image", mean_image=image, mean=(image.mean(dim=(1, 2)) / 255).tolist())
        note = (
            f"{path}: inputs in Caffe's units, 0-255 minus the mean image of {mean_file} "
            f"({'x'.join(map(str, image.shape))})"
        )
    else:
        prep.update(input_norm="channel", mean_image=None, mean=[m / 255 for m in reversed(CAFFE_BGR_MEAN)])
        note = (f"{path}: inputs in Caffe's units, 0-255 minus its per-channel ImageNet mean (B,G,R "
                f"{', '.join(f'{m:.2f}' for m in CAFFE_BGR_MEAN)}); no {MEAN_FILE} beside it")
    return CaffeWeights(args, state, prep, note)
