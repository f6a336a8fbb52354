"""Classifying pictures: image files, folders or in-memory images -> the top-k classes of each.

Each image is decoded robustly (`alexnet.data.load_image`: grayscale, palette, RGBA, CMYK and
16-bit pictures are converted, EXIF rotation applied), prepared as the net's training data was
(the checkpoint's input_size, mean, std and preparation: the paper's resize-and-centre-crop for
ImageNet nets), and, with tta="tencrop", classified from the ten patches of section 4.1 with
their softmax outputs averaged. A file that cannot be read gives an entry with an "error" in
place of "topk"; the others are still classified.

    results = alexnet.predict(["cat.jpg", "photos/"], "runs/RUN")   # or a model from model_from_checkpoint
    results[0] == {"path": "cat.jpg", "topk": [{"class": "tabby", "index": 281, "prob": 0.62}, ...]}
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from alexnet.data.images import BadImage
from alexnet.data.transforms import TTA_MODES, EvalViews, eval_prepare, prep_stats
from alexnet.engine.checkpoint import model_from_checkpoint
from alexnet.engine.console import explain_out_of_memory
from alexnet.engine.evaluate import class_probabilities
from alexnet.errors import UsageError
from alexnet.inference.inspect import check_finite, decode_image
from alexnet.inference.weights import as_checkpoint

ImageInput = str | os.PathLike | Tensor | Any  # a path, a uint8 C,H,W tensor, or a PIL image


def expand_inputs(inputs: Iterable[ImageInput]) -> list[ImageInput]:
    """Paths as given, folders replaced by the image files under them (recursively, sorted)."""
    from alexnet.data.folder import list_images

    out: list[ImageInput] = []
    for item in inputs:
        if isinstance(item, (str, os.PathLike)) and Path(item).is_dir():
            found = list_images(Path(item))
            out += found if found else [BadImage(str(item), "folder holds no images")]
        else:
            out.append(item)
    return out


def predict_iter(
    images: ImageInput | Sequence[ImageInput],
    model: Any,
    *,
    topk: int = 5,
    tta: str = "center",
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> Iterator[dict[str, Any]]:
    """Results one by one, in input order, computed `batch_size` images at a time."""
    if tta not in TTA_MODES:
        raise UsageError(f"unknown test-time augmentation {tta!r}; choose from: {', '.join(TTA_MODES)}")
    if topk < 1:
        raise UsageError(f"topk must be >= 1; got {topk}")
    if batch_size < 1:
        raise UsageError(f"batch size must be >= 1; got {batch_size}")
    ckpt = as_checkpoint(model)
    device = torch.device(device)
    net = model_from_checkpoint(ckpt).to(device).eval()
    classes = list(ckpt["classes"])
    channels, size = int(ckpt["input_size"][0]), int(ckpt["input_size"][1])
    prepare = eval_prepare(ckpt["augment"], size=size, channels=channels, tta=tta, translate=ckpt.get("translate"))
    views = EvalViews(size=size, channels=channels, tta=tta, **prep_stats(ckpt)).to(device)
    k = min(topk, len(classes))
    items = expand_inputs([images] if _is_single(images) else images)
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        names = [_name(item, start + i) for i, item in enumerate(chunk)]
        ready: list[tuple[int, Tensor]] = []
        errors: dict[int, str] = {}
        for i, item in enumerate(chunk):
            picture = item if isinstance(item, BadImage) else decode_image(item)
            if isinstance(picture, BadImage):
                errors[i] = picture.reason
            else:
                ready.append((i, prepare(picture)))  # uint8 C,R,R
        with explain_out_of_memory(batch_size, device, doing="classifying"):
            probs = class_probabilities(net, views(torch.stack([x for _, x in ready]).to(device))) if ready else None
        if probs is not None:
            check_finite(probs, ckpt)  # finite weights that overflow float32
        rows = {i: row for (i, _), row in zip(ready, probs)} if probs is not None else {}
        for i, name in enumerate(names):
            if i in errors:
                yield {"path": name, "error": errors[i]}
                continue
            top = rows[i].topk(k)
            yield {"path": name, "topk": [{"class": classes[j], "index": int(j), "prob": float(p)}
                                          for p, j in zip(top.values.tolist(), top.indices.tolist())]}


def predict(images: ImageInput | Sequence[ImageInput], model: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """The top-k classes of every image (see the module docstring); keywords as `predict_iter`."""
    return list(predict_iter(images, model, **kwargs))


def _is_single(images: Any) -> bool:
    return isinstance(images, (str, os.PathLike, Tensor)) or hasattr(images, "getpixel")


def _name(item: ImageInput, index: int) -> str:
    if isinstance(item, BadImage):
        return item.path
    if isinstance(item, (str, os.PathLike)):
        return os.fspath(item)
    return f"<image {index}>"
