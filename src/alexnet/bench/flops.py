"""Model FLOP utilisation's two halves: the FLOPs of one image's forward pass (counted on the
meta device), and the device's peak FLOP/s for a precision (NVIDIA's datasheets); and the
device's name, as the report gives it.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

# Dense (no sparsity) peak FLOP/s from NVIDIA's datasheets, first matching fragment of
# torch.cuda.get_device_name() wins. "fp32" runs use TF32 tensor cores for convolutions while
# torch.backends.cudnn.allow_tf32 is on (PyTorch's default), and AlexNet's FLOPs are 90%
# convolution, so their peak is the TF32 one then.
PEAK_FLOPS: dict[str, dict[str, float]] = {
    "H100 PCIe": {"bf16": 756e12, "fp16": 756e12, "tf32": 378e12, "fp32": 51e12},
    "H100": {"bf16": 989e12, "fp16": 989e12, "tf32": 494e12, "fp32": 67e12},  # SXM
    "H200": {"bf16": 989e12, "fp16": 989e12, "tf32": 494e12, "fp32": 67e12},  # the H100 SXM's compute
    "A100": {"bf16": 312e12, "fp16": 312e12, "tf32": 156e12, "fp32": 19.5e12},
}


def forward_flops(make: Callable[[], nn.Module], shape: Sequence[int]) -> int:
    """FLOPs of one forward pass of one C,H,W image, as torch.utils.flop_counter counts them
    (convolutions and matrix products, 2 per multiply-add). The net is built and run on the meta
    device: shapes only, no arithmetic, milliseconds even for VGG."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        net = make()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.empty(1, *shape, device="meta"))  # N=1,C,H,W
    return int(counter.get_total_flops())


def peak_flops(device: torch.device, precision: str, override_tflops: float = 0.0) -> float | None:
    """The device's peak FLOP/s for `precision`; None where unknown (CPUs, GPUs not in PEAK_FLOPS)."""
    if override_tflops > 0:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    table = next((t for fragment, t in PEAK_FLOPS.items() if fragment in name), None)
    if table is None:
        return None
    if precision == "fp32" and torch.backends.cudnn.allow_tf32:
        return table["tf32"]
    return table[precision]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
        name = found.group(1).strip() if found else platform.processor()
    except OSError:
        name = platform.processor()
    return f"{name or platform.machine()}, {torch.get_num_threads()} threads"
