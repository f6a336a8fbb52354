"""What a run prints: `log` (one line) and `progress` (a tqdm bar).

On a terminal both go to stderr so that stdout stays machine-readable (`--json`). In a Jupyter
kernel the lines go to stdout (stderr is drawn as an error there) and the bar is tqdm.auto's
widget (a text bar where ipywidgets is not installed). Only the main process of a data-parallel
run speaks (engine/distributed.py): eight processes would print every line eight times.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable
from typing import Any

import torch
from tqdm import tqdm

from alexnet.engine import distributed


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (IPython's kernel app is running)."""
    if "ipykernel" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def main_process() -> bool:
    """Whether this is the process that speaks: the only one, or rank 0 under torchrun."""
    return not distributed.active() or torch.distributed.get_rank() == 0


def log(message: str) -> None:
    """One progress line, written above any progress bar; rank 0 alone speaks."""
    if main_process():
        tqdm.write(message, file=sys.stdout if in_notebook() else sys.stderr)


def progress(iterable: Iterable, desc: str, *, show: bool = True) -> Any:
    """A progress bar named `desc` over `iterable`: on a terminal only (tqdm's disable=None) or
    in a notebook, in the main process, and not at all unless `show`."""
    if not (show and main_process()):
        return tqdm(iterable, disable=True)
    if in_notebook():
        if importlib.util.find_spec("ipywidgets") is not None:
            from tqdm.auto import tqdm as widget

            return widget(iterable, desc=desc, leave=False)
        return tqdm(iterable, desc=desc, leave=False, file=sys.stdout, dynamic_ncols=True)
    return tqdm(iterable, desc=desc, leave=False, file=sys.stderr, disable=None, dynamic_ncols=True)
