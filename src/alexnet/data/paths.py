"""Where datasets are looked for when a spec names no folder, and where caches are written.

Search roots, in order: ``$ALEXNET_DATA`` (if set), ``./data`` and ``../shared/datasets``
(both relative to the current directory). The cache folder (extracted archives, decoded
tensors, torchvision downloads) is ``$ALEXNET_CACHE``, else ``~/.cache/alexnet``.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_roots() -> list[Path]:
    """The folders searched, in order, for a dataset given without a folder."""
    roots = []
    if os.environ.get("ALEXNET_DATA"):
        roots.append(Path(os.environ["ALEXNET_DATA"]).expanduser())
    cwd = Path.cwd()
    roots += [cwd / "data", cwd.parent / "shared" / "datasets"]
    return roots


def cache_dir() -> Path:
    """The folder for caches and downloads (not created here)."""
    if os.environ.get("ALEXNET_CACHE"):
        return Path(os.environ["ALEXNET_CACHE"]).expanduser()
    return Path.home() / ".cache" / "alexnet"


def describe(places: list[Path]) -> str:
    """The searched places for a one-line error: the first, and how many more (a full list of a
    dozen paths buries the message; the search order is in this module's docstring)."""
    if len(places) <= 2:
        return ", ".join(str(p) for p in places) or "(nowhere)"
    return f"{places[0]} or {len(places) - 1} other places"
