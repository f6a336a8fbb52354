"""Checkpoints: plain dicts that rebuild their model with nothing else, written atomically.

A checkpoint holds the model's builder name and arguments, its state_dict (the unwrapped,
uncompiled model), the class names, the input size and normalisation the model was trained
with, and for training checkpoints the optimizer, scheduler, epoch and config. Everything in it
is a tensor, a number, a string, or a list/dict of those, so it loads with
`torch.load(weights_only=True)`: loading a checkpoint never runs code from the file.

A run folder whose preferred checkpoint is damaged (truncated, not a torch file) falls back to
its other one with a warning on stderr: `--resume RUN` continues from best.pt when last.pt is bad.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from alexnet.atomic import atomic_path
from alexnet.errors import UsageError
from alexnet.models import build_model

FORMAT = "alexnet-checkpoint"
VERSION = 1


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside torch.compile / DataParallel / DDP wrappers."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write `state` to `path` atomically: a temporary file in the same folder, fsync, rename.

    A crash mid-write leaves the previous file at `path` intact. An OSError (disk full, quota,
    permissions) becomes a one-line UsageError saying so.
    """
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)
    except OSError as e:
        raise UsageError(f"cannot write checkpoint {path}: {e.strerror or e}; {_kept(path)}") from e


def _kept(path: Path) -> str:
    return f"the previous {path.name} is intact" if path.exists() else "no file was written"


def find_checkpoint(path: str | Path, prefer: str = "best") -> Path:
    """A checkpoint file, or the `best.pt` (else `last.pt`) of a run folder."""
    p = Path(path)
    if p.is_dir():
        order = ("best.pt", "last.pt") if prefer == "best" else ("last.pt", "best.pt")
        for name in order:
            if (p / name).is_file():
                return p / name
        raise UsageError(f"no checkpoint (best.pt or last.pt) in run folder {p}")
    if not p.is_file():
        raise UsageError(f"checkpoint not found: {p}")
    return p


_warned: set[str] = set()  # damaged files already reported (the CLI and fit both load a --resume folder)


def load_checkpoint(path: str | Path, prefer: str = "best") -> dict[str, Any]:
    """Load a checkpoint file or run folder safely (weights_only) onto the CPU.

    For a run folder whose preferred file (`prefer`.pt) does not load, the other one is used,
    with a warning naming the bad file; a single file that does not load is a UsageError.
    """
    p = Path(path)
    if not p.is_dir():
        return _load_file(find_checkpoint(p, prefer))
    order = ("best.pt", "last.pt") if prefer == "best" else ("last.pt", "best.pt")
    files = [p / name for name in order if (p / name).is_file()]
    if not files:
        raise UsageError(f"no checkpoint (best.pt or last.pt) in run folder {p}")
    try:
        return _load_file(files[0])
    except UsageError as e:
        if len(files) == 1:
            raise
        ckpt = _load_file(files[1])  # both bad: this one's error names it
        if str(files[0]) not in _warned:
            _warned.add(str(files[0]))
            print(f"warning: {e}; using {files[1]} (epoch {ckpt.get('epoch', '?')}) instead", file=sys.stderr)
        return ckpt


def _load_file(file: Path) -> dict[str, Any]:
    try:
        ckpt = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated file, not a torch file, or a pickle that wants to run code
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"cannot load checkpoint {file}: {first}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UsageError(f"{file} is not an alexnet checkpoint")
    ckpt["path"] = str(file)
    return ckpt


# How a checkpoint's net wants its inputs: side, statistics, preparation (data/transforms.py)
PREP_KEYS = ("input_size", "mean", "std", "augment", "input_norm", "mean_image", "pca")


def model_from_checkpoint(ckpt: dict[str, Any]) -> nn.Module:
    """Rebuild the model a checkpoint was saved from and load its weights.

    The model carries what classifying with it needs beside the weights: `model.classes` (the
    class names) and `model.prep` (the checkpoint's PREP_KEYS: input size, statistics, mean
    image), so `alexnet.predict(images, model)`, eval, viz and export prepare its inputs as its
    training did. A model without them (from `build_model`) is refused there, never guessed.
    """
    model = build_model(ckpt["model_name"], **ckpt["model_args"])
    check_state(model, ckpt["model"], ckpt.get("path", "checkpoint"))
    model.load_state_dict(ckpt["model"])
    model.classes = list(ckpt["classes"])
    model.prep = {key: ckpt.get(key) for key in PREP_KEYS}
    return model


def check_state(net: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Raise a one-line UsageError naming the first tensor of `state` that does not fit `net`."""
    expected = net.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise UsageError(f"{source} does not fit {net.arch}: tensor {key!r} {tuple(tensor.shape)} is missing")
        got = state[key]
        if not isinstance(got, torch.Tensor):
            raise UsageError(f"{source} does not fit {net.arch}: {key!r} is not a tensor")
        if tuple(got.shape) != tuple(tensor.shape):
            raise UsageError(f"{source} does not fit {net.arch}: tensor {key!r} has shape {tuple(got.shape)}, "
                             f"the model wants {tuple(tensor.shape)}")
    for key in state:
        if key not in expected:
            raise UsageError(f"{source} does not fit {net.arch}: unexpected tensor {key!r}")


def model_state(model: nn.Module) -> dict[str, Any]:
    """The part of a checkpoint that describes the model (what predict and eval need)."""
    plain = unwrap(model)
    return {
        "model_name": plain.arch,
        "model_args": dict(plain.arch_kwargs),
        "model": plain.state_dict(),
    }
