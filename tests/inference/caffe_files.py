"""Caffe files for the tests: a small protobuf writer of .caffemodel files, random bvlc_alexnet weights
at the real sizes, and the logits our loaded net gives a photo through our own preparation.

The writer follows protobuf's encoding rules (protobuf.dev, "Encoding") and the field numbers of
BVLC/caffe's src/caffe/proto/caffe.proto, sharing no code with the reader: NetParameter (name 1,
input 3, input_dim 4, V1 `layers` 2, `layer` 100), V1LayerParameter (bottom 2, top 3, name 4,
type 5 as its LayerType enum, blobs 6), LayerParameter (name 1, type 2, bottom 3, top 4, param 6,
blobs 7), ParamSpec (name 1, float lr_mult 3), BlobProto (legacy num/channels/height/width 1-4,
packed float data 5, packed double_data 8, BlobShape shape 7) and BlobShape (packed int64 dim 1).
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from alexnet.data.transforms import EvalViews, eval_prepare, prep_stats
from alexnet.engine.checkpoint import model_from_checkpoint
from alexnet.models import build_model

# bvlc_alexnet's deploy.prototxt: (name, weight shape, group); biases have one value per output
NET = [("conv1", (96, 3, 11, 11), 1), ("conv2", (256, 48, 5, 5), 2), ("conv3", (384, 256, 3, 3), 1),
       ("conv4", (384, 192, 3, 3), 2), ("conv5", (256, 192, 3, 3), 2),
       ("fc6", (4096, 9216), 1), ("fc7", (4096, 4096), 1), ("fc8", (1000, 4096), 1)]
BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)
V1_CONVOLUTION, V1_INNER_PRODUCT, V1_RELU, V1_LRN = 4, 14, 18, 15  # caffe.proto V1LayerParameter.LayerType


# --- a protobuf writer ---------------------------------------------------------------------------

def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative numbers: 64-bit two's complement, ten bytes
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def key(field: int, wire: int) -> bytes:
    return varint(field << 3 | wire)


def vint(field: int, n: int) -> bytes:
    return key(field, 0) + varint(n)


def ld(field: int, payload: bytes | str) -> bytes:
    payload = payload.encode() if isinstance(payload, str) else payload
    return key(field, 2) + varint(len(payload)) + payload


def unpacked(field: int, values: np.ndarray, fmt: str) -> bytes:
    """One key (wire type 5 or 1) before each little-endian value, laid out with NumPy for fc6's 38M."""
    width = np.dtype(fmt).itemsize
    raw = np.ascontiguousarray(values, dtype=fmt).view(np.uint8).reshape(-1, width)
    tag = key(field, 5 if width == 4 else 1)
    assert len(tag) == 1
    records = np.empty((raw.shape[0], width + 1), np.uint8)
    records[:, 0], records[:, 1:] = tag[0], raw
    return records.tobytes()


def blob(values: np.ndarray, shape: tuple[int, ...], *, legacy: bool, data: str = "packed",
         dims: str = "packed") -> bytes:
    """A BlobProto: legacy num/channels/height/width (1-padded to 4-D) or BlobShape; values as
    packed floats, unpacked floats, packed doubles, or two packed runs ("split")."""
    if legacy:
        four = (1,) * (4 - len(shape)) + tuple(shape)
        head = b"".join(vint(f, d) for f, d in zip((1, 2, 3, 4), four))
    else:
        body = ld(1, b"".join(varint(d) for d in shape)) if dims == "packed" else b"".join(vint(1, d) for d in shape)
        head = ld(7, body)
    flat = np.asarray(values, np.float32).reshape(-1)
    if data == "packed":
        tail = ld(5, flat.astype("<f4").tobytes())
    elif data == "unpacked":
        tail = unpacked(5, flat, "<f4")
    elif data == "double":
        tail = ld(8, flat.astype("<f8").tobytes())
    else:
        half = flat.size // 2
        tail = ld(5, flat[:half].astype("<f4").tobytes()) + ld(5, flat[half:].astype("<f4").tobytes())
    return tail + head if data == "split" else head + tail  # field order is free in protobuf


def v1_layer(name: str, kind: int, blobs: list[bytes], bottom: str = "x", top: str = "y") -> bytes:
    return ld(2, ld(2, bottom) + ld(3, top) + ld(4, name) + vint(5, kind) + b"".join(ld(6, b) for b in blobs))


def new_layer(name: str, kind: str, blobs: list[bytes]) -> bytes:
    param = ld(6, ld(1, "w") + key(3, 5) + struct.pack("<f", 1.0))  # ParamSpec name, lr_mult; the reader skips it
    return ld(100, ld(1, name) + ld(2, kind) + ld(3, "x") + ld(4, name) + param + b"".join(ld(7, b) for b in blobs))


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def v1_model(weights: dict, names: list[str] | None = None, *, shapes: dict | None = None) -> bytes:
    """bvlc_alexnet in the V1 form: legacy shapes, packed floats, the layers between the weights."""
    out = ld(1, "AlexNet") + ld(3, "data") + b"".join(vint(4, d) for d in (10, 3, 227, 227))
    for name, _shape, _ in NET:
        if names is not None and name not in names:
            continue
        w, b = weights[name]
        ws, bs = (shapes or {}).get(name, (w.shape, b.shape))
        kind = V1_CONVOLUTION if name.startswith("conv") else V1_INNER_PRODUCT
        out += v1_layer(name, kind, [blob(w, ws, legacy=True), blob(b, bs, legacy=True)])
        out += v1_layer(f"relu{name[-1]}", V1_RELU, [])
        if name in ("conv1", "conv2"):
            out += v1_layer(f"norm{name[-1]}", V1_LRN, [])
    return out


def new_model(weights: dict, *, float_only: bool = False) -> bytes:
    """The `layer` form: BlobShape dims, and each way of writing values; `float_only`: conv2 in
    floats too, not double_data, which OpenCV's Caffe importer refuses (blobFromProto: "Assertion
    failed: pbBlob.has_raw_data()", OpenCV 4.14)."""
    ways = {"conv1": ("unpacked", "unpacked"), "conv2": ("packed" if float_only else "double", "packed"),
            "conv3": ("split", "packed"), "fc8": ("unpacked", "unpacked")}
    out = ld(1, "AlexNet") + new_layer("data", "Input", [])
    for name, _shape, _ in NET:
        w, b = weights[name]
        data, dims = ways.get(name, ("packed", "packed"))
        kind = "Convolution" if name.startswith("conv") else "InnerProduct"
        out += new_layer(name, kind, [blob(w, w.shape, legacy=False, data=data, dims=dims),
                                      blob(b, b.shape, legacy=False, data="unpacked" if name == "conv4" else "packed")])
        out += new_layer(f"relu{name[-1]}", "ReLU", [])
    return out


# --- Caffe's LRN, weights and our logits ---------------------------------------------------------

def caffe_lrn(a: torch.Tensor, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> torch.Tensor:
    """b_c = a_c / (k + alpha/size * sum_{c' = c-2}^{c+2} a_c'^2)^beta across all the blob's maps."""
    square = F.pad(a * a, (0, 0, 0, 0, (size - 1) // 2, size - 1 - (size - 1) // 2))  # N,C+4,H,W
    window = sum(square[:, i:i + a.shape[1]] for i in range(size))
    return a / (k + alpha / size * window) ** beta


def random_weights() -> dict:
    """Random Caffe-layout weights, He-scaled so that activations keep the 0-255 inputs' size and
    LRN's alpha/n * sum a^2 reaches the order of k (with N(0, 0.01) it would hardly act); fc8
    smaller, for logits of tens, a trained net's size (He-scaled, they reach 185)."""
    g = torch.Generator().manual_seed(0)
    out = {}
    for name, shape, _ in NET:
        fan_in = math.prod(shape[1:])
        w = torch.randn(shape, generator=g) * math.sqrt(2 / fan_in) * (0.15 if name == "fc8" else 1.0)
        out[name] = (w.numpy(), (torch.randn(shape[0], generator=g) * 0.1).numpy())
    return out


def our_logits(ckpt: dict, image: torch.Tensor, **model_args) -> torch.Tensor:
    """The loaded net's logits for `image`, prepared as predict prepares it (eval_prepare, EvalViews)."""
    size = int(ckpt["input_size"][1])
    net = model_from_checkpoint(ckpt) if not model_args else build_model("alexnet2012", **model_args)
    net.load_state_dict(ckpt["model"])
    views = EvalViews(size=size, channels=3, **prep_stats(ckpt))
    with torch.no_grad():
        return net.eval()(views(eval_prepare(ckpt["augment"], size=size, channels=3)(image)[None]))[0].double()


def centre(t: torch.Tensor) -> torch.Tensor:
    return t[..., 14:241, 14:241]  # the 227 crop of a 256-square, as Caffe's centre crop takes it
