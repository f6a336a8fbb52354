"""Timing runs: a `Runner` is one thing to time; `measure` builds, warms up and times runners,
and `summarise` turns a runner's windows into images/s and step time; peak memory while a run is
built and warmed up (CUDA's allocator, or the process's peak RSS on the CPU).

Timing: `warmup` steps, then `windows` windows of `steps` steps each; images/s per window, the
median reported with the min and max. The windows of ours and of the baselines take turns
(ours, baseline 1, baseline 2, ours, ...): on a machine shared with other jobs the load then
falls on all of them alike, and the ratios stay fair. CUDA windows are timed with CUDA events,
others with time.perf_counter after a device sync.
"""

from __future__ import annotations

import contextlib
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass
class Runner:
    """One thing to time: `step()` runs one step and returns the images it processed."""

    name: str
    step: Callable[[], int]
    precision: str  # fp32, bf16 or fp16: what its peak FLOP/s is looked up for
    flops_per_image: float | None  # FLOPs of one image's step (train: 3x forward), None for data
    info: dict[str, Any] = field(default_factory=dict)  # extra fields of its result (compile, workers, ...)
    close: Callable[[], None] = lambda: None  # frees what it holds (loader workers)


# -- memory ----------------------------------------------------------------------------------

_STATUS = Path("/proc/self/status")


def _rss_kib(key: str) -> int | None:
    """VmRSS / VmHWM of this process in KiB (Linux), else None."""
    try:
        found = re.search(rf"^{key}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(found.group(1)) if found else None


def memory_in_use(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device)
    rss = _rss_kib("VmRSS")
    return 0 if rss is None else rss * 1024


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    with contextlib.suppress(OSError):  # Linux >= 4.0: "5" resets the process's peak RSS (VmHWM)
        Path("/proc/self/clear_refs").write_text("5")


def peak_memory(device: torch.device, before: int) -> tuple[int, str]:
    """Peak memory since `reset_peak_memory`, less `before` (what was in use then), and what it measures."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) - before, "cuda_max_memory_allocated"
    hwm = _rss_kib("VmHWM")
    if hwm is not None and Path("/proc/self/clear_refs").exists():
        return hwm * 1024 - before, "cpu_peak_rss"
    import resource  # no /proc: the process's peak RSS since it started (KiB on Linux, bytes on macOS)

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return peak, "cpu_process_peak_rss"


MEMORY_KINDS = {
    "cuda_max_memory_allocated": "torch.cuda.max_memory_allocated while the run was built and warmed up, less what was "
                                 "allocated before",
    "cpu_peak_rss": "the process's peak RSS (VmHWM) while the run was built and warmed up, less the RSS before",
    "cpu_process_peak_rss": "the process's peak RSS since it started (resource.getrusage)",
}


# -- timing ----------------------------------------------------------------------------------

def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(device: torch.device, work: Callable[[], int]) -> tuple[float, int]:
    """Seconds `work` takes on `device` (CUDA events on a GPU, wall clock after a sync elsewhere), and
    what it returned."""
    synchronize(device)
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        n = work()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000, n
    t0 = time.perf_counter()
    n = work()
    synchronize(device)
    return time.perf_counter() - t0, n


def measure(factories: Sequence[Callable[[], Runner]], device: torch.device, *, warmup: int, windows: int, steps: int,
            interleave: bool = True, log: Callable[[str], None] = lambda m: None) -> dict[str, dict[str, Any]]:
    """Build, warm up and time each runner; per runner its images/s (median, min, max, every window),
    step time, first-step time (compilation included), and peak memory.

    Runners are built and warmed up one at a time, so the memory each adds can be told apart.
    With `interleave` their windows then take turns (fair under a varying load); without it each
    runner is timed to the end and closed before the next is built (data loaders).
    """
    runners: list[Runner] = []
    results: dict[str, dict[str, Any]] = {}

    def build(factory: Callable[[], Runner]) -> Runner:
        before = memory_in_use(device)
        reset_peak_memory(device)
        runner = factory()
        first, _ = timed(device, runner.step)
        for _ in range(max(warmup - 1, 0)):
            runner.step()
        synchronize(device)
        used, kind = peak_memory(device, before)
        results[runner.name] = {"first_step_s": first, "peak_memory_bytes": used, "memory_kind": kind, **runner.info}
        log(f"{runner.name}: built and warmed up ({warmup} steps, the first {first:.2f} s)")
        return runner

    def window(runner: Runner) -> None:
        seconds, images = timed(device, lambda: sum(runner.step() for _ in range(steps)))
        results[runner.name].setdefault("_windows", []).append((seconds, images))

    try:
        if interleave:
            runners = [build(f) for f in factories]
            for _ in range(windows):
                for runner in runners:
                    window(runner)
        else:
            for f in factories:
                runner = build(f)
                runners.append(runner)
                for _ in range(windows):
                    window(runner)
                runner.close()
    finally:
        for runner in runners:
            runner.close()
    for runner in runners:
        results[runner.name] = summarise(runner, results[runner.name], steps)
    return results


def summarise(runner: Runner, raw: dict[str, Any], steps: int) -> dict[str, Any]:
    """A runner's windows as images/s (median, min, max, each) and its median step time."""
    windows = raw.pop("_windows")
    rates = [images / seconds for seconds, images in windows]  # images/s per window
    median = statistics.median(rates)
    return {
        "images_per_s": median,
        "images_per_s_min": min(rates),
        "images_per_s_max": max(rates),
        "windows": rates,
        "step_ms": 1000 * statistics.median(seconds for seconds, _ in windows) / steps,
        "precision": runner.precision,
        "flops_per_image": runner.flops_per_image,
        "tflops_per_s": median * runner.flops_per_image / 1e12 if runner.flops_per_image else None,
        **raw,
    }
