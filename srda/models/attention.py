"""The diagnosis-guided attention module: CBAM-style spatial attention (paper, Sec. II-C)."""

from __future__ import annotations

import torch
from torch import nn


class SpatialAttention(nn.Module):
    """Channel-wise mean and max, concatenated (2 channels), a k x k conv, a sigmoid.

    ``forward(x)`` returns the attention map of shape (N, 1, H, W) with values in (0, 1); the
    caller multiplies its features by it. The module is independent of the number of channels,
    so the SR network and the diagnosis network each hold one of the same structure with their
    own parameters. The conv has no bias, as in CBAM's spatial gate (98 parameters for k = 7).
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd to keep the size, got {kernel_size}")
        self.kernel_size = kernel_size
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))
