"""SRDA's two networks trained together, its loss, and the Table II variants (paper, Sec. II).

``JointSRDA(lr)`` runs the SR network, feeds its (unclamped) output to the diagnosis network and
returns both attention maps; ``srda_loss`` combines

    L1(SR, HR) + lambda1 * CE(logits, labels) + lambda2 * attention loss

with only the terms whose parts exist (srda_base, srda_dconv: L1 alone; srda_dconv_diag: L1 + CE).
The diagnosis loss reaches the SR network through the SR image (no detach), which is how the
diagnosis guides the SR network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srda.models import SIZES, VARIANTS
from srda.models.diagnosis import DiagnosisNet
from srda.models.srnet import SRNet, build_srnet

ATTENTION_LOSSES = ("mean", "sum")


class JointSRDA(nn.Module):
    """The SR network and (optionally) the diagnosis network it feeds."""

    def __init__(self, sr_net: SRNet, diag_net: DiagnosisNet | None = None) -> None:
        super().__init__()
        self.sr_net = sr_net
        self.diag_net = diag_net

    def forward(self, lr: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """dict(sr, sr_attention, logits, diag_attention); None where a part is absent.

        The maps are returned as each network made them (SR side: LR size; diagnosis side:
        SR size / 4); ``srda_loss`` aligns them with ``align_maps``.
        """
        sr, sr_att = self.sr_net.forward_with_attention(lr)
        logits = diag_att = None
        if self.diag_net is not None:
            logits, diag_att = self.diag_net.forward_with_attention(sr)
        return {"sr": sr, "sr_attention": sr_att, "logits": logits, "diag_attention": diag_att}


def align_maps(sr_map: torch.Tensor, diag_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize the diagnosis-side map (bilinear) to the SR-side map's (LR) size if they differ.

    At x4 the sizes already agree (the ResNet stem divides by 4) and the map is returned as is;
    at x2, x3 and x8 the diagnosis map is SR size / 4 (rounded up by the stride-2 layers).
    """
    if diag_map.shape[-2:] != sr_map.shape[-2:]:
        diag_map = F.interpolate(
            diag_map, size=sr_map.shape[-2:], mode="bilinear", align_corners=False
        )
    return sr_map, diag_map


def attention_loss(
    sr_map: torch.Tensor, diag_map: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Squared difference of the two maps after alignment, in float32.

    ``"mean"``: the mean over batch and pixels (the released code; lambda2 = 1e-4 was tuned for
    it). ``"sum"``: the squared Frobenius norm of Eq. (2), summed over pixels, averaged over the
    batch (the paper's text).
    """
    if reduction not in ATTENTION_LOSSES:
        raise ValueError(f"attention_loss must be 'mean' or 'sum', got {reduction!r}")
    sr_map, diag_map = align_maps(sr_map, diag_map)
    sq = (sr_map.float() - diag_map.float()).pow(2)
    if reduction == "mean":
        return sq.mean()
    return sq.flatten(1).sum(dim=1).mean()


def srda_loss(
    out: dict[str, torch.Tensor | None],
    hr: torch.Tensor,
    labels: torch.Tensor | None = None,
    lambda1: float = 0.0006,
    lambda2: float = 0.0001,
    attention_loss: str = "mean",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and its unweighted terms; a term is left out (key absent) with its parts.

    ``out`` is ``JointSRDA.forward``'s dict. Keys of the terms dict: ``l1`` always, ``ce`` when
    there are logits, ``att`` when both attention maps exist. Computed in float32.
    """
    if attention_loss not in ATTENTION_LOSSES:
        raise ValueError(f"attention_loss must be 'mean' or 'sum', got {attention_loss!r}")
    sr = out["sr"]
    if sr.shape != hr.shape:
        raise ValueError(f"SR output {tuple(sr.shape)} and HR {tuple(hr.shape)} differ in shape")
    terms: dict[str, torch.Tensor] = {"l1": F.l1_loss(sr.float(), hr.float())}
    total = terms["l1"]
    logits = out.get("logits")
    if logits is not None:
        if labels is None:
            raise ValueError("the model has a diagnosis network: srda_loss needs labels")
        terms["ce"] = F.cross_entropy(logits.float(), labels)
        total = total + lambda1 * terms["ce"]
    sr_map, diag_map = out.get("sr_attention"), out.get("diag_attention")
    if sr_map is not None and diag_map is not None:
        terms["att"] = _attention_loss(sr_map, diag_map, attention_loss)
        total = total + lambda2 * terms["att"]
    return total, terms


_attention_loss = attention_loss  # srda_loss's keyword shadows the function's name


def build_joint(
    variant: str,
    scale: int = 4,
    channels: int = 1,
    size: str = "paper",
    num_classes: int = 3,
    diag_depth: int = 50,
    attention_at: str | None = "stem",
    **overrides,
) -> JointSRDA:
    """The model a variant trains: its SR network, plus a diagnosis network if it has one.

    ``overrides`` go to the SR network (features, blocks, res_scale). The diagnosis network gets
    an attention module (at ``attention_at``) only when the variant has attention.
    """
    if variant not in VARIANTS:
        raise KeyError(f"unknown SRDA variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
    parts = VARIANTS[variant]
    sr_net = build_srnet(variant, scale=scale, channels=channels, size=size, **overrides)
    diag_net = None
    if parts["diagnosis"]:
        diag_net = DiagnosisNet(
            num_classes=num_classes,
            in_channels=channels,
            attention_at=attention_at if parts["attention"] else None,
            depth=diag_depth,
        )
    return JointSRDA(sr_net, diag_net)
