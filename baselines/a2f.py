"""A2F: attentive auxiliary feature learning for lightweight single-image super-resolution.

Paper: Xuehui Wang, Qing Wang, Yuzhi Zhao, Junchi Yan, Lei Fan and Long Chen, "Lightweight
Single-Image Super-Resolution Network with Attentive Auxiliary Feature Learning", ACCV 2020
(SRDA's reference [22]). Written here from the paper; layer counts and widths were checked
against the authors' released configurations (github.com/wxxxxxxh/A2F-SR, ``yaml/train_*_x4``).

Layout (``features`` F, ``block_features`` B, ``blocks`` L)::

    LR (N, C, h, w)
      skip: conv3x3 C -> s*s*C, PixelShuffle(s)                          (WDSR-style global branch)
      head: conv3x3 C -> F                                                 -> a_0
      for i in 1..L:
          r_i   = conv3x3 B -> F ( ReLU( conv3x3 F -> B (a_{i-1}) ) )      (wide-activation block)
          aux_i = CA( conv1x1 (i*F) -> F ( concat(a_0, ..., a_{i-1}) ) )   (auxiliary features,
                                                                            projected, attended)
          a_i   = lx_i * a_{i-1} + lr_i * r_i + la_i * aux_i               (three learnt scalars,
                                                                            initialised to 1)
      tail: conv3x3 F -> s*s*C, PixelShuffle(s), + skip
    SR (N, C, s*h, s*w)

CA is squeeze-and-excitation channel attention without reduction (global average pool,
1x1 F -> F, ReLU, 1x1 F -> F, sigmoid). Every 3x3 conv is weight-normalised (as in WDSR and
the authors' code); the 1x1 projections and the attention are not.

Variants (x4; ``variant=`` picks the one ``size="paper"`` builds)::

    variant  name    F   B    L   params (3 ch, x4)
    sd       A2F-SD  16  128   8     319,672
    s        A2F-S   32  128   4     331,132
    m        A2F-M   32  128  12   1,010,068
    l        A2F-L   32  128  16   1,374,112   <- ``paper`` (the largest; default)

The SRDA paper does not say which variant it ran; nothing points to a smaller one, so the
``paper`` size is A2F-L. Its published x4 figure is 1374K (the spec's ``paper_params``); our
3-channel build has 1,374,112 parameters (weight-norm gains and the three scalars per block
included). With one channel in and out (``params_1ch``) only the head, skip and tail convs
shrink (3 -> 1 input channels, 48 -> 16 sub-pixel outputs); the DIV2K mean shift of the original
has no parameters.

Deviations from the authors' code:

* No RGB mean shift and no /127.5 rescaling: the network takes [0, 1] images as they are (a
  1-channel medical slice has no DIV2K RGB mean); the shift and scale were parameter-free and a
  linear network with a linear skip absorbs them.
* The upsampler is one conv + PixelShuffle(s) for any integer scale, as in the paper, so x2, x3,
  x4 and x8 all work (x8 is one PixelShuffle(8) step, beyond what the paper evaluated).
* ``variant`` only changes what ``size="paper"`` builds; ``tiny`` and ``small`` are fixed reduced
  configurations (so a method entry that names a variant still runs in the smoke preset).

Training (the authors' released ``yaml/train_l_x4.yaml``): L1 loss, Adam (0.9, 0.999, eps 1e-8)
at lr 1e-3, halved every 200 epochs (the code's "restart" decay, gamma 0.5, period 1000), 300
epochs of DIV2K with 192x192 HR patches. The spec's ``train`` carries loss, lr and a step schedule;
the suite's step schedule halves once, at half the run, unless ``schedule_milestones`` is set.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from srda.models.blocks import SRNetwork, subpixel
from srda.registry import ArchSpec, register

SPEC = ArchSpec(
    sizes={
        "tiny": {"features": 8, "block_features": 16, "blocks": 2},
        "small": {"features": 32, "block_features": 128, "blocks": 8},
    },
    # published: features F, block (wide activation) features B, number of blocks L
    variants={
        "sd": {"features": 16, "block_features": 128, "blocks": 8},
        "s": {"features": 32, "block_features": 128, "blocks": 4},
        "m": {"features": 32, "block_features": 128, "blocks": 12},
        "l": {"features": 32, "block_features": 128, "blocks": 16},
    },
    paper_variant="l",
    extra_overrides=("channel_attention", "weight_norm"),
    paper_params=1_374_000,
    paper_params_source="Wang et al., ACCV 2020, lightweight-SR comparison (x4): A2F-L 1374K",
    params_1ch=1_363_040,
    train={"loss": "l1", "lr": 1e-3, "schedule": "step"},
)


def _wn_conv3x3(cin: int, cout: int, wn: bool) -> nn.Module:
    conv = nn.Conv2d(cin, cout, 3, padding=1)
    return weight_norm(conv) if wn else conv


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation gate: x * sigmoid(W2 relu(W1 avgpool(x)))."""

    def __init__(self, features: int, reduction: int = 1) -> None:
        super().__init__()
        hidden = max(1, features // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(features, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, features, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class A2FLayer(nn.Module):
    """One A2F step: a wide-activation residual block plus attended auxiliary features.

    ``index`` (0-based) is the layer's position; it receives ``index + 1`` earlier states
    (the head output and every previous layer's output).
    """

    def __init__(
        self, features: int, block_features: int, index: int, channel_attention: bool, wn: bool
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _wn_conv3x3(features, block_features, wn),
            nn.ReLU(inplace=True),
            _wn_conv3x3(block_features, features, wn),
        )
        project: list[nn.Module] = [nn.Conv2d(features * (index + 1), features, 1, bias=False)]
        if channel_attention:
            project.append(ChannelAttention(features))
        self.auxiliary = nn.Sequential(*project)
        self.scale_x = nn.Parameter(torch.ones(1))
        self.scale_res = nn.Parameter(torch.ones(1))
        self.scale_aux = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor, states: list[torch.Tensor]) -> torch.Tensor:
        aux = self.auxiliary(torch.cat(states, dim=1) if len(states) > 1 else states[0])
        return self.scale_x * x + self.scale_res * self.body(x) + self.scale_aux * aux


@register("a2f", SPEC)
class A2F(SRNetwork):
    """A2F network; maps (N, C, h, w) to (N, C, s*h, s*w)."""

    def __init__(
        self,
        scale: int,
        channels: int,
        features: int,
        block_features: int,
        blocks: int,
        channel_attention: bool = True,
        weight_norm: bool = True,
    ) -> None:
        super().__init__(scale, channels)
        if min(features, block_features, blocks) < 1:
            raise ValueError(
                "A2F: features, block_features and blocks must be >= 1, got "
                f"{features}, {block_features}, {blocks}"
            )
        conv = partial(_wn_conv3x3, wn=weight_norm)
        self.skip = subpixel(channels, channels, self.scale, conv)
        self.head = conv(channels, features)
        self.layers = nn.ModuleList(
            A2FLayer(features, block_features, i, channel_attention, weight_norm)
            for i in range(blocks)
        )
        self.tail = subpixel(features, channels, self.scale, conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.skip(x)
        state = self.head(x)
        states = [state]
        for layer in self.layers:
            state = layer(state, states)
            states.append(state)
        return self.tail(state) + skip
