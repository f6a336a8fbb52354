"""Caffe's weights files, read by hand: `bvlc_alexnet.caffemodel` as alexnet2012, `imagenet_mean.binaryproto`.

A .caffemodel is a serialized NetParameter and a .binaryproto one BlobProto, both in protobuf's
binary wire format (proto2; protobuf.dev/programming-guides/encoding): each field is a varint key
(field number << 3 | wire type) followed by a varint (wire type 0), 8 bytes (1), a varint length
and that many bytes (2: strings, sub-messages, packed repeated scalars) or 4 bytes (5). A repeated
scalar may come packed (one length-delimited run) or one key per value, and a parser must take
both. No caffe or protobuf package is needed: the few fields read here are decoded below, with
the numbers of BVLC/caffe's src/caffe/proto/caffe.proto (master, commit 9b89154, 2020):

    NetParameter      layers 2 (V1LayerParameter), layer 100 (LayerParameter)
    LayerParameter    name 1, type 2 (a string: "Convolution", "InnerProduct"), blobs 7
    V1LayerParameter  name 4, type 5 (enum LayerType: CONVOLUTION 4, INNER_PRODUCT 14), blobs 6;
                      its field 1, a V0LayerParameter, marks the format of before 2014
    BlobProto         num 1, channels 2, height 3, width 4 (the legacy 4-D shape), data 5 (float),
                      shape 7 (BlobShape: dim 1, int64), double_data 8 (double)

As Caffe's Blob::FromProto (src/caffe/blob.cpp) reads a blob: its shape is the legacy
num/channels/height/width when any of them is set, else `shape`; its values are double_data when
there are any, else data. A legacy shape fits a tensor of fewer axes padded with leading 1s
(Blob::ShapeEquals): bvlc_alexnet's fc weights are (1, 1, 4096, 9216), its biases (1, 1, 1, N).

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

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from alexnet.errors import UsageError
from alexnet.limits import MAX_IMAGE_SIZE, MiB, Refused, read_regular
from alexnet.models import build_model

CAFFE_ARGS: dict[str, Any] = {"lrn_k": 1.0, "lrn_per_tower": False}  # alexnet2012 computing Caffe's LRN
CAFFE_BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)  # 0-255 units, B, G, R
MEAN_FILE = "imagenet_mean.binaryproto"  # its name in caffe_ilsvrc12.tar.gz (data/ilsvrc12/get_ilsvrc_aux.sh)
# bvlc_alexnet's layer names and where their weights go in alexnet2012's state_dict
LAYERS = {"conv1": "features.conv1", "conv2": "features.conv2", "conv3": "features.conv3", "conv4": "features.conv4",
          "conv5": "features.conv5", "fc6": "classifier.fc6", "fc7": "classifier.fc7", "fc8": "classifier.fc8"}
# V1LayerParameter.LayerType numbers (caffe.proto) of the layers a message may name
V1_TYPES = {
    4: "Convolution", 5: "Data", 6: "Dropout", 14: "InnerProduct", 15: "LRN", 17: "Pooling", 18: "ReLU", 20: "Softmax"
}
# alexnet2012's weights are 244 MB as float32 (1,000 classes); a snapshot with its diffs twice that
MODEL_BYTES = 1024 * MiB
MEAN_BYTES = 64 * MiB  # Caffe's ImageNet mean is 786 KB (3x256x256 floats)
# A file of tiny repeated fields costs a Python object and a loop turn per field (about 64x its
# bytes in memory, minutes of time), far more than its size says, so the fields are bounded too.
# bvlc_alexnet holds a few hundred (its values come packed, or as runs read at once: one field).
MAX_FIELDS = 100_000  # read in one file, every message together
MAX_LAYERS = 10_000  # ResNet-152's deploy net has about 500
MAX_BLOBS = 64  # per layer: weights and bias (BatchNorm keeps 3)
MAX_AXES = 32  # Caffe's own kMaxBlobAxes (src/caffe/blob.hpp)


@dataclass(frozen=True)
class CaffeBlob:
    shape: tuple[int, ...]
    legacy: bool  # the shape came from num/channels/height/width (fits with leading 1s)
    values: np.ndarray  # float32, flat, len == prod(shape)


@dataclass(frozen=True)
class CaffeLayer:
    name: str
    type: str  # "Convolution", "InnerProduct", ... (a V1 enum number as its name)
    blobs: tuple[CaffeBlob, ...]


@dataclass(frozen=True)
class CaffeWeights:
    """What a .caffemodel (and mean file) give alexnet2012: the build arguments, its state_dict,
    the input preparation (checkpoint keys) and a line saying which mean the inputs lose."""
    model_args: dict[str, Any]
    state: dict[str, Tensor]
    prep: dict[str, Any]
    note: str


class _Malformed(Exception):
    """Bytes that are not the protobuf a Caffe file holds; the text says where and why."""


class _Budget:
    """The fields a file may still hold (MAX_FIELDS in all), counted as they are read."""

    def __init__(self) -> None:
        self.left = MAX_FIELDS

    def take(self, at: int) -> None:
        self.left -= 1
        if self.left < 0:
            raise _Malformed(f"more than {MAX_FIELDS:,} fields (at byte {at:,}), where a Caffe weights file has a "
                             "few hundred: a file of tiny repeated fields is refused before it takes the memory")


# ----------------------------------------------------------------------------- the wire format


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """(value, position after) of the base-128 varint at `pos`, little-endian groups of 7 bits."""
    value, shift, start = 0, 0, pos
    while pos < end:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift >= 70:  # 64 bits take at most 10 bytes
            raise _Malformed(f"a varint at byte {start:,} runs over 10 bytes")
    raise _Malformed(f"truncated: a varint at byte {start:,} runs past the end of its message (byte {end:,})")


def _signed(value: int) -> int:
    """A varint as the int64/int32 it encodes (negative numbers are 10-byte two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _field(buf: bytes, pos: int, end: int) -> tuple[int, int, Any, int]:
    """(field number, wire type, value, position after): value an int for wire type 0, else the
    (start, stop) of its bytes."""
    at = pos
    key, pos = _varint(buf, pos, end)
    number, wire = key >> 3, key & 7
    if number == 0:
        raise _Malformed(f"field number 0 at byte {at:,}")
    if wire == 0:
        value, pos = _varint(buf, pos, end)
        return number, wire, value, pos
    if wire == 2:
        size, pos = _varint(buf, pos, end)
    elif wire in (1, 5):
        size = 8 if wire == 1 else 4
    else:
        groups = " (a group, which caffe.proto never uses)" if wire in (3, 4) else ""
        raise _Malformed(f"unknown wire type {wire} at byte {at:,}{groups}")
    if size > end - pos:
        raise _Malformed(f"truncated: field {number} at byte {at:,} is {size:,} bytes long, {end - pos:,} remain")
    return number, wire, (pos, pos + size), pos + size


def _fields(buf: bytes, start: int, end: int, wires: dict[int, tuple[int, ...]], what: str,
            budget: _Budget) -> dict[int, list[Any]]:
    """The values of a message's fields numbered in `wires` (number -> the wire types caffe.proto
    allows it), in file order; other fields are skipped, as protobuf keeps unknown fields."""
    found: dict[int, list[Any]] = {number: [] for number in wires}
    pos = start
    while pos < end:
        at = pos
        budget.take(at)
        number, wire, value, pos = _field(buf, pos, end)
        if number in wires:
            if wire not in wires[number]:
                raise _Malformed(
                    f"{what} field {number} at byte {at:,} has wire type {wire}, "
                    f"caffe.proto gives it {wires[number][0]}"
                )
            found[number].append(value)
    return found


def _text(buf: bytes, span: tuple[int, int], what: str) -> str:
    try:
        return buf[span[0]:span[1]].decode("utf-8")
    except UnicodeDecodeError:
        raise _Malformed(f"{what} at byte {span[0]:,} is not UTF-8 text") from None


def _packed(buf: bytes, span: tuple[int, int], dtype: str) -> np.ndarray:
    """A packed run of little-endian floats or doubles (a view of `buf`)."""
    width = np.dtype(dtype).itemsize
    if (span[1] - span[0]) % width:
        raise _Malformed(
            f"packed values at byte {span[0]:,}: {span[1] - span[0]:,} bytes are not whole {width}-byte numbers"
        )
    return np.frombuffer(buf, dtype=dtype, count=(span[1] - span[0]) // width, offset=span[0])


def _unpacked_run(buf: bytes, at: int, end: int, key: int, dtype: str) -> tuple[np.ndarray, int]:
    """The values of consecutive unpacked fields (one-byte `key`, then a fixed-width number) from
    `at`, decoded at once: (values, position after). A Python loop would take a minute for fc6.
    The run's end is looked for in chunks that double: a file of runs of one value costs a small
    look each, not a scan of the rest of the file."""
    width = 1 + np.dtype(dtype).itemsize
    total, n, chunk = (end - at) // width, 0, 64
    while n < total:
        m = min(chunk, total - n)
        keys = np.frombuffer(buf, dtype=np.uint8, count=m * width, offset=at + n * width)[::width]
        other = np.flatnonzero(keys != key)
        if other.size:
            n += int(other[0])
            break
        n, chunk = n + m, chunk * 2
    records = np.frombuffer(buf, dtype=np.uint8, count=n * width, offset=at).reshape(n, width)
    return records[:, 1:].copy().view(dtype).reshape(-1), at + n * width


def _blob(buf: bytes, start: int, end: int, what: str, budget: _Budget) -> CaffeBlob:
    legacy: dict[int, int] = {}
    dims: list[int] = []
    floats: list[np.ndarray] = []
    doubles: list[np.ndarray] = []
    pos = start
    while pos < end:
        at = pos
        budget.take(at)
        number, wire, value, pos = _field(buf, pos, end)
        if number in (1, 2, 3, 4) and wire == 0:
            legacy[number] = _signed(value)
        elif number == 7 and wire == 2:
            dims += _dims(buf, value, budget)  # a message field given twice is merged: its dims follow on
            if len(dims) > MAX_AXES:
                raise _Malformed(f"{what} at byte {start:,} has more than {MAX_AXES} axes, Caffe's most")
        elif number in (5, 8) and wire == 2:
            (floats if number == 5 else doubles).append(_packed(buf, value, "<f4" if number == 5 else "<f8"))
        elif (number, wire) in ((5, 5), (8, 1)):
            key = number << 3 | wire
            run, after = (
                _unpacked_run(buf, at, end, key, "<f4" if number == 5 else "<f8") if buf[at] == key else (None, at)
            )
            if run is None or not run.size:  # a key written in more bytes than it needs: this one value alone
                run, after = _packed(buf, value, "<f4" if number == 5 else "<f8"), pos
            (floats if number == 5 else doubles).append(run)
            pos = after
        elif number in (1, 2, 3, 4, 5, 7, 8):
            raise _Malformed(
                f"{what} field {number} at byte {at:,} has wire type {wire}, which caffe.proto does not give it"
            )
    if any(d < 0 for d in [*legacy.values(), *dims]):
        raise _Malformed(f"{what} at byte {start:,} has a negative dimension")
    shape = tuple(legacy.get(i, 0) for i in (1, 2, 3, 4)) if legacy else tuple(dims)
    values = (
        np.concatenate(doubles).astype(np.float32) if doubles
        else np.concatenate(floats) if floats
        else np.zeros(0, np.float32)
    )
    if values.size != math.prod(shape):
        raise _Malformed(
            f"{what} at byte {start:,} holds {values.size:,} values, its shape {shape} says {math.prod(shape):,}"
        )
    return CaffeBlob(shape, bool(legacy), values)


def _dims(buf: bytes, span: tuple[int, int], budget: _Budget) -> list[int]:
    """BlobShape's dims: field 1, int64, packed or not."""
    dims: list[int] = []
    for value in _fields(buf, *span, {1: (2, 0)}, "BlobShape", budget)[1]:
        if isinstance(value, int):
            dims.append(_signed(value))
            continue
        pos, stop = value
        while pos < stop and len(dims) <= MAX_AXES:
            budget.take(pos)
            dim, pos = _varint(buf, pos, stop)
            dims.append(_signed(dim))
    return dims


def _layers(buf: bytes, budget: _Budget) -> list[CaffeLayer]:
    """Every layer of a serialized NetParameter, in file order."""
    net = _fields(
        buf, 0, len(buf), {1: (2,), 2: (2,), 3: (2,), 4: (0, 2), 5: (0,), 6: (2,), 7: (0,), 8: (2,), 100: (2,)},
        "NetParameter", budget,
    )
    if len(net[2]) + len(net[100]) > MAX_LAYERS:
        raise _Malformed(f"it lists {len(net[2]) + len(net[100]):,} layers, more than {MAX_LAYERS:,}")
    if net[2] and net[100]:  # as Caffe's UpgradeV1Net refuses it (src/caffe/util/upgrade_proto.cpp)
        raise _Malformed("it holds both 'layer' and 'layers' (V1) fields, which Caffe refuses as inconsistent")
    layers = []
    for span in net[100]:  # LayerParameter
        f = _fields(buf, *span, {1: (2,), 2: (2,), 7: (2,)}, "LayerParameter", budget)
        name = _text(buf, f[1][-1], "a layer name") if f[1] else ""
        kind = _text(buf, f[2][-1], f"layer {name!r}'s type") if f[2] else ""
        layers.append(CaffeLayer(
            name, kind, _blobs(buf, f[7], name, budget)
        ))
    for span in net[2]:  # V1LayerParameter
        f = _fields(buf, *span, {1: (2,), 4: (2,), 5: (0,), 6: (2,)}, "V1LayerParameter", budget)
        if f[1] and not f[4]:
            raise _Malformed("its layers are in Caffe's V0 format (before 2014): upgrade the file with Caffe's "
                             "tools/upgrade_net_proto_binary")
        name = _text(buf, f[4][-1], "a layer name") if f[4] else ""
        kind = V1_TYPES.get(f[5][-1], f"V1 type {f[5][-1]}") if f[5] else ""
        layers.append(CaffeLayer(
            name, kind, _blobs(buf, f[6], name, budget)
        ))
    return layers


def _blobs(buf: bytes, spans: list[tuple[int, int]], layer: str, budget: _Budget) -> tuple[CaffeBlob, ...]:
    if len(spans) > MAX_BLOBS:
        raise _Malformed(f"layer {layer or '(unnamed)'} holds {len(spans):,} blobs, more than {MAX_BLOBS}")
    return tuple(_blob(buf, *span, f"layer {layer or '(unnamed)'}'s blob {i}", budget) for i, span in enumerate(spans))


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
        layers = _layers(buf, _Budget())
    except _Malformed as e:
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
        return _blob(buf, 0, len(buf), "BlobProto", _Budget())
    except _Malformed as e:
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
