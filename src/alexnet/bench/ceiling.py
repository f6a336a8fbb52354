"""The device's own ceiling, measured: the FLOP/s of one large square matrix product in a
precision, timed in the same run as the model, so MFU is a measured ratio on devices without a
datasheet peak (CPUs) too.

Why a matmul: it is the best case of the kernels a convnet runs (oneDNN and cuBLAS reach their
highest throughput on large GEMMs; AlexNet's convolutions run as GEMM-like kernels, its fc layers
are GEMMs), so "MFU against the ceiling" says how much of what this device demonstrably computes
the model gets. Where the cores have AMX, bf16 products run several times faster than fp32 ones
(measured: BENCHMARKS.md, the section on the small-image path and the ceiling); a CPU without
native bf16 (AVX2 only) runs bf16 products emulated, slower than fp32, which is why `precision
auto` picks fp32 there.

The ceiling is the best of a few windows (the most the device was seen to do), not their median:
MFU against it is then a conservative figure.
"""

from __future__ import annotations

from typing import Any

import torch

from alexnet.bench.timing import timed

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# matrix side per device type: 4096 (137 GFLOP a product) keeps a CPU busy for a sizeable part
# of a second; a GPU needs 8192 to fill its SMs for long enough to time
SIDE = {"cpu": 4096, "cuda": 8192}
WINDOW_S = 0.25  # each timed window lasts at least this long (products repeated)


def matmul_ceiling(device: torch.device, precision: str, *, side: int = 0, windows: int = 3) -> dict[str, Any]:
    """FLOP/s of a side x side matmul in `precision` on `device`: {"tflops_per_s" (the best
    window), "windows" (each), "side", "precision"}.

    fp32 on CUDA is timed with TF32 allowed for the product when cuDNN's convolutions may use it
    (PyTorch's default), as `peak_flops` takes the TF32 peak then.
    """
    side = side or SIDE.get(device.type, 4096)
    tf32 = device.type == "cuda" and precision == "fp32" and torch.backends.cudnn.allow_tf32
    was = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = tf32 or was
        rates = _rates(device, DTYPES[precision], side, windows)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = was
        if device.type == "cuda":  # the two matrices' memory back, before the model is measured
            torch.cuda.empty_cache()
    return {"tflops_per_s": max(rates), "windows": rates, "side": side, "precision": precision}


def _rates(device: torch.device, dtype: torch.dtype, side: int, windows: int) -> list[float]:
    """TFLOP/s of each of `windows` windows of repeated side x side products."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(side, side, generator=g).to(device=device, dtype=dtype)  # side,side
    b = torch.randn(side, side, generator=g).to(device=device, dtype=dtype)
    flops = 2 * side**3  # one multiply and one add per term of each of side^2 outputs
    rates = []
    with torch.inference_mode():
        first, _ = timed(device, lambda: (torch.mm(a, b), 1)[1])  # warm-up: kernel choice, page faults
        repeats = max(1, min(1000, int(WINDOW_S / max(first, 1e-6))))
        for _ in range(windows):
            seconds, n = timed(device, lambda: sum((torch.mm(a, b), 1)[1] for _ in range(repeats)))
            rates.append(n * flops / seconds / 1e12)
    return rates
