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

Parameter counts: the published figure for the classical x4 model is 11.9M (the official
README's x4 classical-SR table, trained on DIV2K, RGB; the spec's
``paper_params``); our 3-channel build has 11,900,199. ``params_1ch`` is smaller only because
the first conv takes 1 channel instead of 3 and the last conv emits 1 instead of 3 (the mean
shift has no parameters). The lightweight x4 model is published as 897K, but the official code
builds 929,628 parameters at x4 with 3 channels (spandrel agrees); the paper's figures for the
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
48x48 LR patches for classical SR (64 x 64x64 for lightweight). The spec's ``train``
carries loss, schedule and lr; the trainer's ``step`` schedule halves at ``steps // 2`` unless
``schedule_milestones`` is given.
"""

from __future__ import annotations

import torch
from spandrel.architectures.SwinIR import SwinIR

from srda.models.blocks import SRNetwork, pad_to_multiple
from srda.registry import SIZES, ArchSpec, register


def _swin(embed: int, depths: tuple[int, ...], window: int, upsampler: str, img: int) -> dict:
    """One configuration of the table above (as many heads as layers per stage, mlp 2)."""
    return {
        "embed_dim": embed,
        "depths": depths,
        "num_heads": (depths[0],) * len(depths),
        "window_size": window,
        "mlp_ratio": 2.0,
        "upsampler": upsampler,
        "img_size": img,
    }


SPEC = ArchSpec(
    sizes={
        "tiny": _swin(16, (2, 2), 4, "pixelshuffledirect", 16),
        "small": _swin(48, (4, 4), 6, "pixelshuffledirect", 48),
    },
    variants={
        "classical": _swin(180, (6,) * 6, 8, "pixelshuffle", 48),
        "lightweight": _swin(60, (6,) * 4, 8, "pixelshuffledirect", 64),
    },
    paper_variant="classical",
    variant_sizes=SIZES,  # a variant wins over the size
    extra_overrides=("drop_path_rate", "resi_connection"),
    paper_params=11_900_000,
    paper_params_source="SwinIR README (JingyunLiang/SwinIR), x4 classical SR on DIV2K: 11.9M",
    params_1ch=11_895_805,
    train={"loss": "l1", "schedule": "step", "lr": 2e-4},
)


@register("swinir", SPEC)
class SwinIRSR(SRNetwork):
    """spandrel's SwinIR with a zero mean and unit range, padded to the window, cropped back."""

    def __init__(
        self,
        scale: int,
        channels: int,
        embed_dim: int,
        depths: list[int] | tuple[int, ...],
        num_heads: list[int] | tuple[int, ...],
        window_size: int,
        mlp_ratio: float,
        upsampler: str,
        img_size: int,
        drop_path_rate: float = 0.1,
        resi_connection: str = "1conv",
    ) -> None:
        super().__init__(scale, channels)
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
        sr = self.net(pad_to_multiple(lr, self.window_size))
        return sr[..., : h * self.scale, : w * self.scale]
