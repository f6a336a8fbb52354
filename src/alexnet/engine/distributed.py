"""Data-parallel training across processes: `torchrun --nproc-per-node N -m alexnet train ...`.

torchrun starts one process per device and sets RANK, LOCAL_RANK and WORLD_SIZE (and, across
machines, the rendezvous); `init_world` joins them into one process group (NCCL on CUDA, gloo on
the CPU) and PyTorch's DistributedDataParallel averages the gradients after every backward.

How the pieces divide the work (engine/train.py and data/loader.py use these):
- `batch_size` stays the *global* batch, the number the learning rate goes with (the paper's
  128): each of the N processes takes batch_size / N images of every step. All processes draw
  the same (seed, epoch) order; the k-th global batch is order[k*B:(k+1)*B] and process r takes
  its r-th slice, so N processes step through exactly the batches one process would, and the
  averaged gradient is that of the whole batch. The last, incomplete global batch of an epoch
  is dropped so every process has the same number of equal steps (DDP needs each to join every
  gradient all-reduce).
- Every step the processes agree, in one small all-reduce, on the loss (its mean over the global
  batch, which is what is logged and checked for NaN) and on whether a signal asked to stop, so
  they all stop, or all skip, at the same step; and, in another, on whether any of them got a
  batch of unreadable images only, which they then all skip.
- Rank 0 alone writes: the run folder, the log, metrics, checkpoints and pictures.
- Validation is split the same way and its sums are added up across processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from alexnet.errors import UsageError


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process is the one that logs and writes."""
        return self.rank == 0


def launched() -> bool:
    """Whether torchrun (or another launcher setting WORLD_SIZE) started several processes."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_world(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group torchrun described; returns this process's World and its device.

    With CUDA each process gets the GPU numbered by its LOCAL_RANK. Without torchrun's
    variables this is a no-op: World() and `device` unchanged.
    """
    if not launched():
        return World(), device
    rank, size, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise UsageError(f"LOCAL_RANK {local} but this machine has {torch.cuda.device_count()} GPU(s): "
                             f"use --nproc-per-node {torch.cuda.device_count()} or fewer")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise UsageError(f"data-parallel training runs on cuda or cpu, not {device.type}")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(minutes=30))
    return World(rank, size, local), device


def close_world() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def sum_across(values: torch.Tensor) -> torch.Tensor:
    """`values` summed over all processes (itself with one process); on the CPU or the process's GPU."""
    if not active():
        return values
    # NCCL reduces CUDA tensors only; gloo, CPU tensors (it also takes CUDA ones, slower)
    on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    out = values.detach().to(on, copy=True)
    dist.all_reduce(out)
    return out.to(values.device)


def agree(loss: torch.Tensor, stop: bool) -> tuple[float, bool]:
    """(the loss averaged over all processes, whether any process was asked to stop).

    One all-reduce of two numbers per step; with one process, just the loss read off the device.
    """
    if not active():
        return float(loss.detach()), stop
    both = torch.stack([loss.detach().float(), torch.tensor(float(stop), device=loss.device)])
    total = sum_across(both)
    return float(total[0]) / dist.get_world_size(), bool(total[1] > 0)


def any_across(flag: bool, device: torch.device) -> bool:
    """Whether `flag` holds in any process (one small all-reduce; with one process, `flag`)."""
    if not active():
        return flag
    return bool(sum_across(torch.tensor(float(flag), device=device)) > 0)


def share(value: object, world: World) -> object:
    """Rank 0's `value` on every process (e.g. the run folder it chose)."""
    if not active():
        return value
    box = [value if world.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]
