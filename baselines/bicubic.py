"""Bicubic: the no-training baseline, upsampling with the same MATLAB-style kernel as the LR."""

from __future__ import annotations

import torch

from srda.data.degrade import upscale
from srda.models.blocks import SRNetwork
from srda.registry import ArchSpec, register


@register("bicubic", ArchSpec(params_1ch=0))  # no settings, no training
class Bicubic(SRNetwork):
    """MATLAB-compatible bicubic upsampling (a = -0.5); it has no parameters to train."""

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return upscale(lr, self.scale)
