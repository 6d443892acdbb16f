"""ELAN: efficient long-range attention network for image super-resolution.

Paper: Xindong Zhang, Hui Zeng, Shi Guo and Lei Zhang, "Efficient Long-Range Attention Network
for Image Super-Resolution", ECCV 2022 (SRDA's reference [23]). Written here from the paper;
widths, depths and window sizes were checked against the authors' released configurations
(github.com/xindongzhang/ELAN, ``configs/elan_x4.yml`` and ``configs/elan_light_x4.yml``).

Layout (``features`` C, ``blocks`` ELABs, ``shared_depth`` k, ``expansion`` r, windows W)::

    LR (N, ch, h, w)
      pad bottom/right to a multiple of lcm(W) (reflect; replicate if the image is too small)
      head: conv3x3 ch -> C                                                          -> f
      body: `blocks` x ELAB; ELAB i (0-based) uses shifted windows when i is odd:
              repeat 1 + k times (attention computed in the first, re-used by the k others):
                x = x + LFE(x)      LFE = shift-conv C -> rC, ReLU, shift-conv rC -> C
                x = x + GMSA(x)
      res = body(f) + f
      tail: conv3x3 C -> ch*s*s, PixelShuffle(s); crop to (s*h, s*w)
    SR (N, ch, s*h, s*w)

* shift-conv: the input channels are split in five groups, four moved by one pixel (left,
  right, up, down; zero fill) and one kept, followed by a 1x1 conv. The shift is a fixed
  depthwise kernel held as a buffer, not a parameter (the official code keeps it as a frozen
  parameter; the paper's parameter counts do not include it).
* GMSA (group-wise multi-scale self-attention, in its accelerated "ASA" form): 1x1 conv
  C -> 2C and BatchNorm, split into three equal groups, one per window size W = (4, 8, 16);
  in each group the first half of the channels is both query and key and the second half the
  value; softmax(Q Q^T) V inside non-overlapping W x W windows (no 1/sqrt(d) scale, no
  relative position bias, as the paper's ASA); shifted blocks roll the map by -W/2 before and
  +W/2 after (a cyclic shift without mask, as the authors' code). A GMSA that re-uses the
  attention of the first one projects C -> C (values only). Then a 1x1 conv C -> C.

Variants (x4, 3 channels; ``variant=`` picks the one ``size="paper"`` builds)::

    variant  C    blocks  shared_depth  windows      params (3 ch, x4)
    full     180  36      0             4, 8, 16     8,312,448   <- ``paper`` (default)
    light    60   12      1             4, 8, 16       601,488

(The official configs count "m_elan" LFE+GMSA pairs: 36 and 24 = blocks * (1 + shared_depth).)

Which ELAN did SRDA run? Its text cites ELAN [23] without a variant and says it ran "the codes
released by the authors with the hyper-parameter setting suggested in the corresponding
literature"; the released code ships both configurations and the ELAN paper reports both. No
fact points to ELAN-light (SRDA's low ELAN scores do not either: SWD and SRD score as low), so
the ``paper`` size is the full ELAN, the model the ELAN paper names "ELAN"; ``variant="light"``
builds ELAN-light. The spec's ``paper_params`` is the full ELAN's published x4 figure, 8312K.
With one channel in and out (``params_1ch``) only the head (ch -> C) and the tail (C -> ch*16)
shrink; the DIV2K mean shift of the original is parameter-free.

Deviations from the authors' code:

* No RGB mean shift (a 1-channel medical slice has no DIV2K mean); inputs stay in [0, 1]
  instead of [0, 255]. The BatchNorm in every GMSA makes the attention indifferent to the scale.
* Odd and non-multiple inputs are padded to a multiple of lcm(W) = 16 and the output cropped
  back, as in the authors' code, but with replicate padding when the image is smaller than
  the pad (reflect padding cannot pad past the image's own size).
* The upsampler is one conv + PixelShuffle(s) for any integer scale (as the paper), so x2, x3,
  x4 and x8 all work (x8 beyond what the paper evaluated).
* ``variant`` only changes what ``size="paper"`` builds; ``tiny`` and ``small`` are fixed reduced
  configurations (so a method entry that names a variant still runs in the smoke preset).
* When no attention is shared (full ELAN), the window attention runs through
  ``scaled_dot_product_attention`` (same maths, scale 1, fused kernel); with sharing the
  attention matrix is formed explicitly so that later GMSAs can re-use it.

Training (ELAN paper and released configs): L1 loss, Adam lr 2e-4, multiplied by 0.5 at epochs
250, 400, 450, 475 and 500 of the 1000 configured (each epoch DIV2K repeated 80 times), batch 32
with 192 HR patches (full) / batch 64 with 256 (light). The spec's ``train`` carries loss, lr and a
step schedule (the suite's step schedule halves once at half the run; set
``schedule_milestones`` to 25, 40, 45, 47.5 and 50% of the steps for the released decays).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from srda.models.blocks import SRNetwork, conv3x3, pad_to_multiple, subpixel
from srda.registry import ArchSpec, register

#: The published ELANs (x4, the table above).
VARIANTS = {
    "full": {"features": 180, "blocks": 36, "shared_depth": 0},
    "light": {"features": 60, "blocks": 12, "shared_depth": 1},
}

SPEC = ArchSpec(
    # every size keeps the constructor's expansion 2 and windows (4, 8, 16); the reduced sizes
    # are ELAN-light with fewer blocks (tiny also narrower: 15 features, 5 per window group)
    sizes={
        "tiny": {**VARIANTS["light"], "features": 15, "blocks": 2},
        "small": {**VARIANTS["light"], "blocks": 4},
    },
    variants=VARIANTS,
    extra_overrides=("expansion", "window_sizes"),
    paper_variant="full",
    paper_params=8_312_000,
    paper_params_source="Zhang et al., ECCV 2022, classical-SR comparison (x4): ELAN 8312K",
    params_1ch=8_257_336,
    train={"loss": "l1", "lr": 2e-4, "schedule": "step"},
)


class ShiftConv(nn.Module):
    """Shift five channel groups (left, right, up, down, none; zero fill), then a 1x1 conv.

    The shift is a depthwise 3x3 conv with a fixed one-hot kernel kept as a non-persistent
    buffer: no parameters, nothing in the state dict, and on the CPU it is several times faster
    than slicing and concatenating the shifted groups.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        g = in_channels // 5
        kernel = torch.zeros(in_channels, 1, 3, 3)
        kernel[0:g, 0, 1, 2] = 1.0  # out(i, j) = x(i, j + 1)
        kernel[g : 2 * g, 0, 1, 0] = 1.0  # out(i, j) = x(i, j - 1)
        kernel[2 * g : 3 * g, 0, 2, 1] = 1.0  # out(i, j) = x(i + 1, j)
        kernel[3 * g : 4 * g, 0, 0, 1] = 1.0  # out(i, j) = x(i - 1, j)
        kernel[4 * g :, 0, 1, 1] = 1.0  # unchanged
        self.register_buffer("kernel", kernel, persistent=False)
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def shift(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel.to(x.dtype), padding=1, groups=x.shape[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.shift(x))


class LFE(nn.Module):
    """Local feature extraction: shift-conv C -> rC, ReLU, shift-conv rC -> C."""

    def __init__(self, channels: int, expansion: int = 2) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ShiftConv(channels, channels * expansion),
            nn.ReLU(inplace=True),
            ShiftConv(channels * expansion, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _to_windows(x: torch.Tensor, size: int) -> torch.Tensor:
    """(b, c, H, W) -> (b * H/size * W/size, size*size, c)."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // size, size, w // size, size).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b * (h // size) * (w // size), size * size, c)


def _from_windows(y: torch.Tensor, size: int, b: int, h: int, w: int) -> torch.Tensor:
    """Inverse of ``_to_windows``."""
    c = y.shape[-1]
    y = y.reshape(b, h // size, w // size, size, size, c).permute(0, 5, 1, 3, 2, 4)
    return y.reshape(b, c, h, w)


class GMSA(nn.Module):
    """Group-wise multi-scale self-attention (ASA form: Q = K, BatchNorm'd 1x1 embedding).

    With ``compute_attention`` the module forms its own attention (and returns the maps when
    ``keep_attention``); otherwise it applies the maps it is given to its values.
    """

    def __init__(
        self,
        channels: int,
        window_sizes: Sequence[int],
        shift: bool,
        compute_attention: bool = True,
        keep_attention: bool = False,
    ) -> None:
        super().__init__()
        groups = len(window_sizes)
        if channels % groups:
            raise ValueError(f"ELAN: features={channels} must divide into {groups} window groups")
        self.window_sizes = tuple(int(s) for s in window_sizes)
        self.shift = shift
        self.compute_attention = compute_attention
        self.keep_attention = keep_attention
        width = 2 * channels if compute_attention else channels
        self.split = [width // groups] * groups
        self.project_in = nn.Sequential(nn.Conv2d(channels, width, 1), nn.BatchNorm2d(width))
        self.project_out = nn.Conv2d(channels, channels, 1)

    def forward(
        self, x: torch.Tensor, attention: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        b, _, h, w = x.shape
        parts = torch.split(self.project_in(x), self.split, dim=1)
        outs, maps = [], []
        for i, (part, size) in enumerate(zip(parts, self.window_sizes, strict=True)):
            if self.shift:
                part = torch.roll(part, shifts=(-(size // 2), -(size // 2)), dims=(2, 3))
            tokens = _to_windows(part, size)
            if self.compute_attention:
                q, v = tokens.chunk(2, dim=-1)
                if self.keep_attention:
                    atn = torch.softmax(q @ q.transpose(-2, -1), dim=-1)
                    maps.append(atn)
                    y = atn @ v
                else:
                    y = F.scaled_dot_product_attention(q, q, v, scale=1.0)
            else:
                if attention is None:
                    raise ValueError("ELAN: a sharing GMSA needs the first GMSA's attention")
                y = attention[i] @ tokens
            y = _from_windows(y, size, b, h, w)
            if self.shift:
                y = torch.roll(y, shifts=(size // 2, size // 2), dims=(2, 3))
            outs.append(y)
        out = self.project_out(torch.cat(outs, dim=1))
        return out, (maps if self.compute_attention else attention)


class ELAB(nn.Module):
    """Efficient long-range attention block: (1 + shared_depth) x [LFE, GMSA], residual each;
    the first GMSA computes the attention, the others re-use it."""

    def __init__(
        self,
        channels: int,
        expansion: int,
        window_sizes: Sequence[int],
        shift: bool,
        shared_depth: int = 0,
    ) -> None:
        super().__init__()
        self.lfe = nn.ModuleList(LFE(channels, expansion) for _ in range(1 + shared_depth))
        self.gmsa = nn.ModuleList(
            GMSA(
                channels,
                window_sizes,
                shift,
                compute_attention=(i == 0),
                keep_attention=(i == 0 and shared_depth > 0),
            )
            for i in range(1 + shared_depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attention = None
        for lfe, gmsa in zip(self.lfe, self.gmsa, strict=True):
            x = x + lfe(x)
            y, attention = gmsa(x, attention)
            x = x + y
        return x


@register("elan", SPEC)
class ELAN(SRNetwork):
    """ELAN network; maps (N, ch, h, w) to (N, ch, s*h, s*w). Any input size works: the input
    is padded to a multiple of the windows' least common multiple and the output cropped
    back."""

    def __init__(
        self,
        scale: int,
        channels: int,
        features: int,
        blocks: int,
        shared_depth: int,
        expansion: int = 2,
        window_sizes: Sequence[int] = (4, 8, 16),
    ) -> None:
        super().__init__(scale, channels)
        if min(features, blocks, expansion) < 1 or shared_depth < 0:
            raise ValueError(
                "ELAN: features, blocks, expansion must be >= 1 and shared_depth >= 0, "
                f"got {features}, {blocks}, {expansion}, {shared_depth}"
            )
        window_sizes = tuple(int(s) for s in window_sizes)
        if not window_sizes or min(window_sizes) < 1:
            raise ValueError(f"ELAN: window_sizes must be positive, got {window_sizes!r}")
        self.multiple = math.lcm(*window_sizes)
        self.head = conv3x3(channels, features)
        self.body = nn.Sequential(
            *(
                ELAB(
                    features, expansion, window_sizes, shift=(i % 2 == 1), shared_depth=shared_depth
                )
                for i in range(blocks)
            )
        )
        self.tail = subpixel(features, channels, self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        f = self.head(pad_to_multiple(x, self.multiple))
        out = self.tail(self.body(f) + f)
        return out[..., : h * self.scale, : w * self.scale]
