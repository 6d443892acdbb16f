"""SRDA and its Table II ablations: each name builds the SR network alone.

==================  =====================  ==========  ==========
registered name     paper's Table II row   deformable  attention
==================  =====================  ==========  ==========
srda_base           SR                     no          no
srda_dconv          SR+Dconv               yes         no
srda_dconv_diag     SR+Dconv+Diag          yes         no
srda                SR+Dconv+Diag+Atten    yes         yes
==================  =====================  ==========  ==========

The diagnosis network that srda and srda_dconv_diag train with is built by
``srda.models.joint.build_joint`` (the trainer reads ``srda.models.VARIANTS`` to know which
variants need it); at inference only the SR network is used.
"""

from __future__ import annotations

from srda.models.srnet import SRNet, build_srnet
from srda.registry import register


@register("srda")
def build_srda(scale: int = 4, channels: int = 1, size: str = "paper", **overrides) -> SRNet:
    return build_srnet("srda", scale=scale, channels=channels, size=size, **overrides)


@register("srda_base")
def build_srda_base(scale: int = 4, channels: int = 1, size: str = "paper", **overrides) -> SRNet:
    return build_srnet("srda_base", scale=scale, channels=channels, size=size, **overrides)


@register("srda_dconv")
def build_srda_dconv(scale: int = 4, channels: int = 1, size: str = "paper", **overrides) -> SRNet:
    return build_srnet("srda_dconv", scale=scale, channels=channels, size=size, **overrides)


@register("srda_dconv_diag")
def build_srda_dconv_diag(
    scale: int = 4, channels: int = 1, size: str = "paper", **overrides
) -> SRNet:
    return build_srnet("srda_dconv_diag", scale=scale, channels=channels, size=size, **overrides)
