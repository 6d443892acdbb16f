"""What the suite's SR networks share: their base class, the upsamplers and the padding.

Every registered network (SRDA's and the baselines') maps (N, channels, h, w) in [0, 1] to
(N, channels, scale*h, scale*w). :class:`SRNetwork` holds the two numbers that say so; the
scales an architecture builds are its registry spec's ``scales``, checked once by
``srda.registry.build``; what a layout cannot build, its upsampler refuses.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class SRNetwork(nn.Module):
    """Base of the suite's SR networks: keeps ``scale`` and ``channels`` (``srda.upscale`` reads
    them from a loaded model) and refuses values that are not positive integers.

    The settings a network was built with are kept in ``hparams`` by ``srda.registry.build``.
    """

    def __init__(self, scale: int, channels: int) -> None:
        super().__init__()
        for key, value in (("scale", scale), ("channels", channels)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(
                    f"{type(self).__name__}: {key} must be a positive integer, got {value!r}"
                )
        self.scale, self.channels = int(scale), int(channels)


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


def subpixel(
    features: int, channels: int, scale: int, conv: Callable[[int, int], nn.Module] = conv3x3
) -> nn.Sequential:
    """One-step sub-pixel upsampler for any integer scale: ``conv(features, channels * s * s)``
    (a 3x3 conv unless given), PixelShuffle(s)."""
    return nn.Sequential(conv(features, channels * scale * scale), nn.PixelShuffle(scale))


def pixel_shuffle_stages(
    features: int, scale: int, between: Callable[[], list[nn.Module]] | None = None
) -> nn.Sequential:
    """EDSR/RCAN's upsampler of ``features`` features: x2, x4, x8 as 1, 2, 3 stages of
    [conv3x3 F -> 4F, PixelShuffle(2)], with the layers ``between()`` makes (if given) between
    consecutive stages; x3 as one conv3x3 F -> 9F, PixelShuffle(3). Other scales are refused."""
    layers: list[nn.Module] = []
    if scale == 3:
        layers += [conv3x3(features, 9 * features), nn.PixelShuffle(3)]
    elif scale >= 2 and scale & (scale - 1) == 0:
        for stage in range(int(math.log2(scale))):
            if stage > 0 and between is not None:
                layers += between()
            layers += [conv3x3(features, 4 * features), nn.PixelShuffle(2)]
    else:
        raise ValueError(
            f"scale {scale} is not supported; pixel-shuffle stages build 2, 3, 4 or 8 "
            "(powers of 2 and 3)"
        )
    return nn.Sequential(*layers)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad bottom and right to a multiple: reflect where the sides allow it (a reflect pad must
    be shorter than its side), else replicate. A batch already a multiple is returned as is."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)
