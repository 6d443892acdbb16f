"""SRD: the SR branch (MRC-Net) of "Super-resolution Enhanced Medical Image Diagnosis with
Sample Affinity Interaction".

Paper: Zhen Chen, Xiaoqing Guo, Peter Y. M. Woo, Yixuan Yuan, IEEE Transactions on Medical
Imaging 40(5):1377-1389, 2021. SRD couples an SR network, the Multi-scale Refined Context
Network (MRC-Net), with a two-branch diagnosis network (Sample Affinity Interaction blocks);
only the SR network is this baseline. Written from the paper's description; widths, kernel
sizes and block counts were read (facts only) from the authors' code,
github.com/franciszchen/SRD-SAI (``models/mrcnet.py``).

MRC-Net as built (``paper`` size: the deployed, distilled MRC-Net at x4, the paper's scale)::

    LR (N, C, h, w)
    head        conv3x3 C -> 64, PReLU, ResBlock(64), conv3x3 64 -> 32, PReLU, ResBlock(32)
    context     temporal-context cell (a conv-LSTM step): z = [head features, y] (y = 0 at the
                first step), conv1x1 64 -> 32, PReLU, ResBlock(32), conv3x3 32 -> 32, PReLU;
                gates i, f, o (sigmoid) and g (tanh) from one conv3x3 32 -> 4x32;
                c = f * c + i * g (c = 0 at the first step), h = o * tanh(c)
    MRC module  y = MRC(h) + h, MRC = a full- and a half-resolution stream, 3 stages of
                [4 ResBlocks per stream, Refined Context Fusion (RCF) both ways, LeakyReLU(0.1)]
                (the last stage returns the full-resolution stream)
    upsampler   x4: conv3x3 32 -> 128, PixelShuffle(2), conv3x3-PReLU, ResBlock(32),
                conv3x3-PReLU, conv3x3 32 -> 128, PixelShuffle(2)
    tail        conv3x3 32 -> 32, PReLU, conv1x1, PReLU, conv3x3 32 -> C,
                + nearest-neighbour upsampling of the LR input
    SR (N, C, 4h, 4w)

ResBlocks here have no conv biases (as released); RCF, the dual-stream module, the upsampler and
the tail are the blocks of SWD-Net by the same authors (imported from ``baselines.swd``; see
its docstring). The paper's training: a recursive MRC-Net (the context cell and MRC module
looped ``recursions`` = 3 times, carrying y and c) is trained first and distilled into the
one-pass MRC-Net (the same layers, one step), which is the network used for diagnosis.

Scales: x4 is the paper's. x2 is one pixel-shuffle stage, x8 three x2 stages with the
refinement block between consecutive stages, x3 one conv3x3 32 -> 288 and PixelShuffle(3); the
nearest skip uses the same factor. Odd LR sizes: the half-resolution stream has ceil(h/2) rows
and its x2 upsampling is cropped back before fusion.

Deviations (docs/baselines/srd.md):
- Recursion distillation is not run: the shared trainer trains the one-pass MRC-Net directly
  with a pixel loss. ``recursions=3`` builds the recursive teacher (same parameters).
- RCF adds its context term to the output, as the paper describes; the released code computes
  it and then discards it. Unused modules of the released code (an RCF in the last fusion
  stage) are not built. The four gate convs are one conv with 4x the outputs (same parameters).
- No RGB mean shift exists in MRC-Net, so none is removed; inputs are images in [0, 1].
- The diagnosis network and the SAI blocks are not part of this baseline.

Parameters: no parameter count for MRC-Net is reported in the sources available to us (the
official README gives none), so the spec has no ``paper_params``; our paper-size count at x4
is 787,592 with 3 channels and ``params_1ch`` = 785,862 with 1, the difference only through
the first conv's inputs and the last conv's outputs; no mean shift exists to remove.
"""

from __future__ import annotations

import torch
from torch import nn

from baselines.swd import (
    DUAL_STREAM_SIZES,
    DualStreamModule,
    ResBlock,
    SRTail,
    conv_prelu,
    feature_head,
    refined_upsampler,
)
from srda.models.blocks import SRNetwork
from srda.registry import ArchSpec, per_size, register

SPEC = ArchSpec(
    # (tiny, small, paper); SWD-Net's backbone sizes, with feats 32 at every size but tiny
    sizes=per_size(**DUAL_STREAM_SIZES, feats=(8, 32, 32), recursions=(1, 1, 1)),
    paper_params_source="not reported (the official README gives none)",
    params_1ch=785_862,
    train={"loss": "l1"},
)


class ContextCell(nn.Module):
    """One step of MRC-Net's temporal context (a convolutional LSTM step)."""

    def __init__(self, feats: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_prelu(2 * feats, feats, 1), ResBlock(feats, bias=False), conv_prelu(feats, feats)
        )
        self.gates = nn.Conv2d(feats, 4 * feats, 3, padding=1)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        i, f, g, o = self.gates(self.features(torch.cat([x, y], dim=1))).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


@register("srd", SPEC)
class MRCNet(SRNetwork):
    """MRC-Net; ``recursions=1`` is the deployed (distilled) network, >1 the recursive one."""

    def __init__(
        self,
        scale: int,
        channels: int,
        head: int,
        feats: int,
        stages: int,
        blocks: int,
        recursions: int,
    ) -> None:
        super().__init__(scale, channels)
        if recursions < 1:
            raise ValueError(f"recursions={recursions} must be >= 1")
        self.recursions = recursions
        self.head = feature_head(channels, head, feats, bias=False)
        self.cell = ContextCell(feats)
        self.mrc = DualStreamModule(feats, stages, blocks, bias=False)
        self.upsample = refined_upsampler(feats, scale, bias=False)
        self.tail = SRTail(feats, channels, scale)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        x = self.head(lr)
        y = x.new_zeros(x.shape)
        c = x.new_zeros(x.shape)
        for _ in range(self.recursions):
            h, c = self.cell(x, y, c)
            y = self.mrc(h) + h
        return self.tail(self.upsample(y), lr)
