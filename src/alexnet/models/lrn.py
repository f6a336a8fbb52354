"""Local response normalization across channels (Krizhevsky et al. 2012, section 3.3), made cheap.

    b_c = a_c / (k + alpha/n * sum_{c'=c-n//2}^{c+(n-1)//2} a_{c'}^2)^beta

with the window clipped at the first and last channel. This is exactly what
torch.nn.LocalResponseNorm computes (torch, like cuda-convnet's layer definitions, divides alpha
by n; the paper's equation does not write the 1/n). torch sums the window with avg_pool3d, whose
CPU kernels make LRN cost more than all the convolutions of a small net; here the window sum is
shifted adds (one product with a band matrix on the CPU in channels-last) and the backward pass
is written out, which is several times faster on a CPU and gives the same numbers (measured:
BENCHMARKS.md, "CPU: this project's machine"). LocalResponseNorm is a drop-in subclass of torch's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable
from torch.utils._python_dispatch import _get_current_dispatch_mode


def _window_sum(t: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """out[:, c] = sum of t[:, c-before : c+after+1], zero outside the channels. N,C,H,W -> N,C,H,W.

    On the CPU in channels-last, one product with a C x C band of ones: the channels are
    contiguous there, so oneDNN runs it at matmul speed, where shifted adds of strided slices are
    slow; in NCHW the adds are as fast, so NCHW keeps them
    (measured: BENCHMARKS.md, "the small-image path and the ceiling"). oneDNN accumulates the 0/1
    band in fp32: the sums are the adds' up to summation order (in bf16 rounded once). Elsewhere
    (GPUs) and under a dispatch mode (FlopCounterMode would count the product as FLOPs;
    torch.compile's fake tensors) the adds.
    """
    channels = t.shape[1]
    channels_last = t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()
    if (
        t.device.type == "cpu" and channels_last and not torch.compiler.is_compiling()
        and _get_current_dispatch_mode() is None
    ):
        c = torch.arange(channels)
        offset = c[:, None] - c[None, :]  # [input channel, output channel]: input - output
        band = ((offset >= -before) & (offset <= after)).to(t.dtype)  # C,C: 1 where the input is in the output's window
        return torch.einsum("nihw,io->nohw", t, band)
    padded = F.pad(t, (0, 0, 0, 0, before, after))  # N,C+before+after,H,W
    out = padded[:, 0:channels].clone()
    for i in range(1, before + after + 1):
        out += padded[:, i:i + channels]
    return out


class _LocalResponseNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, size: int, alpha: float, beta: float, k: float) -> torch.Tensor:
        before, after = size // 2, (size - 1) // 2
        denom = _window_sum(x * x, before, after).mul_(alpha / size).add_(k)  # N,C,H,W
        if beta == 0.75:  # the paper's beta: d^-0.75 = d^-0.5 * d^-0.25, two roots instead of pow's exp and log
            # pow was a large share of the bf16 training step; the roots agree with it to rounding (three
            # roundings instead of one) (measured: BENCHMARKS.md, "the small-image path and the ceiling")
            scale = denom.rsqrt()
            scale = scale.sqrt().mul_(scale)
        else:
            scale = denom.pow(-beta)
        ctx.save_for_backward(x, denom, scale)
        ctx.constants = (before, after, 2.0 * alpha * beta / size)
        return x * scale

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, denom, scale = ctx.saved_tensors
        before, after, c = ctx.constants
        # d b_j / d a_i = delta_ij * scale_j - c * a_j * a_i * scale_j / denom_j for i in window(j);
        # summing over j is a window sum with the window mirrored (before and after swapped).
        grad_scaled = grad * scale
        t = grad_scaled * x
        t /= denom
        s = _window_sum(t, after, before)
        s *= x
        return grad_scaled.sub_(s, alpha=c), None, None, None, None


class LocalResponseNorm(nn.LocalResponseNorm):
    """torch's LocalResponseNorm with a faster forward and backward for N,C,H,W inputs.

    `towers` > 1 normalises each tower's block of C/towers channels on its own: in the paper
    each GPU held half of the kernel maps (section 3.2), and the sum of section 3.3 ran over the
    "adjacent kernel maps" on the same GPU, so the window never crosses the tower boundary.

    Under CUDA autocast the input is computed in float32, as a^2 of a half-precision activation
    can overflow.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0, towers: int = 1) -> None:
        super().__init__(size, alpha, beta, k)
        self.towers = towers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] == 0:
            return super().forward(x)
        n, c, h, w = x.shape
        x = x.reshape(n * self.towers, c // self.towers, h, w)  # each tower's maps as a sample
        if torch.jit.is_tracing() or torch.jit.is_scripting():
            # TorchScript and the ONNX exporter cannot record a Python autograd.Function: export
            # torch's formula instead (same numbers; tested in tests/engine/test_export.py)
            y = super().forward(x)
        elif torch.is_autocast_enabled("cuda") and x.is_cuda:
            with torch.autocast("cuda", enabled=False):
                y = _LocalResponseNorm.apply(x.float(), self.size, self.alpha, self.beta, self.k).to(x.dtype)
        else:
            y = _LocalResponseNorm.apply(x, self.size, self.alpha, self.beta, self.k)
        return y.reshape(n, c, h, w)

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", towers={self.towers}" if self.towers > 1 else "")
