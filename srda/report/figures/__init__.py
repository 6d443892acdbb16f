"""Figures from the results tree: qualitative grids, error maps, attention maps, training curves
and PSNR against downstream diagnosis accuracy.

Three parts, one job each:

- ``declared``: which files are written, and from which (``figure_files``, ``figure_inputs``):
  the settings alone, read by the Snakefile at parse time;
- ``plots``: each ``plot_*`` draws plain arrays and frames into a matplotlib ``Figure`` (tested
  without a results tree), ``save_figure`` writes PNG and PDF atomically;
- ``assembly``: ``write_figures(settings, out_dir)`` checks the inputs, reads them, picks the
  image and zoom window and writes every declared figure.

Every name is importable from here. The declarations are imported with the package, the other
two parts on first use of one of their names, so the Snakefile's import pulls in no numpy,
pandas or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

from srda.report.figures.declared import (
    FORMATS,
    attention_methods,
    figure_files,
    figure_inputs,
    figure_stems,
)

_LAZY = {
    "plots": (
        "STYLE",
        "AttentionRow",
        "Box",
        "Panel",
        "_figure",  # srda.report.leakage draws its figure with the same style
        "_styled",
        "close_figure",
        "plot_attention",
        "plot_error_maps",
        "plot_psnr_vs_accuracy",
        "plot_qualitative",
        "plot_training_curves",
        "save_figure",
        "upsample",
    ),
    "assembly": ("accuracy_points", "pick_slice", "region_area", "write_figures", "zoom_box"),
}

__all__ = [
    "FORMATS",
    "attention_methods",
    "figure_files",
    "figure_inputs",
    "figure_stems",
    *(name for names in _LAZY.values() for name in names if not name.startswith("_")),
]


def __getattr__(name: str) -> Any:
    for module, names in _LAZY.items():
        if name in names:
            return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, "_figure", "_styled"})
