"""RCAN: Image Super-Resolution Using Very Deep Residual Channel Attention Networks.

Yulun Zhang, Kunpeng Li, Kai Li, Lichen Wang, Bineng Zhong, Yun Fu; ECCV 2018. The network
is spandrel's implementation (``spandrel.architectures.RCAN.RCAN``, weight-compatible with the
authors' release), not a re-implementation; this module only configures and wraps it.

Layout (``paper`` size: G = 10 residual groups of B = 20 RCABs, 64 features, reduction 16,
the model of the paper's x2/x3/x4/x8 BI results)::

    LR (N, C, h, w)
    head      conv3x3 C -> F
    body      residual in residual: G x [B x RCAB, conv3x3, + group input (short skip)],
              conv3x3, + head features (long skip)
              RCAB: conv3x3, ReLU, conv3x3, channel attention (global average pool,
              conv1x1 F -> F/r, ReLU, conv1x1 F/r -> F, sigmoid, rescale), + block input
    upsample  x2/x4/x8: 1/2/3 x [conv3x3 F -> 4F, PixelShuffle(2)]; x3: conv3x3 F -> 9F,
              PixelShuffle(3)
    tail      conv3x3 F -> C
    SR (N, C, s*h, s*w)

Parameter count: the published figure is 15.6M at x4 (the spec's ``paper_params``: SwinIR's
official README, x4 comparison table trained on DIV2K, RGB; the RCAN paper gives its size only in
a parameters-vs-PSNR figure, about 16M); our
3-channel build has 15,592,355 (the released code's 15,592,379 also counts the two fixed 3x3
mean-shift 1x1 convs, 24 numbers, that are removed here). ``params_1ch`` is smaller only because
the head conv takes 1 channel instead of 3 and the tail conv emits 1 instead of 3.

Deviations, and why:

* RGB mean shift removed: spandrel's RCAN hard-codes the DIV2K RGB mean (0.4488, 0.4371,
  0.4040) and a x255 range in two ``MeanShift`` 1x1 convs when ``norm=True``; these only exist
  for 3 channels. We build it with ``norm=False``, which replaces both with ``nn.Identity`` and
  sets its internal range to 1, so the network sees the [0, 1] image as it is (for 3 channels
  too: nothing of the mean shift is left in any build).
* 1 channel in and out (grey MRI/PET slices).
* spandrel's forward multiplies its input by the range in place (``x *= 1`` here: a no-op in
  value, but an in-place write to the caller's tensor that autograd refuses on a leaf that
  requires grad); the wrapper hands it a copy.
* Scales 2, 3, 4 and 8 as in the paper; ``registry.build`` refuses others (the pixel-shuffle
  upsampler has no layout for them). Any input size works (the network is fully convolutional).

Training (paper, Sec. 4.1): L1 loss, Adam (beta1 0.9, beta2 0.999, eps 1e-8), batch 16 of
48x48 LR patches, learning rate 1e-4 halved every 2x10^5 iterations. The spec's ``train`` carries
loss, schedule and lr; steps, batch and patch come from the suite's preset.
"""

from __future__ import annotations

import torch
from spandrel.architectures.RCAN import RCAN

from srda.models.blocks import SRNetwork
from srda.registry import ArchSpec, register

SCALES = (2, 3, 4, 8)


SPEC = ArchSpec(
    sizes={
        "tiny": {"groups": 2, "blocks": 2, "features": 16, "reduction": 4},
        "small": {"groups": 4, "blocks": 4, "features": 32, "reduction": 8},
        "paper": {"groups": 10, "blocks": 20, "features": 64, "reduction": 16},
    },
    scales=SCALES,
    paper_params=15_600_000,
    paper_params_source="SwinIR README (JingyunLiang/SwinIR), x4 table on DIV2K: RCAN 15.6M",
    params_1ch=15_590_049,
    train={"loss": "l1", "schedule": "step", "lr": 1e-4},
)

#: spandrel options every build takes: no mean shift (``norm=False``, see above) and no
#: pixel-unshuffle input layer (the plain RCAN of the paper)
_PLAIN = {"norm": False, "unshuffle_mod": False}


@register("rcan", SPEC)
class RCANSR(SRNetwork):
    """spandrel's RCAN with the mean shift removed (``norm=False``); maps [0, 1] -> [0, 1]."""

    def __init__(
        self, scale: int, channels: int, groups: int, blocks: int, features: int, reduction: int
    ) -> None:
        super().__init__(scale, channels)
        if features // reduction < 1:
            raise ValueError(f"RCAN needs features >= reduction, got {features} < {reduction}")
        # our settings under spandrel's names
        layout = {"n_resgroups": groups, "n_resblocks": blocks, "n_feats": features}
        self.net = RCAN(scale=scale, n_colors=channels, reduction=reduction, **layout, **_PLAIN)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        # spandrel scales its input in place (by 1 here): give it a tensor of its own.
        return self.net(lr.clone())
