"""JPEG files decoded on the training device in whole batches (nvJPEG on a GPU), PIL as the fallback.

On a GPU the CPU's JPEG decoding is what limits training from files: a few CPU cores decode
hundreds of ImageNet photographs a second with PIL (measured: BENCHMARKS.md, 'CPU: this
project's machine'), while the GPU consumes tens of thousands. So, following torchvision's own
advice for its GPU decoder ("passing a list of tensors is more efficient than repeated
individual calls"), the loader's workers only read each file's bytes and look at its header,
and the main process decodes the whole batch in one `torchvision.io.decode_jpeg(list,
device=...)` call. The decoded images are then prepared (shorter side to R, centre square:
`transforms.Prepare`) on the device, those of one size together, as ImageNet's photographs
mostly share a handful of sizes.

What nvJPEG is not given, and why:
- files that are not baseline/progressive RGB or grey JPEGs (PNG, CMYK JPEG, ...) are decoded by
  PIL in the worker (`load_image`, which handles every mode) and prepared there, as before;
- files with more pixels than PIL's decompression-bomb limit are refused by `load_image` too, and
  so are pipes, devices and files over `IMAGE_FILE_BYTES`, which the worker does not even open
  (`alexnet.limits`);
- the EXIF orientation (phones store portrait photos rotated), which torchvision applies on the
  CPU only, is read from the header in the worker and applied on the device after decoding;
- a file the decoder rejects (truncated, corrupt) makes the batched call fail: the batch is then
  decoded one file at a time, and a file that fails alone goes to `load_image` in the main
  process, which returns a `BadImage` for the loader's count if PIL cannot read it either.

The same path runs on the CPU (torchvision's libjpeg-turbo decoder in the main process), which
is how the tests check it against PIL without a GPU.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from alexnet.data.datasets import ImageFiles
from alexnet.data.images import BadImage, load_image
from alexnet.limits import IMAGE_FILE_BYTES, read_regular

# EXIF orientation tag (0x0112) values -> (quarter turns counter-clockwise, then mirror left-right)
# that make the stored pixels upright, as PIL's ImageOps.exif_transpose does.
_EXIF_ORIENTATION = 0x0112
_UPRIGHT = {2: (0, True), 3: (2, False), 4: (2, True), 5: (3, True), 6: (3, False), 7: (1, True), 8: (1, False)}


class Encoded(NamedTuple):
    """One JPEG file's bytes, still encoded, with what decoding it needs to know."""

    data: Tensor  # uint8, 1-D: the file's bytes
    orientation: int  # EXIF orientation, 1 (upright) to 8
    path: str


class EncodedBatch(NamedTuple):
    """A batch as the workers hand it over, in the sampler's order: each readable item either a
    JPEG still encoded or an image PIL decoded and the worker prepared; and the unreadable files."""

    items: list[Encoded | Tensor]  # Tensor: uint8 C,R,R
    labels: list[int]
    bad: list[BadImage]


def read_encoded(path: str) -> Encoded | None:
    """The bytes of `path` if it is a JPEG the device decoder takes (RGB or grey, within PIL's
    pixel limit), else None: the caller decodes it with `load_image`, which also reports why a
    file is unreadable. Only the header is parsed here, no pixels."""
    try:
        # A pipe, a device or a huge file is refused before it is read (it would block or never
        # end); load_image then refuses it the same way, naming why, for the bad-image list.
        data = read_regular(path, IMAGE_FILE_BYTES)
        with warnings.catch_warnings():  # Image.open checks the pixel count as load_image does
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if img.format != "JPEG" or img.mode not in ("RGB", "L"):
                    return None
                orientation = int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # unreadable or odd: load_image decides, and says why
        return None
    if orientation not in range(1, 9):
        orientation = 1
    return Encoded(torch.frombuffer(bytearray(data), dtype=torch.uint8), orientation, os.fspath(path))


class EncodedFiles(Dataset):
    """`ImageFiles` whose JPEGs come back encoded: item i is ``(Encoded | PIL image | BadImage, label)``."""

    def __init__(self, files: ImageFiles) -> None:
        self.files = files
        self.targets = files.targets

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[object, int]:
        path = self.files.paths[index]
        encoded = read_encoded(path)
        return (encoded if encoded is not None else load_image(path)), self.targets[index]


def collate_encoded(items: Sequence[tuple[object, int]]) -> EncodedBatch:
    """A batch's items (after the worker's prepare), the unreadable ones set apart."""
    batch = EncodedBatch([], [], [])
    for x, y in items:
        if isinstance(x, BadImage):
            batch.bad.append(x)
        else:
            batch.items.append(x)  # type: ignore[arg-type]
            batch.labels.append(y)
    return batch


def upright(image: Tensor, orientation: int) -> Tensor:
    """Apply an EXIF orientation to a decoded image: C,H,W -> C,H',W'."""
    turns, mirror = _UPRIGHT.get(orientation, (0, False))
    if turns:
        image = torch.rot90(image, turns, dims=(-2, -1))
    return image.flip(-1) if mirror else image


def decode_jpegs(encoded: Sequence[Encoded], device: torch.device) -> list[Tensor | BadImage]:
    """Decode the files on `device`, all in one call where possible: each an upright uint8 C,H,W
    image, or a `BadImage` (see the module docstring for the fallbacks). C is the file's own, 3 or
    1, as `load_image` gives them: `Prepare` then makes it the model's by the same rule either way."""
    from torchvision.io import ImageReadMode, decode_jpeg

    mode = ImageReadMode.UNCHANGED  # read_encoded passes only RGB and grey JPEGs

    def decode(datas: list[Tensor]) -> list[Tensor]:
        with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders in favour of TorchCodec
            warnings.simplefilter("ignore", DeprecationWarning)
            return decode_jpeg(datas, mode=mode, device=device)  # type: ignore[return-value]

    # Any exception, not only the RuntimeError a corrupt file raises: a decoder that cannot run at
    # all (a torchvision built without nvJPEG) must cost speed, never the run.
    try:
        return [upright(x, e.orientation) for x, e in zip(decode([e.data for e in encoded]), encoded)]
    except Exception:  # one bad file fails the whole call: find it
        pass
    images: list[Tensor | BadImage] = []
    for e in encoded:
        try:
            images.append(upright(decode([e.data])[0], e.orientation))
        except Exception:  # PIL decides, and names the reason if it fails too
            images.append(_with_pil(e.path, device))
    return images


def _with_pil(path: str, device: torch.device) -> Tensor | BadImage:
    """One file decoded by PIL (upright: PIL applies the EXIF orientation), as uint8 C,H,W on `device`."""
    from torchvision.transforms.v2.functional import pil_to_tensor

    img = load_image(path)
    return img if isinstance(img, BadImage) else pil_to_tensor(img).to(device)


def prepare_on_device(images: Sequence[Tensor], prepare: Callable[[Tensor], Tensor]) -> list[Tensor]:
    """`prepare` (uint8 N,C,H,W -> N,C,R,R) of each image, called once per distinct size: C,H,W each -> C,R,R each."""
    if not images:
        return []
    by_size: dict[tuple[int, ...], list[int]] = {}
    for i, x in enumerate(images):
        by_size.setdefault(tuple(x.shape), []).append(i)
    out: list[Tensor] = [images[0]] * len(images)
    for same in by_size.values():
        prepared = prepare(torch.stack([images[i] for i in same]))  # n,C,R,R
        for i, x in zip(same, prepared):
            out[i] = x
    return out

