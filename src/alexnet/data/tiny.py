"""Tiny images (CIFAR-10's 32x32 pictures) decoded from their bytes in memory, a batch at a time.

The name is that of the collection CIFAR-10 was drawn from, the 80 Million Tiny Images of
Torralba, Fergus & Freeman (2008); see Krizhevsky, "Learning Multiple Layers of Features from
Tiny Images" (2009). A CIFAR-10 JPEG tree or archive holds 60,000 files of about 1 KB each
(`alexnet.data.cifar_cache` decodes them); torchvision's decoders are faster than PIL on them
(BENCHMARKS.md, 'CPU: this project's machine'), fastest when handed a whole batch of JPEGs in
one call.

Before anything is decoded, each file's header is read by PIL: a file whose header does not give
the expected size is refused there, as a `BadImage` naming its size, so a small PNG whose header
claims 20,000 x 20,000 pixels costs nothing rather than the 1.2 GB its pixels would take. The
header check costs about as much as the decode itself, paid once: the cache then saves the
decode (measured: BENCHMARKS.md, 'CPU: this project's machine'). JPEGs then go to torchvision
in one call, PNGs one by one; other formats (GIF, WebP, ...) to PIL, which gives a GIF's first
frame where torchvision would decode every frame.
"""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
import torch
from PIL import Image

from alexnet.data.images import BadImage


def decode_tiny(names: list[str], contents: list[bytes | BadImage],
                size: tuple[int, int] = (32, 32)) -> list[torch.Tensor | BadImage]:
    """Decode encoded images of `size` (W, H) to RGB uint8 3,H,W tensors, or a `BadImage` each
    for those that are unreadable or not of that size (judged from the header, before decoding)."""
    vetted = [c if isinstance(c, BadImage) else _vet(n, c, size) for n, c in zip(names, contents)]
    out: list[torch.Tensor | BadImage | None] = [v if isinstance(v, BadImage) else None for v in vetted]
    try:
        from torchvision.io import ImageReadMode, decode_image, decode_jpeg
    except ImportError:  # a torchvision without its image codecs: decode with PIL instead
        return [v if isinstance(v, BadImage) else _with_pil(n, c) for n, c, v in zip(names, contents, vetted)]

    with warnings.catch_warnings():
        # torchvision 0.29 deprecates its codecs in favour of TorchCodec; they are still here,
        # and faster than PIL on tiny JPEGs (see the module docstring).
        warnings.simplefilter("ignore", DeprecationWarning)
        jpegs = [i for i, v in enumerate(vetted) if v == "JPEG"]
        if jpegs:
            try:
                # One call for all the JPEGs is the fast path; on any failure they are decoded
                # one by one below, to find the bad ones.
                decoded = decode_jpeg([_tensor(contents[i]) for i in jpegs], mode=ImageReadMode.RGB)  # type: ignore[arg-type]
                for i, x in zip(jpegs, decoded):
                    out[i] = x
            except RuntimeError:
                pass
        for i, (name, v) in enumerate(zip(names, vetted)):
            if out[i] is not None:
                continue
            if v in ("JPEG", "PNG"):
                try:
                    out[i] = decode_image(_tensor(contents[i]), mode=ImageReadMode.RGB)
                except RuntimeError as err:
                    out[i] = BadImage(name, _short_reason(err))
            else:
                out[i] = _with_pil(name, contents[i])  # type: ignore[arg-type]
    return out  # type: ignore[return-value]  # every None was filled


def _vet(name: str, data: bytes, size: tuple[int, int]) -> str | BadImage:
    """The file's format as PIL names it ('JPEG', 'PNG', ...) if its header gives `size`, else a BadImage."""
    if not data:
        return BadImage(name, "empty file")
    try:
        with warnings.catch_warnings():  # over PIL's pixel limit: a warning at 1x, an error at 2x
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt, (w, h) = img.format, img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return BadImage(name, "too many pixels (decompression bomb?)")
    except Image.UnidentifiedImageError:
        return BadImage(name, "not an image file")
    except Exception as err:  # PIL's plugins raise many types on corrupt headers
        return BadImage(name, " ".join(str(err).split())[:100] or type(err).__name__)
    if (w, h) != size:
        return BadImage(name, f"is {w}x{h} px, not {size[0]}x{size[1]}")
    return str(fmt)


def _tensor(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def _with_pil(name: str, data: bytes) -> torch.Tensor | BadImage:
    try:
        with Image.open(io.BytesIO(data)) as img:
            rgb = np.asarray(img.convert("RGB"))  # H,W,3 (a GIF's first frame)
    except Exception as err:  # PIL raises many types on corrupt input
        return BadImage(name, " ".join(str(err).split())[:100] or type(err).__name__)
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)  # 3,H,W


def _short_reason(err: Exception) -> str:
    # torchvision's messages start with the C++ function and source location; keep what follows.
    text = " ".join(str(err).split())
    text = re.split(r"\.cpp:\d+,\s*", text)[-1]
    return text[:100] or type(err).__name__
