"""Out-of-memory faults as one-line advice: which batch size failed and what to try instead.

A batch that does not fit raises `torch.OutOfMemoryError` on CUDA (and XPU), a RuntimeError
saying "MPS backend out of memory" on Apple GPUs, one saying "can't allocate memory" when torch's
CPU allocator fails, and MemoryError in NumPy (the from-scratch backend). Any of them inside
`explain_out_of_memory` becomes `OutOfMemory`, which the CLI prints on one line and exits 1.

The batch size is not halved automatically: the paper's learning rate goes with its batch of 128
(and the data order, the schedules and a resumed run all depend on it), so a silently smaller
batch would train a different recipe. The message says which batch size to try; the user decides.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import torch

from alexnet.errors import OutOfMemory

# substrings of the RuntimeError texts of allocators that have no exception type of their own
_OOM_TEXTS = ("out of memory", "can't allocate memory")


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(error, RuntimeError) and any(t in str(error).lower() for t in _OOM_TEXTS)


@contextlib.contextmanager
def explain_out_of_memory(batch_size: int, device: torch.device | str, *, doing: str = "training",
                          amp: bool | None = None) -> Iterator[None]:
    """Turn an out-of-memory error raised inside into OutOfMemory naming `batch_size` and a smaller one.

    `amp=False` adds the suggestion to try mixed precision (on GPUs, where it halves activations).
    """
    try:
        yield
    except (RuntimeError, MemoryError) as error:
        if not is_out_of_memory(error):
            raise
        device = torch.device(device)
        if device.type == "cuda":
            torch.cuda.empty_cache()  # give back what the failed batch held, for whoever runs next
        # "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't ..." -> from "DefaultCPU..."
        text = re.sub(r"^\[enforce fail[^\]]*\]\s*(err == 0\.\s*)?", "", " ".join(str(error).split()))
        first = text if len(text) <= 100 else text[:97] + "..."
        smaller = f"--batch-size {max(1, batch_size // 2)}" if batch_size > 1 else "a smaller model or --image-size"
        also = " or --amp" if amp is False and device.type != "cpu" else ""
        raise OutOfMemory(f"out of memory while {doing} on {device} with batch size {batch_size} ({first}); "
                          f"try {smaller}{also}") from None
