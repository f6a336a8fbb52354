"""A locally connected layer: a convolution whose kernels are not shared across positions.

cuda-convnet's `type=local` layers (Krizhevsky's cuda-convnet, example-layers/
layers-conv-local-11pct.cfg, the CIFAR-10 net of the paper's section 3.3): every output position
has its own filterSize x filterSize x channels kernel and its own bias. torch has no such layer;
written here as unfold + one batched matrix product per position, which autograd differentiates.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LocallyConnected2d(nn.Module):
    """N,C,H,W -> N,out,H',W' with an unshared kernel (and bias) at each of the H' x W' positions."""

    def __init__(self, in_channels: int, out_channels: int, in_size: int, kernel_size: int, padding: int = 0) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.in_size = in_channels, out_channels, in_size
        self.kernel_size, self.padding = kernel_size, padding
        self.out_size = in_size + 2 * padding - kernel_size + 1
        positions, fan_in = self.out_size**2, in_channels * kernel_size**2
        self.weight = nn.Parameter(torch.empty(positions, fan_in, out_channels))  # L,C*k*k,out
        self.bias = nn.Parameter(torch.zeros(out_channels, self.out_size, self.out_size))  # out,H',W'
        nn.init.normal_(self.weight, std=1 / math.sqrt(fan_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        cols = F.unfold(x, self.kernel_size, padding=self.padding)  # N,C*k*k,L
        out = torch.bmm(cols.permute(2, 0, 1), self.weight)  # L,N,out
        out = out.permute(1, 2, 0).reshape(n, self.out_channels, self.out_size, self.out_size)  # N,out,H',W'
        return out + self.bias

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, padding={self.padding}, "
                f"positions={self.out_size}x{self.out_size}")
