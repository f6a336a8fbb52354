"""A reader for the IDX files of MNIST and Fashion-MNIST (LeCun's format), plain or gzipped.

An IDX file is a 4-byte magic number -- two zero bytes, a type byte (0x08 = unsigned byte) and
the number of dimensions -- then one big-endian uint32 per dimension, then the values in C
order. MNIST's images are ``0x00000803`` (N x 28 x 28 bytes) and its labels ``0x00000801``
(N bytes). Every check failing here raises a `DataError` that names the file.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from alexnet.errors import DataError

_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """The uint8 array stored in the IDX file at `path`, which must have `ndim` dimensions.

    Whether the file is gzipped is told by its first bytes, not its name.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: too short for an IDX file ({len(raw)} bytes)")
    zero, dtype, dims = raw[:2], raw[2], raw[3]
    magic = int.from_bytes(raw[:4], "big")
    expected = (_UBYTE << 8) | ndim
    if zero != b"\0\0" or dtype != _UBYTE or dims != ndim:
        raise DataError(
            f"{path}: IDX magic number is 0x{magic:08x}, expected 0x{expected:08x} "
            f"(unsigned bytes, {ndim}-D)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: IDX header truncated ({len(raw)} of {header} bytes)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = len(raw) - header
    expected_body = int(np.prod(shape, dtype=np.int64))
    if body != expected_body:
        what = "truncated" if body < expected_body else "has trailing bytes"
        raise DataError(
            f"{path}: IDX body is {body} bytes but the header ({'x'.join(map(str, shape))}) "
            f"says {expected_body}: file {what}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(f"{path}: broken gzip data ({err})") from None
    return raw
