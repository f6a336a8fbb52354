"""Checkpoints: plain dicts that rebuild their model with nothing else, written atomically.

A checkpoint holds the model's builder name and arguments, its state_dict (the unwrapped,
uncompiled model), the class names, the input size and normalisation the model was trained
with, and for training checkpoints the optimizer, scheduler, epoch and config. Everything in it
is a tensor, a number, a string, or a list/dict of those, so it loads with
`torch.load(weights_only=True)`: loading a checkpoint never runs code from the file.

Nothing in a file is trusted: every loader (eval, predict, viz, export, --resume, the weights
files of inference/weights.py) passes the checkpoint through `check_checkpoint` first, which checks
its fields and tensors and `check_digest`, which recomputes the sha256 saved with them
(engine/checks.py).

A run folder whose preferred checkpoint is damaged (truncated, not a torch file, a field out of
range, a digest that does not match) falls back to its other one with a warning on stderr:
`--resume RUN` continues from best.pt when last.pt is bad.
"""

from __future__ import annotations

import random
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from alexnet.atomic import atomic_path
from alexnet.engine.checks import (
    FORMAT,
    NOT_DIGESTED,
    VERSION,
    check_checkpoint,
    check_digest,
    checkpoint_digest,
    is_count,
    tensor_digest,
)
from alexnet.errors import UsageError, printable
from alexnet.limits import WEIGHTS_FILE_BYTES, Refused, check_regular, check_torch_zip
from alexnet.models import build_model


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside torch.compile / DataParallel / DDP wrappers."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write `state` to `path` atomically: a temporary file in the same folder, fsync, rename.

    A crash mid-write leaves the previous file at `path` intact. A full disk (which torch's zip
    writer reports as a RuntimeError), a quota or a read-only folder is a one-line UsageError
    saying so and that the previous file is intact (atomic.py).
    """
    entries = {"format": FORMAT, "version": VERSION, **{k: v for k, v in state.items() if k not in NOT_DIGESTED}}
    entries["digest"] = checkpoint_digest(entries)
    with atomic_path(Path(path), what="checkpoint") as tmp:
        torch.save(entries, tmp)


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
            line = f"warning: {e}; using {files[1]} (epoch {ckpt.get('epoch', '?')}) instead"
            print(printable(line), file=sys.stderr)
        return ckpt


def _load_file(file: Path) -> dict[str, Any]:
    ckpt = torch_load(file, "checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UsageError(f"{file} is not an alexnet checkpoint")
    ckpt["path"] = str(file)
    check_checkpoint(ckpt, str(file))
    if is_count(ckpt.get("version")) and ckpt["version"] >= 2:
        if ckpt.get("digest") is None:  # every version 2 file is written with one
            raise UsageError(f"{file}: a version {ckpt['version']} checkpoint without its digest: the file is damaged")
        check_digest(ckpt.get("digest"), lambda: checkpoint_digest(ckpt, str(file)), str(file))
    else:  # written before the digest covered everything
        check_digest(ckpt.get("digest"), lambda: tensor_digest(ckpt["model"]), str(file))
    return ckpt


def torch_load(path: Path, what: str) -> Any:
    """torch.load(weights_only=True) onto the CPU, or a one-line UsageError `cannot load WHAT PATH: why`."""
    path = Path(path)
    try:
        check_regular(path, WEIGHTS_FILE_BYTES)  # opening a named pipe would wait for a writer for ever
        with path.open("rb") as f:
            head = f.read(8)
    except Refused as e:
        raise UsageError(f"cannot load {what} {path}: {e}") from None
    except OSError as e:
        raise UsageError(f"cannot load {what} {path}: {e.strerror or e}") from None
    # torch.save writes a zip archive (PK..); its legacy format, a pickle (protocol 2: 0x80 0x02).
    # Anything else gets a plain reason, not torch's "Unsupported operand 101" for a text file.
    if not head.startswith((b"PK\x03\x04", b"\x80\x02")):
        shown = "the file is empty" if not head else f"it starts with {head!r}"
        raise UsageError(f"cannot load {what} {path}: not a file torch.save wrote ({shown})")
    if head.startswith(b"PK"):
        try:
            check_torch_zip(path, WEIGHTS_FILE_BYTES)
        except Refused as e:
            raise UsageError(f"cannot load {what} {path}: {e}") from None
    try:
        with warnings.catch_warnings():  # torch's notes on sparse or typed storages in a damaged file
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated file, or a pickle that wants to run code
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UsageError(f"cannot load {what} {path}: {first[:160]}") from None


# How a checkpoint's net wants its inputs: side, statistics, preparation (data/transforms.py)
PREP_KEYS = ("input_size", "mean", "std", "augment", "translate", "input_norm", "mean_image", "pca")


def model_from_checkpoint(ckpt: dict[str, Any]) -> nn.Module:
    """Rebuild the model a checkpoint was saved from and load its weights.

    The model carries what classifying with it needs beside the weights: `model.classes` (the
    class names) and `model.prep` (the checkpoint's PREP_KEYS: input size, statistics, mean
    image), so `alexnet.predict(images, model)`, eval, viz and export prepare its inputs as its
    training did. A model without them (from `build_model`) is refused there, never guessed.
    """
    check_checkpoint(ckpt)  # before any memory is taken: sizes and tensors fit, on the meta device
    model = build_model(ckpt["model_name"], **ckpt["model_args"])
    model.load_state_dict(ckpt["model"])
    model.classes = list(ckpt["classes"])
    model.prep = {key: ckpt.get(key) for key in PREP_KEYS}
    return model


def model_state(model: nn.Module, *, weights: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """The part of a checkpoint that describes the model (what predict and eval need).
    `weights` replace the model's own state_dict: the NumPy backend's net, described by a torch
    model that holds no weights (built on the meta device)."""
    plain = unwrap(model)
    return {
        "model_name": plain.arch,
        "model_args": dict(plain.arch_kwargs),
        "model": plain.state_dict() if weights is None else weights,
    }


def rng_state() -> dict[str, Any]:
    """The global RNG states of torch (and CUDA), NumPy and `random`, as tensors, numbers and lists
    so that a checkpoint holding them still loads with torch.load(weights_only=True)."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": {"kind": str(np_kind), "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
                  "pos": int(np_pos), "has_gauss": int(np_has_gauss), "cached_gaussian": float(np_gauss)},
        "python": {"version": int(version), "state": [int(v) for v in internal], "gauss_next": gauss_next},
    }


def restore_rng(state: dict[str, Any] | None) -> None:
    """Put back the RNG states that rng_state() saved (checkpoints from before they were saved: no-op)."""
    if not state:
        return
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available():
        for i, s in enumerate(state.get("cuda") or []):
            if i < torch.cuda.device_count():
                torch.cuda.set_rng_state(s, i)
    n, p = state["numpy"], state["python"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
