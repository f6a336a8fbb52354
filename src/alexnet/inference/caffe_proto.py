"""Caffe's protobuf files decoded by hand: the layers and blobs of a NetParameter, a BlobProto.

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

Every count is bounded as well as the bytes: a file of tiny repeated fields costs a Python object
and a loop turn per field, far more than its size says (`Budget`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# V1LayerParameter.LayerType numbers (caffe.proto) of the layers a message may name
V1_TYPES = {
    4: "Convolution", 5: "Data", 6: "Dropout", 14: "InnerProduct", 15: "LRN", 17: "Pooling", 18: "ReLU", 20: "Softmax"
}
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




class Malformed(Exception):
    """Bytes that are not the protobuf a Caffe file holds; the text says where and why."""


class Budget:
    """The fields a file may still hold (MAX_FIELDS in all), counted as they are read."""

    def __init__(self) -> None:
        self.left = MAX_FIELDS

    def take(self, at: int) -> None:
        self.left -= 1
        if self.left < 0:
            raise Malformed(f"more than {MAX_FIELDS:,} fields (at byte {at:,}), where a Caffe weights file has a "
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
            raise Malformed(f"a varint at byte {start:,} runs over 10 bytes")
    raise Malformed(f"truncated: a varint at byte {start:,} runs past the end of its message (byte {end:,})")


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
        raise Malformed(f"field number 0 at byte {at:,}")
    if wire == 0:
        value, pos = _varint(buf, pos, end)
        return number, wire, value, pos
    if wire == 2:
        size, pos = _varint(buf, pos, end)
    elif wire in (1, 5):
        size = 8 if wire == 1 else 4
    else:
        groups = " (a group, which caffe.proto never uses)" if wire in (3, 4) else ""
        raise Malformed(f"unknown wire type {wire} at byte {at:,}{groups}")
    if size > end - pos:
        raise Malformed(f"truncated: field {number} at byte {at:,} is {size:,} bytes long, {end - pos:,} remain")
    return number, wire, (pos, pos + size), pos + size


def _fields(buf: bytes, start: int, end: int, wires: dict[int, tuple[int, ...]], what: str,
            budget: Budget) -> dict[int, list[Any]]:
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
                raise Malformed(
                    f"{what} field {number} at byte {at:,} has wire type {wire}, "
                    f"caffe.proto gives it {wires[number][0]}"
                )
            found[number].append(value)
    return found


def _text(buf: bytes, span: tuple[int, int], what: str) -> str:
    try:
        return buf[span[0]:span[1]].decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed(f"{what} at byte {span[0]:,} is not UTF-8 text") from None


def _packed(buf: bytes, span: tuple[int, int], dtype: str) -> np.ndarray:
    """A packed run of little-endian floats or doubles (a view of `buf`)."""
    width = np.dtype(dtype).itemsize
    if (span[1] - span[0]) % width:
        raise Malformed(
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


def _blob(buf: bytes, start: int, end: int, what: str, budget: Budget) -> CaffeBlob:
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
                raise Malformed(f"{what} at byte {start:,} has more than {MAX_AXES} axes, Caffe's most")
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
            raise Malformed(
                f"{what} field {number} at byte {at:,} has wire type {wire}, which caffe.proto does not give it"
            )
    if any(d < 0 for d in [*legacy.values(), *dims]):
        raise Malformed(f"{what} at byte {start:,} has a negative dimension")
    shape = tuple(legacy.get(i, 0) for i in (1, 2, 3, 4)) if legacy else tuple(dims)
    values = (
        np.concatenate(doubles).astype(np.float32) if doubles
        else np.concatenate(floats) if floats
        else np.zeros(0, np.float32)
    )
    if values.size != math.prod(shape):
        raise Malformed(
            f"{what} at byte {start:,} holds {values.size:,} values, its shape {shape} says {math.prod(shape):,}"
        )
    return CaffeBlob(shape, bool(legacy), values)


def _dims(buf: bytes, span: tuple[int, int], budget: Budget) -> list[int]:
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


def parse_net(buf: bytes) -> list[CaffeLayer]:
    """Every layer of a serialized NetParameter, in file order."""
    budget = Budget()
    net = _fields(
        buf, 0, len(buf), {1: (2,), 2: (2,), 3: (2,), 4: (0, 2), 5: (0,), 6: (2,), 7: (0,), 8: (2,), 100: (2,)},
        "NetParameter", budget,
    )
    if len(net[2]) + len(net[100]) > MAX_LAYERS:
        raise Malformed(f"it lists {len(net[2]) + len(net[100]):,} layers, more than {MAX_LAYERS:,}")
    if net[2] and net[100]:  # as Caffe's UpgradeV1Net refuses it (src/caffe/util/upgrade_proto.cpp)
        raise Malformed("it holds both 'layer' and 'layers' (V1) fields, which Caffe refuses as inconsistent")
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
            raise Malformed("its layers are in Caffe's V0 format (before 2014): upgrade the file with Caffe's "
                             "tools/upgrade_net_proto_binary")
        name = _text(buf, f[4][-1], "a layer name") if f[4] else ""
        kind = V1_TYPES.get(f[5][-1], f"V1 type {f[5][-1]}") if f[5] else ""
        layers.append(CaffeLayer(
            name, kind, _blobs(buf, f[6], name, budget)
        ))
    return layers


def _blobs(buf: bytes, spans: list[tuple[int, int]], layer: str, budget: Budget) -> tuple[CaffeBlob, ...]:
    if len(spans) > MAX_BLOBS:
        raise Malformed(f"layer {layer or '(unnamed)'} holds {len(spans):,} blobs, more than {MAX_BLOBS}")
    return tuple(_blob(buf, *span, f"layer {layer or '(unnamed)'}'s blob {i}", budget) for i, span in enumerate(spans))


def parse_blob(buf: bytes) -> CaffeBlob:
    """The one BlobProto a .binaryproto file holds (Caffe's mean files)."""
    return _blob(buf, 0, len(buf), "BlobProto", Budget())
