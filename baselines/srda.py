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
variants need it); at inference only the SR network is used. The SRDA paper reports no parameter
count; ``params_1ch`` is ours. Its recipe (Sec. III-A): Adam at 1e-4, no decay mentioned, for
1000 epochs (the loss weights of the diagnosis terms are the joint settings, not ``train``).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from srda.models import SIZES, VARIANTS
from srda.models.srnet import SRNet
from srda.registry import ArchSpec, register

# The recipe is the schema's own defaults (L1, Adam at 1e-4, constant), so it is left to them:
# a `method_defaults: {train: ...}` setting reaches SRDA and its ablations, as it always has,
# while the baselines' own recipes (their specs' `train`) win over it.
SPEC = ArchSpec(sizes=SIZES, extra_overrides=("res_scale", "deformable", "attention"))


def _network(variant: str) -> partial[SRNet]:
    """SRNet with the variant's parts (an override may still switch one)."""
    parts = VARIANTS[variant]
    return partial(SRNet, deformable=parts["deformable"], attention=parts["attention"])


register("srda", replace(SPEC, params_1ch=43_080_983))(_network("srda"))
register("srda_base", replace(SPEC, params_1ch=43_080_705))(_network("srda_base"))
register("srda_dconv", replace(SPEC, params_1ch=43_080_885))(_network("srda_dconv"))
register("srda_dconv_diag", replace(SPEC, params_1ch=43_080_885))(_network("srda_dconv_diag"))
