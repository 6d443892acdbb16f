"""IMDN: Lightweight Image Super-Resolution with Information Multi-distillation Network.

Zheng Hui, Xinbo Gao, Yunchu Yang, Xiumei Wang; ACM Multimedia (ACM MM) 2019. Written here
from the paper; layer widths, kernel sizes and the LeakyReLU slope were checked against the
authors' released code (Zheng222/IMDN), which was read for those facts only.

Layout (``paper`` size: 64 features, 6 IMDBs, the model of the paper's Table for x2/x3/x4)::

    LR (N, C, h, w)
    head      conv3x3 C -> F
    body      6 x IMDB, outputs of all blocks concatenated (6F channels),
              conv1x1 6F -> F + LeakyReLU(0.05), conv3x3 F -> F, + head features (global skip)
    upsample  conv3x3 F -> C * s^2, PixelShuffle(s)              (one step, any integer scale)
    SR (N, C, s*h, s*w)

    IMDB (information multi-distillation block, distillation rate 1/4: d = F/4, r = F - d):
      progressive refinement: conv3x3 F -> F, LReLU, split (d distilled | r refined)
                              conv3x3 r -> F, LReLU, split (d | r)
                              conv3x3 r -> F, LReLU, split (d | r)
                              conv3x3 r -> d
      the four d-channel parts concatenated (F channels) -> contrast-aware channel attention
      (CCA) -> conv1x1 F -> F, + block input
    CCA: per channel contrast = standard deviation + mean over the spatial positions,
         conv1x1 F -> F/16, ReLU, conv1x1 F/16 -> F, sigmoid; the features are scaled by it.

Parameter count: the paper's comparison table with lightweight SR methods ('Params' column,
RGB in and out) reports 715K at x4 (the spec's ``paper_params``; 694K at x2, 703K at x3); our
3-channel build has 715,176. ``params_1ch`` is smaller only because the first conv takes 1
channel instead of 3 and the upsampler emits 1 * 16 instead of 3 * 16 channels.

Deviations, and why:

* 1 channel in and out (grey MRI/PET slices); images in [0, 1]. IMDN's released model has no
  RGB mean shift; none is added here.
* CCA's standard deviation is ``sqrt(var + 1e-8)`` instead of ``sqrt(var)``: medical slices
  have large zero backgrounds, so a training patch can give an exactly constant feature map,
  whose sqrt(0) has an infinite derivative and turns the gradient into NaN. The epsilon changes
  the contrast of a constant channel from 0 to 1e-4 and nothing else measurably.
* Scales: the upsampler is one conv + PixelShuffle(s), as in the paper, so x2, x3, x4 and x8
  (and any other integer) work with no change of layout.
* The paper's adaptive cropping strategy (IMDN_AS, for arbitrary-size inputs on a GPU) is an
  inference-time tiling trick, not part of the network; it is not implemented (the network is
  fully convolutional and takes any size, odd ones included).

Training (paper, Sec. 4.1): L1 loss, Adam (beta1 0.9, beta2 0.999, eps 1e-8), initial learning
rate 2e-4 halved periodically (every 200 epochs of the released script). The spec's ``train``
carries loss, schedule and lr; steps, batch and patch come from the suite's preset.
"""

from __future__ import annotations

import torch
from torch import nn

from srda.models.blocks import SRNetwork, subpixel
from srda.registry import ArchSpec, register

LRELU_SLOPE = 0.05
CCA_REDUCTION = 16
DISTILLATION_RATE = 0.25
STD_EPS = 1e-8


SPEC = ArchSpec(
    sizes={
        "tiny": {"features": 16, "blocks": 2},
        "small": {"features": 48, "blocks": 6},
        "paper": {"features": 64, "blocks": 6},
    },
    paper_params=715_000,
    paper_params_source="Hui et al., ACM MM 2019, lightweight-SR comparison: 715K at x4 (RGB)",
    params_1ch=695_560,
    train={"loss": "l1", "schedule": "step", "lr": 2e-4},
)


def _conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2)


class ContrastChannelAttention(nn.Module):
    """CCA: channel weights from each channel's contrast (spatial std + spatial mean)."""

    def __init__(self, channels: int, reduction: int = CCA_REDUCTION) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.excite = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        var = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True)
        contrast = (var + STD_EPS).sqrt() + mean
        return x * self.excite(contrast)


class IMDB(nn.Module):
    """Information multi-distillation block: progressive refinement, CCA, 1x1 fusion, skip."""

    def __init__(self, features: int, rate: float = DISTILLATION_RATE) -> None:
        super().__init__()
        self.distilled = int(features * rate)
        self.remaining = features - self.distilled
        if self.distilled < 1:
            raise ValueError(f"IMDB needs features * {rate} >= 1, got features={features}")
        self.c1 = _conv(features, features, 3)
        self.c2 = _conv(self.remaining, features, 3)
        self.c3 = _conv(self.remaining, features, 3)
        self.c4 = _conv(self.remaining, self.distilled, 3)
        self.act = nn.LeakyReLU(LRELU_SLOPE, inplace=True)
        self.cca = ContrastChannelAttention(self.distilled * 4)
        self.fuse = _conv(self.distilled * 4, features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        split = (self.distilled, self.remaining)
        d1, r1 = torch.split(self.act(self.c1(x)), split, dim=1)
        d2, r2 = torch.split(self.act(self.c2(r1)), split, dim=1)
        d3, r3 = torch.split(self.act(self.c3(r2)), split, dim=1)
        d4 = self.c4(r3)
        distilled = torch.cat([d1, d2, d3, d4], dim=1)
        return self.fuse(self.cca(distilled)) + x


@register("imdn", SPEC)
class IMDN(SRNetwork):
    """IMDN: conv head, ``blocks`` IMDBs fused by 1x1 conv, conv, global skip, pixel shuffle."""

    def __init__(self, scale: int, channels: int, features: int, blocks: int) -> None:
        super().__init__(scale, channels)
        if features % 4:
            raise ValueError(
                f"IMDN needs features divisible by 4 (distillation 1/4), got {features}"
            )
        if blocks < 1:
            raise ValueError(f"IMDN needs at least one IMDB, got blocks={blocks}")
        self.head = _conv(channels, features, 3)
        self.body = nn.ModuleList(IMDB(features) for _ in range(blocks))
        self.fuse = nn.Sequential(
            _conv(features * blocks, features, 1), nn.LeakyReLU(LRELU_SLOPE, inplace=True)
        )
        self.body_tail = _conv(features, features, 3)
        self.upsample = subpixel(features, channels, self.scale)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        feat = self.head(lr)
        outs = []
        x = feat
        for block in self.body:
            x = block(x)
            outs.append(x)
        deep = self.body_tail(self.fuse(torch.cat(outs, dim=1))) + feat
        return self.upsample(deep)
