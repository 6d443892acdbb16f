"""The SRDA super-resolution network and its ablations (paper, Sec. II-A and Table II).

Layout (paper size: 256 features, 32 blocks)::

    LR (N, C, h, w)
      -> head: deformable 3x3 conv C -> F (offsets from a plain 3x3 conv, zero-initialised)
               or a plain 3x3 conv (srda_base)
      -> attention: features * SpatialAttention(features)            (srda only)
      -> body: `blocks` x [conv3x3-ReLU-conv3x3, scaled by res_scale, + input], conv3x3,
               + global skip from the (attended) head features
      -> upsampler: pixel shuffle, x2 stages for 2/4/8 (conv F -> 4F, PixelShuffle(2)),
               one x3 stage for 3 (conv F -> 9F, PixelShuffle(3))
      -> tail: conv3x3 F -> C
    SR (N, C, s*h, s*w)

The output is the tail conv's output: no bicubic (or any other) skip from the input, as in the
paper, and no clamping (the caller clamps SR images it writes; training sees the raw output).
A part that a variant switches off is absent from the module, not multiplied by zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import DeformConv2d, deform_conv2d

from srda.models import SIZES, VARIANTS
from srda.models.attention import SpatialAttention
from srda.models.blocks import SRNetwork, conv3x3, pixel_shuffle_stages


def _ambient_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype ops run in here: autocast's when it is on for x's device, else x's own."""
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return x.dtype


class DeformableHead(nn.Module):
    """A 3x3 deformable conv (DCNv1) whose offsets come from a plain 3x3 conv on the input.

    The offset conv starts at zero (weights and bias), so at initialisation the head equals a
    plain 3x3 conv with the same weights. torchvision's deform_conv2d has no bf16 kernel on CPU,
    so both convs always run in float32, even inside autocast; the features are returned in the
    ambient dtype (autocast's, when it is on).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.offset = nn.Conv2d(
            in_channels, 2 * kernel_size * kernel_size, kernel_size, padding=pad
        )
        self.conv = DeformConv2d(in_channels, out_channels, kernel_size, padding=pad)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = _ambient_dtype(x)
        # float32 (float64 if the module was made double); weights cast too, so a module moved
        # to bf16/fp16 wholesale still runs (a cast of an fp32 parameter is a no-op).
        work = torch.float64 if self.conv.weight.dtype == torch.float64 else torch.float32
        off, conv = self.offset, self.conv
        with torch.autocast(device_type=x.device.type, enabled=False):
            xw = x.to(work)
            offsets = F.conv2d(xw, off.weight.to(work), off.bias.to(work), off.stride, off.padding)
            out = deform_conv2d(
                xw,
                offsets,
                conv.weight.to(work),
                conv.bias.to(work) if conv.bias is not None else None,
                stride=conv.stride,
                padding=conv.padding,
                dilation=conv.dilation,
            )
        return out.to(dtype)


class ResidualBlock(nn.Module):
    """conv3x3-ReLU-conv3x3 without batch norm; the branch is scaled by res_scale and added."""

    def __init__(self, features: int, res_scale: float = 0.1) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.body = nn.Sequential(
            conv3x3(features, features), nn.ReLU(inplace=True), conv3x3(features, features)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class SRNet(SRNetwork):
    """SRDA's SR network; ``deformable`` and ``attention`` switch the ablated parts on or off.
    Width and depth default to the paper's (``srda.models.SIZES["paper"]``)."""

    def __init__(
        self,
        scale: int = 4,
        channels: int = 1,
        features: int = 256,
        blocks: int = 32,
        res_scale: float = 0.1,
        deformable: bool = True,
        attention: bool = True,
    ) -> None:
        super().__init__(scale, channels)
        self.features, self.blocks, self.res_scale = features, blocks, res_scale
        self.deformable, self.has_attention = deformable, attention
        self.head = (DeformableHead if deformable else conv3x3)(channels, features)
        self.attention = SpatialAttention(7) if attention else None
        self.body = nn.Sequential(
            *[ResidualBlock(features, res_scale) for _ in range(blocks)],
            conv3x3(features, features),
        )
        self.upsample = pixel_shuffle_stages(features, scale)
        self.tail = conv3x3(features, channels)

    def forward_with_attention(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return (SR image, SR-side attention map (N, 1, h, w) at the LR size, or None)."""
        feat = self.head(lr)
        att = None
        if self.attention is not None:
            att = self.attention(feat)
            feat = feat * att
        feat = feat + self.body(feat)
        return self.tail(self.upsample(feat)), att

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.forward_with_attention(lr)[0]


def build_srnet(
    variant: str, scale: int = 4, channels: int = 1, size: str = "paper", **overrides
) -> SRNet:
    """The SR network of one variant (see ``srda.models.VARIANTS``) at a size preset.

    ``overrides`` (features, blocks, res_scale, even deformable/attention) win over the preset.
    """
    if variant not in VARIANTS:
        raise KeyError(f"unknown SRDA variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
    parts = VARIANTS[variant]
    kwargs = {
        **SIZES[size],
        "deformable": parts["deformable"],
        "attention": parts["attention"],
        **overrides,
    }
    return SRNet(scale=scale, channels=channels, **kwargs)
