"""The SRDA model: SR network, diagnosis network, attention and the two trained jointly.

Importing this package is cheap (no torch): ``VARIANTS`` and ``SIZES`` are plain data that the
config and the trainer read; the torch classes are loaded on first attribute access.

Variants follow the paper's Table II:

=================  ==========  =========  ==========  ================
name               deformable  attention  diagnosis   paper's label
=================  ==========  =========  ==========  ================
srda_base          no          no         no          SR
srda_dconv         yes         no         no          SR+Dconv
srda_dconv_diag    yes         no         yes         SR+Dconv+Diag
srda               yes         yes        yes         SR+Dconv+Diag+Atten
=================  ==========  =========  ==========  ================
"""

from __future__ import annotations

import importlib
from typing import Any

#: Which parts each variant has. ``diagnosis`` tells the trainer to train a diagnosis network
#: jointly (cross-entropy term); ``attention`` puts an attention module in both networks and adds
#: the attention loss (only meaningful with ``diagnosis``).
VARIANTS: dict[str, dict[str, bool]] = {
    "srda_base": {"deformable": False, "attention": False, "diagnosis": False},
    "srda_dconv": {"deformable": True, "attention": False, "diagnosis": False},
    "srda_dconv_diag": {"deformable": True, "attention": False, "diagnosis": True},
    "srda": {"deformable": True, "attention": True, "diagnosis": True},
}

#: SR network widths and depths per size preset (``paper``: 256 features, 32 residual blocks).
SIZES: dict[str, dict[str, int]] = {
    "tiny": {"features": 16, "blocks": 2},
    "small": {"features": 64, "blocks": 8},
    "paper": {"features": 256, "blocks": 32},
}

_LAZY = {
    "SRNetwork": "blocks",
    "SpatialAttention": "attention",
    "SRNet": "srnet",
    "DeformableHead": "srnet",
    "ResidualBlock": "srnet",
    "build_srnet": "srnet",
    "DiagnosisNet": "diagnosis",
    "JointSRDA": "joint",
    "align_maps": "joint",
    "attention_loss": "joint",
    "srda_loss": "joint",
    "build_joint": "joint",
}

__all__ = ["VARIANTS", "SIZES", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
