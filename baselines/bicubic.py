"""Bicubic: the no-training baseline, upsampling with the same MATLAB-style kernel as the LR."""

from __future__ import annotations

import torch
from torch import nn

from srda.data.degrade import upscale
from srda.registry import register


class Bicubic(nn.Module):
    """MATLAB-compatible bicubic upsampling (a = -0.5); it has no parameters to train."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return upscale(lr, self.scale)


@register("bicubic")
def build_bicubic(scale: int = 4, channels: int = 1, size: str = "paper") -> nn.Module:
    return Bicubic(scale)
