"""What a run prints: `log` (one line to stderr) and `progress` (a tqdm bar on stderr).

Both go to stderr so that stdout stays machine-readable (`--json`), and only the main process
of a data-parallel run speaks (engine/distributed.py): eight processes would print every line
eight times.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import torch
from tqdm import tqdm

from alexnet.engine import distributed


def main_process() -> bool:
    """Whether this is the process that speaks: the only one, or rank 0 under torchrun."""
    return not distributed.active() or torch.distributed.get_rank() == 0


def log(message: str) -> None:
    """One progress line on stderr, written above any progress bar; rank 0 alone speaks."""
    if main_process():
        tqdm.write(message, file=sys.stderr)


def progress(iterable: Iterable, desc: str, *, show: bool = True) -> tqdm:
    """A progress bar named `desc` over `iterable`: on a terminal only (tqdm's disable=None), in
    the main process, and not at all unless `show`."""
    quiet = None if show and main_process() else True
    return tqdm(iterable, desc=desc, leave=False, file=sys.stderr, disable=quiet, dynamic_ncols=True)
