"""Evaluation: loss, top-1/top-5 accuracy and error, per-class accuracy, confusion matrix.

Test-time views (section 4.1): `views` turns each prepared uint8 batch into the network's input
on the device; when that input is N,V,C,H,W (flip: V=2, ten-crop: V=10), the network's softmax
outputs are averaged over the V views, as the paper averaged the predictions of its ten patches;
loss and accuracy are computed on the averaged probabilities. A checkpoint's ten patches are cut
where its training cropped (`eval_prepare`, from the saved `augment`): the paper's corners of the
256 square, or the small preset's corners of the image padded by the run's `translate`; a run
trained without crops ("none") is refused before any data is read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from alexnet.data.loader import note_bad
from alexnet.engine import console, distributed
from alexnet.engine.checkpoint import model_from_checkpoint
from alexnet.engine.console import explain_out_of_memory
from alexnet.engine.fast import autocast_for

_CPU = torch.device("cpu")


@torch.no_grad()
def topk_correct(logits: Tensor, target: Tensor, ks: tuple[int, ...] = (1, 5)) -> list[int]:
    """How many rows of `logits` (N,K) have `target` (N) among their k highest scores, per k."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices  # N,kmax
    hit = top == target[:, None]  # N,kmax
    return [int(hit[:, : min(k, kmax)].any(dim=1).sum()) for k in ks]


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """num_classes x num_classes counts, rows = true class, columns = predicted class."""
    idx = target.long() * num_classes + pred.long()
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def class_probabilities(model: nn.Module, x: Tensor) -> Tensor:
    """Softmax outputs of N,C,H,W inputs, or of N,V,C,H,W views averaged over V (section 4.1) -> N,K."""
    views = x.shape[1] if x.ndim == 5 else 1
    logits = model(x.flatten(0, 1) if x.ndim == 5 else x)  # N*V,K
    return logits.float().softmax(dim=1).view(-1, views, logits.shape[1]).mean(dim=1)  # N,K


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    *,
    device: torch.device,
    num_classes: int,
    views: Callable[[torch.Tensor], torch.Tensor] | None = None,
    autocast: contextlib.AbstractContextManager | None = None,
    strict: bool = False,
    progress: str = "",
    stop: Any = None,
) -> dict[str, Any]:
    """Evaluate `model` on every batch of `loader`; returns a dict of metrics (see keys below).

    With `progress` a bar of that name counts the batches (on a terminal, in the main process):
    validating 10,000 images at 224 px takes minutes on a CPU. A true `stop` (training's
    StopRequest, set by SIGINT or SIGTERM) ends the pass after the current batch, with "stopped"
    true, so a signal is answered in a batch's time, not a validation's; data-parallel processes,
    which must run the same batches, finish the pass."""
    model.eval()
    loss_sum, correct1, correct5, n, n_views = 0.0, 0, 0, 0, 1
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    bad: list = []
    stopped = False
    for batch in console.progress(loader, progress, show=bool(progress)):
        if stop and not distributed.active():
            stopped = True
            break
        note_bad(batch.bad, bad, strict=strict)
        if batch.labels.numel() == 0:
            continue
        x = batch.images.to(device, non_blocking=True)
        x = views(x) if views is not None else x  # N,C,H,W or N,V,C,H,W
        y = batch.labels.to(device, non_blocking=True)  # N
        n_views = x.shape[1] if x.ndim == 5 else 1
        with autocast or contextlib.nullcontext():
            probs = class_probabilities(model, x)  # N,K
        log_probs = probs.clamp_min(1e-12).log()
        loss_sum += float(F.nll_loss(log_probs, y, reduction="sum"))
        c1, c5 = topk_correct(probs, y, (1, 5))
        correct1, correct5, n = correct1 + c1, correct5 + c5, n + y.shape[0]
        confusion += confusion_matrix(probs.argmax(dim=1), y, num_classes).cpu()
    if distributed.active():  # data-parallel: each process saw its share of the images
        sums = distributed.sum_across(torch.tensor([loss_sum, correct1, correct5, n], dtype=torch.float64))
        loss_sum, correct1, correct5, n = float(sums[0]), int(sums[1]), int(sums[2]), int(sums[3])
        confusion = distributed.sum_across(confusion)
    per_class_n = confusion.sum(dim=1)
    per_class = (confusion.diag().double() / per_class_n.clamp_min(1)).tolist()
    top1 = correct1 / n if n else float("nan")
    top5 = correct5 / n if n else float("nan")
    return {
        "loss": loss_sum / n if n else float("nan"),
        "top1": top1,
        "top5": top5,
        "top1_error": 1 - top1,
        "top5_error": 1 - top5,
        "n": n,
        "views": n_views,
        "per_class": per_class,
        "per_class_n": per_class_n.tolist(),
        "confusion": confusion,
        "bad": bad,
        "stopped": stopped,
    }


def evaluate_checkpoint(
    ckpt: dict[str, Any],
    *,
    data: str | None = None,
    split: str = "val",
    tta: str | None = None,
    batch_size: int = 100,
    workers: int = -1,
    device: torch.device = _CPU,
    amp: bool = False,
    strict: bool = False,
    images: int = 0,
    calibrate: Callable[[nn.Module, Iterable[Tensor]], nn.Module] | None = None,
    calibration_images: int = 512,
) -> dict[str, Any]:
    """Evaluate a checkpoint dict on a split of `data` (default: the data it was trained on, where
    'val' is the run's holdout if it held one out), preparing images as it was trained. `images` > 0
    scores a class-balanced subset of that many. With `calibrate` (inference/int8.py's
    `quantize_int8`, say) the net scored is `calibrate(net, batches)` on the centre views of
    `calibration_images` training images. `tta` defaults to the run's own test-time views
    (`run_view`). Returns `evaluate`'s result with "data", "split", "tta" and "classes" added."""
    from alexnet.data import open_dataset
    from alexnet.data.datasets import hold_out, take
    from alexnet.data.loader import default_workers, make_loader
    from alexnet.data.transforms import EvalViews, eval_prepare, prep_stats
    from alexnet.errors import UsageError

    spec = data or ckpt.get("data")
    if not spec:
        raise UsageError(f"the weights {ckpt.get('path', '')} do not say what data they were trained on: "
                         "give --data SPEC")
    channels, size, tta = int(ckpt["input_size"][0]), int(ckpt["input_size"][1]), tta or run_view(ckpt)
    # first, so that a ten-crop the run's preparation cannot support is refused before the data is opened
    prepare = eval_prepare(ckpt["augment"], size=size, channels=channels, tta=tta, translate=ckpt.get("translate"))
    config = ckpt.get("config") or {}
    source = open_dataset(spec, seed=int(config.get("seed", 0)), val_fraction=float(config.get("val_fraction", 0.1)))
    if spec == ckpt.get("data"):  # the run's own data: 'val' is its holdout where it held one out
        source = hold_out(source, int(config.get("holdout") or 0))
    classes = list(ckpt["classes"])
    if len(source.classes) != len(classes):
        named = ", ".join(classes[:3]) + (", ..." if len(classes) > 3 else "")
        raise UsageError(f"{spec} has {len(source.classes)} class{'' if len(source.classes) == 1 else 'es'} "
                         f"but the net was trained on {len(classes)}: a labelled set for it has a folder per class, "
                         f"named as its classes ({named})")
    if images < 0:
        raise UsageError(f"images must be a count >= 0 (0: the whole split); got {images}")
    workers = default_workers() if workers < 0 else workers
    if calibrate is not None and calibration_images < 1:
        raise UsageError(f"calibration_images must be >= 1; got {calibration_images}")
    model = model_from_checkpoint(ckpt).to(device)
    views = EvalViews(size=size, channels=channels, tta=tta, **prep_stats(ckpt)).to(device)
    part = take(source.split(split), images) if images else source.split(split)  # a class-balanced subset
    loader = make_loader(part, prepare, batch_size=batch_size, shuffle=False, workers=workers)
    if calibrate is not None:
        batches = calibration_batches(source.split("train"), ckpt, calibration_images, batch_size, workers, device)
        model = calibrate(model.eval(), batches)
    autocast, _ = autocast_for(device, "auto" if amp else "fp32")
    if amp:  # weights held in the autocast dtype, not cast from float32 again at every batch
        model.to(autocast.fast_dtype)  # type: ignore[attr-defined]
    with explain_out_of_memory(batch_size, device, doing="evaluating", amp=amp):
        result = evaluate(model, loader, device=device, num_classes=len(classes), views=views, autocast=autocast,
                          strict=strict)
    if result["n"] == 0:
        what = "no readable images" if len(source.split(split)) else "no images"
        raise UsageError(f"{spec} ({split}) has {what}: score the net on a labelled set with --data SPEC")
    return result | {"data": spec, "split": split, "tta": tta, "classes": classes}


def run_view(ckpt: dict[str, Any]) -> str:
    """The test-time views a checkpoint's run was scored with at its end (its config's tta): what
    eval scores with unless told otherwise; the centre view for weights without a run."""
    from alexnet.config import TTA_MODES

    tta = (ckpt.get("config") or {}).get("tta")
    return tta if tta in TTA_MODES else "center"


def calibration_batches(train: Any, ckpt: dict[str, Any], images: int, batch_size: int, workers: int,
                        device: torch.device) -> Iterable[Tensor]:
    """The centre views (float N,C,S,S, the net's units) of a class-balanced subset of `images`
    of `train`, prepared as the checkpoint's evaluation prepares its images."""
    from alexnet.data.datasets import take
    from alexnet.data.loader import make_loader
    from alexnet.data.transforms import EvalViews, eval_prepare, prep_stats
    from alexnet.errors import UsageError

    if not len(train):
        raise UsageError("calibrating needs training images, and this data has none")
    channels, size = int(ckpt["input_size"][0]), int(ckpt["input_size"][1])
    views = EvalViews(size=size, channels=channels, tta="center", **prep_stats(ckpt)).to(device)
    prepare = eval_prepare(ckpt["augment"], size=size, channels=channels, tta="center")
    loader = make_loader(take(train, min(images, len(train))), prepare, batch_size=batch_size, shuffle=False,
                         workers=workers)
    return (views(b.images.to(device)) for b in loader if b.labels.numel())
