"""Reading one image file robustly: `load_image` gives an 'RGB' or 'L' PIL image, or a `BadImage`.

Real photo collections contain files that PIL cannot (or should not) decode: truncated
downloads, zero-byte files, HTML error pages saved as ``.jpg``, dangling symlinks and
"decompression bombs" whose header claims billions of pixels. A file-backed dataset must keep
going past those, so `load_image` never raises for a bad file: it returns a `BadImage` in place
of the picture, and the loader counts and reports them.

Valid but unusual images are brought to the two modes the transforms expect:
EXIF orientation is applied; CMYK, YCbCr and the like become RGB; palette and alpha images are
composited on white (transparent pixels would otherwise show whatever colour the encoder left
under them); 16-bit and float grayscale is scaled to 8-bit 'L'; an animated GIF gives its
first frame.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from alexnet.limits import IMAGE_FILE_BYTES, Refused, open_regular

# Extensions (lower case, with the dot) that the folder scanners treat as images.
IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm",
)


@dataclass(frozen=True)
class BadImage:
    """Stands in for an image whose file could not be decoded; `reason` says why, briefly."""

    path: str
    reason: str


def is_image_file(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def load_image(path: str | os.PathLike) -> Image.Image | BadImage:
    """Decode the image at `path` into a fully loaded PIL image of mode 'RGB' or 'L'.

    Returns a `BadImage` instead of raising when the file is missing, unreadable, not a regular
    file, larger than `IMAGE_FILE_BYTES`, truncated, not an image, or larger than PIL's
    decompression-bomb limit (`Image.MAX_IMAGE_PIXELS`).
    """
    path = os.fspath(path)
    try:
        # A FIFO named *.jpg would block Image.open forever, a link to /dev/zero never end, a
        # sparse 1 TiB file take as long: only a regular file of a sane size is opened (limits.py).
        # A dangling link raises FileNotFoundError here.
        with open_regular(path, IMAGE_FILE_BYTES) as f:
            # A bomb warning (between 1x and 2x PIL's pixel limit) is as much a reason to refuse the
            # file as the error PIL raises above 2x; refuse before any pixels are allocated.
            # (The filter is process-wide: fine in DataLoader workers, which are processes.)
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(f) as img:
                    img.load()  # decode now, inside the try: a truncated file fails here, not later
                    return normalise_image(img)
    except Refused as err:
        return BadImage(path, str(err))
    except Exception as err:  # PIL's plugins raise many types on corrupt input; none may escape
        return BadImage(path, _reason(path, err))


def normalise_image(img: Image.Image) -> Image.Image:
    """Convert a loaded image of any mode to 'RGB' or 'L', upright."""
    img = _upright(img)
    mode = img.mode
    if mode in ("RGB", "L"):
        # PIL memory-maps some uncompressed files (read-only); copy so the image outlives the file.
        return img.copy() if img.readonly else img
    if mode == "1":
        return img.convert("L")
    if mode == "P":
        # Palette images may mark one index (or several, via a tRNS table) transparent.
        if "transparency" in img.info:
            return _on_white(img.convert("RGBA"))
        return img.convert("RGB")
    if mode in ("RGBA", "RGBa", "PA"):
        return _on_white(img.convert("RGBA"))
    if mode in ("LA", "La"):
        return _on_white(img.convert("LA"))
    if mode.startswith("I") or mode == "F":
        return _to_8bit_gray(img)
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, ...


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag, if any (phones store portrait photos rotated)."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # a malformed EXIF block should not cost us an otherwise good image
        return img


def _on_white(img: Image.Image) -> Image.Image:
    """Composite an 'RGBA' or 'LA' image on a white background, giving 'RGB' or 'L'."""
    base = img.mode[:-1]  # 'RGB' or 'L'
    white = Image.new(base, img.size, (255,) * len(base))
    white.paste(img.convert(base), mask=img.getchannel("A"))
    return white


def _to_8bit_gray(img: Image.Image) -> Image.Image:
    """Scale 16-bit, 32-bit integer or float grayscale to 8-bit 'L'.

    The source range is guessed from the mode and the values: 16-bit modes span 0..65535;
    32-bit 'I' images (PIL's mode for many 16-bit PNGs) and floats are taken as 0..255,
    0..65535 or 0..1 when they fit, else stretched from their minimum to their maximum.
    """
    a = np.asarray(img, dtype=np.float64)  # H,W
    if img.mode.startswith("I;16"):
        scale_max = 65535.0
    else:
        lo, hi = float(a.min(initial=0.0)), float(a.max(initial=0.0))
        if lo >= 0 and hi <= 1.0 and img.mode == "F":
            scale_max = 1.0
        elif lo >= 0 and hi <= 255:
            scale_max = 255.0
        elif lo >= 0 and hi <= 65535:
            scale_max = 65535.0
        else:
            a = a - lo
            scale_max = max(hi - lo, 1e-12)
    a = np.clip(np.rint(a * (255.0 / scale_max)), 0, 255).astype(np.uint8)
    return Image.fromarray(a)  # a 2-D uint8 array becomes mode 'L'


def _reason(path: str, err: BaseException) -> str:
    """A short, one-line reason for a failed decode."""
    if isinstance(err, FileNotFoundError):
        return "missing file (or a dangling link)" if os.path.islink(path) else "missing file"
    if isinstance(err, PermissionError):
        return "permission denied"
    if isinstance(err, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return "too many pixels (decompression bomb?)"
    try:
        if os.path.getsize(path) == 0:
            return "empty file"
    except OSError:
        pass
    if isinstance(err, Image.UnidentifiedImageError):
        return "not an image file"
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 100 else text[:97] + "..."
