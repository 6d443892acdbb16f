"""Which figures the workflow writes, and from which files: the settings alone, nothing read.

The Snakefile calls ``figure_files`` and ``figure_inputs`` when it parses the rules, so this module
imports only the standard library and ``srda.layout`` (and ``srda.models``' plain variant flags,
when asked which methods save attention maps): no numpy, no matplotlib.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from srda import layout

FORMATS = ("png", "pdf")
TABLE1 = "table1_psnr_ssim.csv"
TABLE3 = "table3_diagnosis.csv"


def attention_methods(methods: Sequence[str]) -> list[str]:
    """The method keys whose jobs save ``attention.npz``, in the given order.

    ``srda.run.save_attention`` writes the file only when the model has a diagnosis network and
    both networks return an attention map: the SRDA variants with both the ``attention`` and the
    ``diagnosis`` flag (``srda.models`` holds the flags as plain data, without torch).
    """
    from srda.models import VARIANTS

    def saves(method: str) -> bool:
        parts = VARIANTS.get(method, {})
        return bool(parts.get("attention") and parts.get("diagnosis"))

    return [method for method in methods if saves(method)]


def method_keys(settings: Mapping[str, Any]) -> list[str]:
    return [key for key, _ in settings["methods"]]


def figure_stems(settings: Mapping[str, Any]) -> list[str]:
    """Every figure's file name without its extension."""
    with_attention = bool(attention_methods(method_keys(settings)))
    stems = []
    for dataset in settings["datasets"]:
        for scale in settings["scales"]:
            base = f"{dataset}_x{scale}"
            stems += [f"{base}_qualitative", f"{base}_error_maps", f"{base}_training_curves"]
            if with_attention:
                stems.append(f"{base}_attention")
    if settings.get("diagnosis"):
        stems.append("psnr_vs_accuracy")
    return stems


def figure_files(settings: Mapping[str, Any]) -> list[str]:
    """Every file ``write_figures`` writes, relative to its output folder (PNG and PDF)."""
    return [f"{stem}.{ext}" for stem in figure_stems(settings) for ext in FORMATS]


def first_seed(settings: Mapping[str, Any]) -> int:
    return settings["seeds"][0]


def data_folder(settings: Mapping[str, Any], dataset: str) -> Path:
    return layout.data_dir(settings["results_dir"], dataset)


def sr_folder(settings: Mapping[str, Any], dataset: str, scale: int, method: str) -> Path:
    return layout.sr_dir(settings["results_dir"], dataset, scale, method, first_seed(settings))


def tables_folder(settings: Mapping[str, Any]) -> Path:
    return layout.tables_dir(settings["results_dir"])


def figure_inputs(settings: Mapping[str, Any]) -> list[str]:
    """The files the figures cannot be drawn without (``test_roi.npy`` is read when a dataset's
    ``dataset.json`` says it has one; training and classifier logs are used when present)."""
    keys = method_keys(settings)
    with_attention = set(attention_methods(keys))
    paths: list[Path] = []
    for dataset in settings["datasets"]:
        data = data_folder(settings, dataset)
        paths += [layout.dataset_json(data), layout.hr_shard(data, "test")]
        paths.append(layout.meta_csv(data, "test"))
        for scale in settings["scales"]:
            for key in keys:
                sr = sr_folder(settings, dataset, scale, key)
                paths += [layout.sr_shard(sr, "test"), layout.sr_metrics_csv(sr)]
                if key in with_attention:
                    paths.append(layout.attention_npz(sr))
    if settings.get("diagnosis"):
        paths += [tables_folder(settings) / TABLE1, tables_folder(settings) / TABLE3]
    return [str(path) for path in paths]
