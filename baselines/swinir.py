"""SwinIR: Image Restoration Using Swin Transformer.

Jingyun Liang, Jiezhang Cao, Guolei Sun, Kai Zhang, Luc Van Gool, Radu Timofte; ICCV
Workshops (AIM) 2021. The network is spandrel's implementation
(``spandrel.architectures.SwinIR.SwinIR``, weight-compatible with the authors' release), not a
re-implementation; this module only configures and wraps it.

Layout::

    LR (N, C, h, w) -> padded (reflect) to a multiple of the window
    shallow   conv3x3 C -> D
    deep      K x RSTB [L x Swin Transformer layer (LayerNorm, window self-attention with a
              relative position bias, shifted windows on every other layer, LayerNorm, MLP
              D -> mlp*D -> D, GELU), conv3x3, + RSTB input], LayerNorm, conv3x3,
              + shallow features
    upsample  "pixelshuffle" (classical): conv3x3 D -> 64, LeakyReLU, pixel-shuffle stages as
              RCAN's (x2/x4/x8: conv 64 -> 256 + PixelShuffle(2) per stage; x3: 64 -> 576,
              PixelShuffle(3)), conv3x3 64 -> C;
              "pixelshuffledirect" (lightweight): conv3x3 D -> C*s^2, PixelShuffle(s)
    SR cropped back to (N, C, s*h, s*w)

Variants (``variant=`` override; it wins over ``size``, other overrides win over both):

=============  ======  ===========  ===========  ======  ===  ==================  ========
variant/size   embed   depths       heads        window  mlp  upsampler           img_size
=============  ======  ===========  ===========  ======  ===  ==================  ========
classical      180     [6]*6        [6]*6        8       2    pixelshuffle        48
lightweight    60      [6]*4        [6]*4        8       2    pixelshuffledirect  64
small          48      [4, 4]       [4, 4]       6       2    pixelshuffledirect  48
tiny           16      [2, 2]       [2, 2]       4       2    pixelshuffledirect  16
=============  ======  ===========  ===========  ======  ===  ==================  ========

``paper`` size is the classical-SR x4 model (the one the paper compares with RCAN and the
other large CNNs). ``small`` is a narrowed, shallower lightweight model whose window is 6
instead of 8: the suite's quick and smoke presets train on 12x12 and 6x6 LR patches (HR 48 and
24 at x4), which a window of 8 would pad to 16x16 and 8x8 (1.8x the tokens; the step took
twice as long). ``img_size`` is the training-patch size the official models were built with;
it fixes no parameter (only the precomputed attention-mask buffers; other sizes compute their
mask on the fly). Stochastic depth 0.1 as the official default (``drop_path_rate`` override).

Parameter counts: the published figure for the classical x4 model is 11.9M (``PAPER_PARAMS``);
our 3-channel build has 11,900,199. ``PAPER_PARAMS_1CH`` is smaller only because the first
conv takes 1 channel instead of 3 and the last conv emits 1 instead of 3 (the mean shift has
no parameters). The lightweight x4 model is published as 897K, but the official code builds
929,628 parameters at x4 with 3 channels (spandrel agrees); the paper's figures for the
lightweight models are about 32K below what the released code builds at every scale, a known
discrepancy (SwinIR issue #45: 910.2K counted for x2 against 878K in the paper's Table).

Deviations, and why:

* Mean shift neutralised: spandrel's SwinIR subtracts the DIV2K RGB mean when it has 3
  channels and nothing (a zero mean) otherwise; our builds always use the zero mean (3-channel
  builds too, for parameter checks) and ``img_range = 1``, so the network sees [0, 1] as is.
* 1 channel in and out (grey MRI/PET slices).
* Padding: spandrel pads internally with reflect padding (bottom and right) to a multiple of
  the window and crops the output back, but torch's reflect padding needs the pad to be
  smaller than the side, which fails for sides below the window (e.g. 3x3 with window 8). The
  wrapper pads itself before calling spandrel, reflect when it can and replicate when the side
  is too short, and crops back to ``scale * (h, w)``; odd and non-multiple sizes all work.
* Scales: classical (pixelshuffle) supports 2, 3, 4, 8 as the paper; the pixelshuffledirect
  sizes (lightweight, small, tiny) support any integer scale.
* Under a "meta" default device (parameter counting) the network is built on the CPU and moved
  to meta: spandrel's constructor calls ``.item()``, which meta tensors refuse.

Training (paper, Sec. 4.1 and supplementary): L1 loss, Adam, initial learning rate 2e-4 halved
at 250K, 400K, 450K and 475K of 500K iterations (50%, 80%, 90%, 95% of training); batch 32 of
48x48 LR patches for classical SR (64 x 64x64 for lightweight). ``TRAIN_DEFAULTS`` carries
loss, schedule and lr; the trainer's ``step`` schedule halves at ``steps // 2`` unless
``schedule_milestones`` is given.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from spandrel.architectures.SwinIR import SwinIR
from torch import nn

from srda.registry import register

PAPER_PARAMS: int = 11_900_000
PAPER_PARAMS_SOURCE: str = (
    "SwinIR official repository README (JingyunLiang/SwinIR), x4 classical SR comparison "
    "table trained on DIV2K: SwinIR #Params 11.9M (RGB)"
)
#: Exact parameter count of our ``paper`` size at x4 with 1 channel (computed, tested).
PAPER_PARAMS_1CH: int = 11_895_805
#: The lightweight x4 model's published figure (SwinIR paper, lightweight SR table) and source.
PAPER_PARAMS_LIGHTWEIGHT: int = 897_000
PAPER_PARAMS_LIGHTWEIGHT_SOURCE: str = (
    "SwinIR paper (ICCV-W 2021), lightweight SR table: 897K at x4; the official code builds "
    "929,628 (see SwinIR issue #45 on the gap)"
)

TRAIN_DEFAULTS: dict[str, Any] = {"loss": "l1", "schedule": "step", "lr": 2e-4}

VARIANTS: dict[str, dict[str, Any]] = {
    "classical": {
        "embed_dim": 180,
        "depths": [6, 6, 6, 6, 6, 6],
        "num_heads": [6, 6, 6, 6, 6, 6],
        "window_size": 8,
        "mlp_ratio": 2.0,
        "upsampler": "pixelshuffle",
        "img_size": 48,
    },
    "lightweight": {
        "embed_dim": 60,
        "depths": [6, 6, 6, 6],
        "num_heads": [6, 6, 6, 6],
        "window_size": 8,
        "mlp_ratio": 2.0,
        "upsampler": "pixelshuffledirect",
        "img_size": 64,
    },
}
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "embed_dim": 16,
        "depths": [2, 2],
        "num_heads": [2, 2],
        "window_size": 4,
        "mlp_ratio": 2.0,
        "upsampler": "pixelshuffledirect",
        "img_size": 16,
    },
    "small": {
        "embed_dim": 48,
        "depths": [4, 4],
        "num_heads": [4, 4],
        "window_size": 6,
        "mlp_ratio": 2.0,
        "upsampler": "pixelshuffledirect",
        "img_size": 48,
    },
    "paper": VARIANTS["classical"],
}
KNOWN_OVERRIDES = (*VARIANTS["classical"], "drop_path_rate", "resi_connection")


def pad_to_window(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad bottom and right to a multiple: reflect where the side allows it, else replicate."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


class SwinIRSR(nn.Module):
    """spandrel's SwinIR with a zero mean and unit range, padded to the window, cropped back."""

    def __init__(
        self,
        scale: int = 4,
        channels: int = 1,
        embed_dim: int = 180,
        depths: list[int] | tuple[int, ...] = (6, 6, 6, 6, 6, 6),
        num_heads: list[int] | tuple[int, ...] = (6, 6, 6, 6, 6, 6),
        window_size: int = 8,
        mlp_ratio: float = 2.0,
        upsampler: str = "pixelshuffle",
        img_size: int = 48,
        drop_path_rate: float = 0.1,
        resi_connection: str = "1conv",
    ) -> None:
        super().__init__()
        if int(scale) != scale or scale < 1:
            raise ValueError(f"SwinIR needs a positive integer scale, got {scale}")
        if upsampler not in ("pixelshuffle", "pixelshuffledirect"):
            raise ValueError(
                f"SwinIR upsampler {upsampler!r} not supported here; "
                "expected 'pixelshuffle' or 'pixelshuffledirect'"
            )
        if upsampler == "pixelshuffle" and not (scale == 3 or scale & (scale - 1) == 0):
            raise ValueError(f"SwinIR 'pixelshuffle' supports scales 2^n and 3, got {scale}")
        if len(depths) != len(num_heads):
            raise ValueError(f"SwinIR depths {list(depths)} and num_heads {list(num_heads)} differ")
        if any(embed_dim % h for h in num_heads):
            raise ValueError(f"SwinIR embed_dim {embed_dim} must divide by every head count")
        if img_size <= window_size or img_size % window_size:
            # smaller: spandrel would shrink the window to img_size and drop the shift (another
            # model); not a multiple: its precomputed attention mask cannot be built.
            raise ValueError(
                f"SwinIR img_size {img_size} must be a multiple of window_size {window_size} "
                "and larger than it"
            )
        self.scale = scale
        self.channels = channels
        self.window_size = window_size
        arch = {
            "img_size": img_size,
            "in_chans": channels,
            "embed_dim": embed_dim,
            "depths": list(depths),
            "num_heads": list(num_heads),
            "window_size": window_size,
            "mlp_ratio": mlp_ratio,
            "drop_path_rate": drop_path_rate,
            "upscale": scale,
            "img_range": 1.0,
            "upsampler": upsampler,
            "resi_connection": resi_connection,
        }
        # spandrel's constructor calls .item() (stochastic-depth rates), which a "meta" default
        # device refuses (``srda-bench params`` counts parameters under one): build on the CPU
        # then, and move the result to meta as asked.
        device = torch.get_default_device()
        with torch.device("cpu" if device.type == "meta" else device):
            self.net = SwinIR(**arch)
        if device.type == "meta":
            self.net.to("meta")
        # spandrel keeps the DIV2K RGB mean for 3 channels (a plain attribute, no parameter):
        # zero it for every channel count, so no build shifts its input.
        self.net.mean = torch.zeros(1, 1, 1, 1)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        h, w = lr.shape[-2:]
        sr = self.net(pad_to_window(lr, self.window_size))
        return sr[..., : h * self.scale, : w * self.scale]


@register("swinir")
def build_swinir(scale: int = 4, channels: int = 1, size: str = "paper", **overrides) -> SwinIRSR:
    """SwinIR at a size preset or a published ``variant`` (classical | lightweight).

    ``variant`` wins over ``size``; architecture overrides (embed_dim, depths, num_heads,
    window_size, mlp_ratio, upsampler, img_size, drop_path_rate, resi_connection) win over both.
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
    variant = overrides.pop("variant", None)
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"swinir: unknown variant {variant!r}; expected one of {list(VARIANTS)}")
    unknown = sorted(set(overrides) - set(KNOWN_OVERRIDES))
    if unknown:
        raise ValueError(
            f"swinir: unknown overrides {unknown}; known: {sorted([*KNOWN_OVERRIDES, 'variant'])}"
        )
    base = VARIANTS[variant] if variant is not None else SIZES[size]
    return SwinIRSR(scale=scale, channels=channels, **{**base, **overrides})
