"""Evaluation: loss, top-1/top-5 accuracy and error, per-class accuracy, confusion matrix.

Test-time views (section 4.1): `views` turns each prepared uint8 batch into the network's input
on the device; when that input is N,V,C,H,W (flip: V=2, ten-crop: V=10), the network's softmax
outputs are averaged over the V views, as the paper averaged the
predictions of its ten patches; loss and accuracy are computed on the averaged probabilities.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from alexnet.data.loader import note_bad
from alexnet.engine.metrics import confusion_matrix, topk_correct


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
) -> dict[str, Any]:
    """Evaluate `model` on every batch of `loader`; returns a dict of metrics (see keys below)."""
    model.eval()
    loss_sum, correct1, correct5, n, n_views = 0.0, 0, 0, 0, 1
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    bad: list = []
    for batch in loader:
        note_bad(batch.bad, bad, strict=strict)
        if batch.labels.numel() == 0:
            continue
        x = batch.images.to(device, non_blocking=True)
        x = views(x) if views is not None else x  # N,C,H,W or N,V,C,H,W
        y = batch.labels.to(device, non_blocking=True)  # N
        n_views = x.shape[1] if x.ndim == 5 else 1
        with autocast or contextlib.nullcontext():
            logits = model(x.flatten(0, 1) if x.ndim == 5 else x)  # N*V,K
        probs = logits.float().softmax(dim=1).view(y.shape[0], n_views, -1).mean(dim=1)  # N,K
        log_probs = probs.clamp_min(1e-12).log()
        loss_sum += float(F.nll_loss(log_probs, y, reduction="sum"))
        c1, c5 = topk_correct(probs, y, (1, 5))
        correct1, correct5, n = correct1 + c1, correct5 + c5, n + y.shape[0]
        confusion += confusion_matrix(probs.argmax(dim=1), y, num_classes).cpu()
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
    }
