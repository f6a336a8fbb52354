"""Metrics: top-k accuracy, confusion matrices, running means, and the run's metric log.

The log is `metrics.jsonl` (one JSON object per epoch, appended, so a resumed run continues it)
and, when enabled, TensorBoard event files in `tb/` of the run folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from alexnet.atomic import atomic_path
from alexnet.errors import UsageError


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


class Mean:
    """A running mean weighted by counts (loss per image over a whole epoch)."""

    def __init__(self) -> None:
        self.total, self.count = 0.0, 0

    def add(self, value: float, n: int = 1) -> None:
        self.total += value * n
        self.count += n

    @property
    def value(self) -> float:
        return self.total / self.count if self.count else float("nan")


class MetricsLog:
    """Appends one JSON line per record to metrics.jsonl and mirrors scalars to TensorBoard.

    A run continued from a checkpoint of epoch `epoch` (step `step`) first drops the records
    written after that checkpoint: a run killed between logging an epoch and saving it, or
    resumed from an older best.pt, would otherwise list the redone epochs twice. TensorBoard is
    told the same with `purge_step`.
    """

    def __init__(self, run_dir: Path, tensorboard: bool = True, *, epoch: int = 0, step: int = 0) -> None:
        self.path = run_dir / "metrics.jsonl"
        kept = [r for r in read_metrics(run_dir) if int(r.get("epoch", 0)) <= epoch]
        if self.path.exists():
            with atomic_path(self.path) as tmp:
                Path(tmp).write_text("".join(json.dumps(r) + "\n" for r in kept))
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only when asked

            self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=step + 1)

    def write(self, record: dict[str, Any], step: int) -> None:
        try:  # appended, not atomic: a half-written last line is dropped by read_metrics
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as e:
            raise UsageError(f"cannot write {self.path}: {e.strerror or e}; the last checkpoint is intact") from None
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("epoch", "step"):
                    self.writer.add_scalar(key.replace("_", "/", 1), value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # the last line of a run killed mid-write: drop it
            continue
    return records
