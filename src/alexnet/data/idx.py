"""A reader for the IDX files of MNIST and Fashion-MNIST (LeCun's format), plain or gzipped.

An IDX file is a 4-byte magic number -- two zero bytes, a type byte (0x08 = unsigned byte) and
the number of dimensions -- then one big-endian uint32 per dimension, then the values in C
order. MNIST's images are ``0x00000803`` (N x 28 x 28 bytes) and its labels ``0x00000801``
(N bytes). Every check failing here raises a `DataError` that names the file.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from alexnet.errors import DataError
from alexnet.limits import IDX_BYTES, Refused, check_size, open_regular

_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """The uint8 array stored in the IDX file at `path`, which must have `ndim` dimensions.

    Whether the file is gzipped is told by its first bytes, not its name. The header is read
    first and the size it claims checked against `IDX_BYTES` before the values are read, and no
    more bytes than it claims (plus one, to tell trailing bytes) are inflated: a small gzip that
    inflates to gigabytes costs neither the memory nor the time.
    """
    path = Path(path)
    header = 4 + 4 * ndim
    with _opened(path) as f:
        raw = _read(f, header, path)
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
        if len(raw) < header:
            raise DataError(f"{path}: IDX header truncated ({len(raw)} of {header} bytes)")
        shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
        dims_text = "x".join(map(str, shape))
        if 0 in shape:
            raise DataError(f"{path}: the IDX header gives the dimensions {dims_text}: a 0 leaves no values")
        expected_body = math.prod(shape)  # Python's int: 2^31 x 2^31 x 4 does not wrap around to 0 as in int64
        try:
            check_size(header + expected_body, IDX_BYTES, f"the IDX data its header ({dims_text}) claims")
        except Refused as err:
            raise DataError(f"{path}: {err}") from None
        body = _read(f, expected_body + 1, path)
    if len(body) < expected_body:
        raise DataError(f"{path}: IDX body is {len(body)} bytes but the header ({dims_text}) says {expected_body}: "
                        "file truncated")
    if len(body) > expected_body:  # only one byte more was read
        raise DataError(f"{path}: IDX body is longer than the {expected_body} bytes the header ({dims_text}) says: "
                        "file has trailing bytes")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[BinaryIO]:
    """The file's bytes as a stream, inflated if it is gzipped; a `DataError` if it cannot be opened."""
    try:
        # a regular file, not a pipe or a device (alexnet.limits); gzipped, it may be as large
        with open_regular(path, IDX_BYTES) as f:
            gzipped = f.read(2) == _GZIP_MAGIC
            f.seek(0)
            yield gzip.GzipFile(fileobj=f, mode="rb") if gzipped else f  # type: ignore[misc]
    except Refused as err:
        raise DataError(f"{path}: {err}") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None


def _read(f: BinaryIO, n: int, path: Path) -> bytes:
    """At most `n` bytes of `f` (fewer at its end)."""
    try:
        return f.read(n)
    except (OSError, EOFError, zlib.error) as err:  # gzip's BadGzipFile is an OSError
        raise DataError(f"{path}: broken gzip data ({' '.join(str(err).split())})") from None
