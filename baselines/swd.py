"""SWD-Net: Joint Spatial-Wavelet Dual-Stream Network for Super-Resolution.

Paper: Zhen Chen, Xiaoqing Guo, Chen Yang, Bulat Ibragimov, Yixuan Yuan, "Joint Spatial-Wavelet
Dual-Stream Network for Super-Resolution", MICCAI 2020, LNCS 12265, pp. 184-193. Written here
from the paper's description; layer widths, kernel sizes and block counts were read (facts only)
from the authors' code, github.com/franciszchen/SWD-Net (``model/*_stage.py``).

The network is two stages in series, each built of two parallel streams ("dual-stream")::

    LR (N, C, h, w)
    spatial stage   (LR resolution, then the upsampler)
      head          conv3x3 C -> 64, PReLU, ResBlock(64), conv3x3 64 -> 32, PReLU, ResBlock(32)
      2 x dual-stream module (each with a residual connection around it):
                    a full-resolution stream and a half-resolution stream (conv3x3 stride 2 +
                    PReLU), 3 stages of [4 ResBlocks per stream, then each stream takes in the
                    other through a Refined Context Fusion (RCF) block, LeakyReLU(0.1)];
                    the last stage returns the full-resolution stream only
      fusion        concat of the 2 module outputs, conv3x3 64 -> 32, PReLU
      upsampler     x2: conv3x3 32 -> 128, PixelShuffle(2) (see "Scales" for x3/x4/x8)
      tail          conv3x3 32 -> 32, PReLU, conv1x1 32 -> 32, PReLU, conv3x3 32 -> C,
                    + nearest-neighbour upsampling of the LR input
      -> spatial SR S (N, C, s*h, s*w)
    wavelet stage   (on S, at HR/2 and HR/4)
      W1 = DWT(S): 4C sub-bands at HR/2 ("up" stream); W2 = DWT(W1): 16C at HR/4 ("down" stream)
      Wavelet Feature Adaptation (WFA: global pool, FC c -> c/2, PReLU, FC -> c, tanh, x scale)
      on W1 and W2; 3 stages of Wavelet-Aware Convolution (WAC) encoder + decoder per stream,
      widths 24 (up) and 96 (down), the streams exchanging features before stages 2 and 3
      through RCF (down -> up by inverse DWT, up -> down by DWT), a last RCF, conv3x3 4C -> 4C,
      + W1 (residual in the wavelet domain) -> predicted HR/2 sub-bands; SR = IDWT(sub-bands)
    SR (N, C, s*h, s*w)

Blocks. ResBlock: conv3x3-PReLU-conv3x3, + input, PReLU (no BN, with biases). RCF(backbone,
bypass): the bypass is pooled to a global context vector with a softmax attention map computed
from the backbone (1x1 conv C -> 1), that vector goes through 1x1 C -> C/2, ReLU, 1x1 -> C (last
conv zero-initialised) and is added to SE(backbone) (squeeze-excitation, reduction 2). WAC: the
sum of four branches, a 3x3 conv (low frequency), two 1x3 convs, two 3x1 convs and two 3x3
convs (horizontal, vertical, diagonal details), each conv followed by PReLU. The DWT is the
orthonormal Haar transform (sub-bands LL, HL, LH, HH, band-major channel order).

Scales (the paper is x2 only). The wavelet stage works on the spatial stage's HR-size output,
so it does not depend on the scale: at every scale it predicts the level-1 Haar sub-bands of the
SR image at HR/2 (and its stream at HR/4), as the paper does at x2. The scale lives only in the
spatial stage's upsampler: x2 is the paper's single pixel shuffle; x4 and x8 use the upsampler
the same authors designed for x4 in their follow-up MRC-Net (SRD, IEEE TMI 2021, the ``srd``
baseline): x2 pixel-shuffle stages with [conv3x3-PReLU, ResBlock, conv3x3-PReLU] refining the
features between consecutive stages; x3 is one conv3x3 32 -> 288 and PixelShuffle(3). The
nearest-neighbour input skip uses the same factor. The wavelet stage needs an HR size divisible
by 4 (two DWT levels): it pads S on the bottom/right (replicate) to the next multiple of 4 and
crops the result back, so x3 and odd LR sizes at x2 work; at x4 and x8 nothing is padded.
Odd LR sizes in the dual-stream modules: the half-resolution stream has ceil(h/2) rows; its
nearest x2 upsampling is cropped to h rows before fusion.

Deviations from the official code (all documented in docs/baselines/swd.md):
- RCF adds its context term to the output, as the paper's Eq. 1 and GCNet do; the released
  code computes that term and then discards it (it rebinds a local variable), so there the
  bypass stream never reaches the output. Same parameters either way.
- Modules the released code builds but never calls (an RCF of the last fusion stage and a
  third WFA in the wavelet stage) are not built.
- No RGB mean shift exists in SWD-Net, so none is removed; inputs are images in [0, 1].
- 1 channel: the wavelet stage's sub-band widths follow the channel count (4C and 16C: 4 and
  16 for 1 channel, 12 and 48 for RGB as released).
- The paper trains the spatial stage first, then the whole net with Eq. 4:
  0.1 L1(S, HR) + 0.1 L1(SR, HR) + L1(sub-bands, DWT(HR)). The suite's shared trainer uses one
  pixel loss on SR; ``swd_objective`` implements Eq. 4 for a trainer that wants it.

Parameters: no parameter count is reported in the paper or the official README, so the spec
has no ``paper_params``; our paper-size count at x4 is 3,228,014 with 3 channels and
``params_1ch`` = 3,032,708 with 1, the difference only through the channel count (first and last
convs, the nearest skip has no parameters, the wavelet stage's 4C/16C sub-band widths); no mean
shift exists to remove.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from srda.models.blocks import SRNetwork, pixel_shuffle_stages
from srda.registry import ArchSpec, per_size, register

#: (tiny, small, paper) head width, fusion stages and ResBlocks per stage of the dual-stream
#: backbone, the same in SWD-Net's spatial stage and SRD's MRC-Net (the authors' released 64,
#: 3 and 4 at paper size).
DUAL_STREAM_SIZES = {"head": (8, 32, 64), "stages": (2, 2, 3), "blocks": (1, 2, 4)}


SPEC = ArchSpec(
    # paper: the released configuration (x2 in the paper; x4 through MRC-Net's upsampler)
    sizes=per_size(  # (tiny, small, paper)
        **DUAL_STREAM_SIZES,
        feats=(8, 16, 32),
        modules=(1, 1, 2),
        wave_up=(4, 8, 24),
        wave_down=(8, 32, 96),
        wave_stages=(2, 3, 3),
    ),
    paper_params_source="not reported (neither the paper nor the official README)",
    params_1ch=3_032_708,
    train={"loss": "l1", "schedule": "step", "lr": 1e-4},
)

# --------------------------------------------------------------------------- shared blocks
# (also used by baselines/srd.py: SRD's MRC-Net is built from the same authors' blocks)


class SELayer(nn.Module):
    """Squeeze-excitation: global average pool, FC c -> c/r, ReLU, FC -> c, sigmoid, x scale."""

    def __init__(self, channels: int, reduction: int = 2) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.fc(x.mean(dim=(2, 3))))
        return x * w[:, :, None, None]


class RCF(nn.Module):
    """Refined Context Fusion: ``SE(backbone) + T(context(bypass | backbone))``.

    The context is the bypass averaged over positions with softmax weights from a 1x1 conv on
    the backbone (GCNet-style attention pooling); T is 1x1 conv c -> c/2, ReLU, 1x1 conv -> c,
    its last conv zero-initialised so the block starts as SE(backbone).
    """

    def __init__(self, channels: int, ratio: int = 2) -> None:
        super().__init__()
        hidden = max(1, channels // ratio)
        self.se = SELayer(channels)
        self.mask = nn.Conv2d(channels, 1, 1)
        self.transform = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1)
        )
        nn.init.kaiming_normal_(self.mask.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.mask.bias)
        nn.init.zeros_(self.transform[-1].weight)
        nn.init.zeros_(self.transform[-1].bias)

    def forward(self, backbone: torch.Tensor, bypass: torch.Tensor) -> torch.Tensor:
        n, c = bypass.shape[:2]
        weights = torch.softmax(self.mask(backbone).flatten(2), dim=-1)  # (N, 1, HW)
        context = torch.bmm(bypass.flatten(2), weights.transpose(1, 2))  # (N, C, 1)
        return self.se(backbone) + self.transform(context.view(n, c, 1, 1))


class ResBlock(nn.Module):
    """conv3x3-PReLU-conv3x3, + input, PReLU (no BN; ``bias`` on the convs)."""

    def __init__(self, channels: int, bias: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.act1 = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.act2 = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act2(self.conv2(self.act1(self.conv1(x))) + x)


def conv_prelu(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2), nn.PReLU(cout)
    )


def feature_head(channels: int, head: int, feats: int, bias: bool = True) -> nn.Sequential:
    """The dual-stream networks' head: conv3x3 C -> head, PReLU, ResBlock(head), conv3x3 head ->
    feats, PReLU, ResBlock(feats) (``bias`` on the ResBlocks' convs)."""
    return nn.Sequential(
        conv_prelu(channels, head),
        ResBlock(head, bias),
        conv_prelu(head, feats),
        ResBlock(feats, bias),
    )


class DualStreamModule(nn.Module):
    """Full- and half-resolution streams exchanging context (SWD's spatial dual-stream module,
    SRD's MRC module): ``stages`` x [``blocks`` ResBlocks per stream, RCF fusion, LeakyReLU].

    The half-resolution stream starts from a conv3x3 stride 2 + PReLU of the input. Fusion into
    the full-resolution stream: conv1x1 + nearest x2 upsampling (cropped to the full size for
    odd inputs) as RCF bypass; into the half-resolution stream: conv3x3 stride 2. The last stage
    returns the full-resolution stream only (no half-resolution fusion is built for it).
    """

    def __init__(self, feats: int, stages: int = 3, blocks: int = 4, bias: bool = True) -> None:
        super().__init__()
        if stages < 1 or blocks < 1:
            raise ValueError(f"stages={stages} and blocks={blocks} must be >= 1")
        self.down_in = conv_prelu(feats, feats, 3, stride=2)
        self.hi_blocks = nn.ModuleList()
        self.lo_blocks = nn.ModuleList()
        self.up_convs = nn.ModuleList()
        self.hi_rcf = nn.ModuleList()
        self.down_convs = nn.ModuleList()
        self.lo_rcf = nn.ModuleList()
        for s in range(stages):
            self.hi_blocks.append(nn.Sequential(*[ResBlock(feats, bias) for _ in range(blocks)]))
            self.lo_blocks.append(nn.Sequential(*[ResBlock(feats, bias) for _ in range(blocks)]))
            self.up_convs.append(nn.Conv2d(feats, feats, 1))
            self.hi_rcf.append(RCF(feats))
            if s < stages - 1:
                self.down_convs.append(nn.Conv2d(feats, feats, 3, stride=2, padding=1))
                self.lo_rcf.append(RCF(feats))
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hi, lo = x, self.down_in(x)
        h, w = x.shape[-2:]
        for s in range(len(self.hi_blocks)):
            hi, lo = self.hi_blocks[s](hi), self.lo_blocks[s](lo)
            up = F.interpolate(self.up_convs[s](lo), scale_factor=2, mode="nearest")
            new_hi = self.act(self.hi_rcf[s](hi, up[..., :h, :w]))
            if s < len(self.lo_rcf):
                lo = self.act(self.lo_rcf[s](lo, self.down_convs[s](hi)))
            hi = new_hi
        return hi


def refined_upsampler(feats: int, scale: int, bias: bool = True) -> nn.Sequential:
    """Pixel-shuffle stages of ``feats`` features (``pixel_shuffle_stages``) with [conv3x3-PReLU,
    ResBlock, conv3x3-PReLU] refining the features between consecutive x2 stages (MRC-Net's x4
    design, SRD, TMI 2021); x3 is one conv3x3 f -> 9f, PixelShuffle(3)."""

    def refine() -> list[nn.Module]:
        return [conv_prelu(feats, feats), ResBlock(feats, bias), conv_prelu(feats, feats)]

    return pixel_shuffle_stages(feats, scale, between=refine)


class SRTail(nn.Module):
    """conv3x3-PReLU, conv1x1-PReLU, conv3x3 -> channels, + nearest upsampling of the input."""

    def __init__(self, feats: int, channels: int, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.body = nn.Sequential(
            conv_prelu(feats, feats, 3),
            conv_prelu(feats, feats, 1),
            nn.Conv2d(feats, channels, 3, padding=1),
        )

    def forward(self, features: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        skip = F.interpolate(lr, scale_factor=self.scale, mode="nearest")
        return self.body(features) + skip


# --------------------------------------------------------------------------- Haar transform


def haar_dwt(x: torch.Tensor) -> torch.Tensor:
    """One level of the orthonormal 2D Haar DWT: (N, C, H, W) -> (N, 4C, H/2, W/2).

    Channels are band-major: [LL of all C, HL of all C, LH ..., HH ...], where HL holds the
    horizontal differences (odd minus even columns), LH the vertical ones and HH the diagonal.
    H and W must be even.
    """
    n, c, h, w = x.shape
    # pixel phases of each 2x2 cell: a (0, 0), b (0, 1), c (1, 0), d (1, 1)
    a, b, c_, d = F.pixel_unshuffle(x, 2).reshape(n, c, 4, h // 2, w // 2).unbind(2)
    bands = (a + b + c_ + d, -a + b - c_ + d, -a - b + c_ + d, a - b - c_ + d)
    return 0.5 * torch.cat(bands, dim=1)


def haar_idwt(x: torch.Tensor) -> torch.Tensor:
    """Inverse of ``haar_dwt``: (N, 4C, H, W) band-major -> (N, C, 2H, 2W)."""
    n, c4, h, w = x.shape
    ll, hl, lh, hh = x.reshape(n, 4, c4 // 4, h, w).unbind(1)
    phases = (ll - hl - lh + hh, ll + hl - lh - hh, ll - hl + lh - hh, ll + hl + lh + hh)
    return F.pixel_shuffle(0.5 * torch.stack(phases, dim=2).reshape(n, c4, h, w), 2)


# --------------------------------------------------------------------------- SWD-Net


class WFA(nn.Module):
    """Wavelet Feature Adaptation: x * tanh(FC(PReLU(FC(global average of x))))."""

    def __init__(self, channels: int, reduction: int = 2) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden), nn.PReLU(hidden), nn.Linear(hidden, channels), nn.Tanh()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(dim=(2, 3)))[:, :, None, None]


class WAC(nn.Module):
    """Wavelet-Aware Convolution: sum of a 3x3 branch (low frequency) and three two-conv
    branches with 1x3, 3x1 and 3x3 kernels (horizontal, vertical, diagonal details); every conv
    is followed by PReLU; no residual."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.low = conv_prelu(cin, cout, 3)

        def branch(k: tuple[int, int]) -> nn.Sequential:
            pad = (k[0] // 2, k[1] // 2)
            return nn.Sequential(
                nn.Conv2d(cin, cout, k, padding=pad),
                nn.PReLU(cout),
                nn.Conv2d(cout, cout, k, padding=pad),
                nn.PReLU(cout),
            )

        self.horizontal = branch((1, 3))
        self.vertical = branch((3, 1))
        self.diagonal = branch((3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.low(x) + self.horizontal(x) + self.vertical(x) + self.diagonal(x)


class SpatialStage(nn.Module):
    """LR -> spatial SR: head, dual-stream modules with residuals, fusion, upsampler, tail."""

    def __init__(
        self,
        channels: int,
        scale: int,
        head: int,
        feats: int,
        modules: int,
        stages: int,
        blocks: int,
    ) -> None:
        super().__init__()
        if modules < 1:
            raise ValueError(f"modules={modules} must be >= 1")
        self.head = feature_head(channels, head, feats)
        self.dual = nn.ModuleList(DualStreamModule(feats, stages, blocks) for _ in range(modules))
        self.fuse = conv_prelu(modules * feats, feats)
        self.upsample = refined_upsampler(feats, scale)
        self.tail = SRTail(feats, channels, scale)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        x = self.head(lr)
        outs = []
        for module in self.dual:
            x = module(x) + x
            outs.append(x)
        return self.tail(self.upsample(self.fuse(torch.cat(outs, dim=1))), lr)


class WaveletStage(nn.Module):
    """Spatial SR -> refined SR through its Haar sub-bands (two streams: HR/2 and HR/4)."""

    def __init__(self, channels: int, up: int, down: int, stages: int) -> None:
        super().__init__()
        if stages < 1:
            raise ValueError(f"wave_stages={stages} must be >= 1")
        c1, c2 = 4 * channels, 16 * channels  # level-1 and level-2 sub-band channels
        self.wfa_up, self.wfa_down = WFA(c1), WFA(c2)
        self.up_enc, self.up_dec = nn.ModuleList(), nn.ModuleList()
        self.down_enc, self.down_dec = nn.ModuleList(), nn.ModuleList()
        self.up_rcf, self.down_rcf = nn.ModuleList(), nn.ModuleList()
        for s in range(stages):
            last = s == stages - 1
            if s > 0:
                self.up_rcf.append(RCF(up))
                self.down_rcf.append(RCF(4 * up))
            self.up_enc.append(WAC(c1 if s == 0 else up, up))
            self.up_dec.append(WAC(up, c1 if last else up))
            self.down_enc.append(WAC(c2 if s == 0 else 4 * up, down))
            self.down_dec.append(WAC(down, c2 if last else 4 * up))
        self.final_rcf = RCF(c1)
        self.final_conv = nn.Conv2d(c1, c1, 3, padding=1)

    def forward(self, spatial: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (SR image, its predicted level-1 sub-bands); H and W divisible by 4."""
        w1 = haar_dwt(spatial)
        up, down = self.wfa_up(w1), self.wfa_down(haar_dwt(w1))
        for s in range(len(self.up_enc)):
            if s > 0:
                up, down = (
                    self.up_rcf[s - 1](up, haar_idwt(down)),
                    self.down_rcf[s - 1](down, haar_dwt(up)),
                )
            up = self.up_dec[s](self.up_enc[s](up))
            down = self.down_dec[s](self.down_enc[s](down))
        bands = self.final_conv(self.final_rcf(up, haar_idwt(down))) + w1
        return haar_idwt(bands), bands


@register("swd", SPEC)
class SWDNet(SRNetwork):
    """SWD-Net: spatial stage (LR -> S), then wavelet stage (S -> SR). ``forward`` returns SR;
    ``forward_stages`` also returns S and the predicted sub-bands (for Eq. 4)."""

    def __init__(
        self,
        scale: int,
        channels: int,
        head: int,
        feats: int,
        modules: int,
        stages: int,
        blocks: int,
        wave_up: int,
        wave_down: int,
        wave_stages: int,
    ) -> None:
        super().__init__(scale, channels)
        self.spatial = SpatialStage(channels, scale, head, feats, modules, stages, blocks)
        self.wavelet = WaveletStage(channels, wave_up, wave_down, wave_stages)

    def forward_stages(self, lr: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"sr", "spatial", "bands"}``; ``bands`` are the level-1 sub-bands of SR padded
        (replicate, bottom/right) to a multiple of 4, i.e. of ``pad_to_4(sr)``."""
        spatial = self.spatial(lr)
        h, w = spatial.shape[-2:]
        padded = pad_to_4(spatial)
        sr, bands = self.wavelet(padded)
        return {"sr": sr[..., :h, :w], "spatial": spatial, "bands": bands}

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(lr)["sr"]


def pad_to_4(x: torch.Tensor) -> torch.Tensor:
    """Replicate-pad the bottom/right of an image batch to heights and widths divisible by 4."""
    ph, pw = (-x.shape[-2]) % 4, (-x.shape[-1]) % 4
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


def swd_objective(
    lambda_spatial: float = 0.1, lambda_sr: float = 0.1
) -> Callable[[nn.Module, dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]:
    """The paper's Eq. 4 as a trainer objective ``(model, batch) -> (loss, terms)``:
    ``lambda_spatial * L1(S, HR) + lambda_sr * L1(SR, HR) + L1(bands, DWT(HR))`` (means, not
    the released code's sums). Not used by the shared trainer unless wired in."""

    def objective(model: nn.Module, batch: dict[str, torch.Tensor]):
        out = model.forward_stages(batch["lr"])
        hr = batch["hr"].float()
        spatial = F.l1_loss(out["spatial"].float(), hr)
        sr = F.l1_loss(out["sr"].float(), hr)
        wave = F.l1_loss(out["bands"].float(), haar_dwt(pad_to_4(hr)))
        loss = lambda_spatial * spatial + lambda_sr * sr + wave
        return loss, {
            "l1_spatial": float(spatial.detach()),
            "l1": float(sr.detach()),
            "l1_wavelet": float(wave.detach()),
        }

    return objective
