"""Write the tables from the per-image metric files the method jobs leave behind."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from srda.errors import InputError
from srda.report import ABLATIONS
from srda.report.tables import metrics_path, render, summarise
from srda.shards import write_csv

logger = logging.getLogger(__name__)


def collect(settings: dict[str, Any], methods: list[str]) -> pd.DataFrame:
    """Per-image test metrics of every (dataset, scale, method, seed) asked for."""
    frames = []
    for dataset in settings["datasets"]:
        for scale in settings["scales"]:
            for method in methods:
                for seed in settings["seeds"]:
                    path = metrics_path(settings["results_dir"], dataset, scale, method, seed)
                    if not path.exists():
                        raise InputError(path, "metrics file missing (did the method's job run?)")
                    frame = pd.read_csv(path, dtype={"subject": str})
                    frames.append(
                        frame.assign(dataset=dataset, scale=scale, method=method, seed=seed)
                    )
    return pd.concat(frames, ignore_index=True)


def _write(
    long: pd.DataFrame,
    out_dir: Path,
    stem: str,
    display: dict[str, str],
    datasets: list[str],
    title: str,
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(out_dir / f"{stem}.csv", long)
    md, tex = render(long, display, datasets, ["psnr", "ssim"], title)
    (out_dir / f"{stem}.md").write_text(md)
    (out_dir / f"{stem}.tex").write_text(tex)
    logger.info("%s:\n%s", title, md)


def _display(settings: dict[str, Any]) -> dict[str, str]:
    """Method key -> display name, in table order (given as pairs: JSON keeps list order)."""
    return dict(settings["methods"])


def write_table1(settings: dict[str, Any], out_dir: Path) -> pd.DataFrame:
    """table1_psnr_ssim.csv (long form) plus .md and .tex in the paper's layout."""
    display = _display(settings)
    methods = list(display)
    long = summarise(collect(settings, methods), ["psnr", "ssim"], n_boot=settings["bootstrap"])
    _write(
        long,
        out_dir,
        "table1_psnr_ssim",
        display,
        settings["datasets"],
        "Table I: PSNR / SSIM on the test split",
    )
    return long


def write_table2(settings: dict[str, Any], out_dir: Path) -> pd.DataFrame:
    """table2_ablation.csv: the ablation rows (SR, +Dconv, +Diag, +Atten) per dataset."""
    methods = [m for m in ABLATIONS if m in _display(settings)]
    if not methods:
        raise InputError("run_methods", f"Table II needs some of {', '.join(ABLATIONS)}")
    long = summarise(collect(settings, methods), ["psnr", "ssim"], n_boot=settings["bootstrap"])
    _write(
        long,
        out_dir,
        "table2_ablation",
        {m: ABLATIONS[m] for m in methods},
        settings["datasets"],
        "Table II: ablation of SRDA's parts (PSNR / SSIM)",
    )
    return long
