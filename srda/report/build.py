"""Write the tables from the per-image metric files the method jobs leave behind."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from srda.errors import InputError
from srda.report.tables import metrics_path, render, summarise
from srda.shards import write_csv

logger = logging.getLogger(__name__)


def collect(settings: dict[str, Any]) -> pd.DataFrame:
    """Per-image test metrics of every (dataset, scale, method, seed) in settings."""
    frames = []
    for dataset in settings["datasets"]:
        for scale in settings["scales"]:
            for method in settings["methods"]:
                for seed in settings["seeds"]:
                    path = metrics_path(settings["results_dir"], dataset, scale, method, seed)
                    if not path.exists():
                        raise InputError(path, "metrics file missing (did the method's job run?)")
                    frame = pd.read_csv(path, dtype={"subject": str})
                    frames.append(
                        frame.assign(dataset=dataset, scale=scale, method=method, seed=seed)
                    )
    return pd.concat(frames, ignore_index=True)


def write_table1(settings: dict[str, Any], out_dir: Path) -> pd.DataFrame:
    """table1_psnr_ssim.csv (long form) plus .md and .tex in the paper's layout."""
    long = summarise(collect(settings), ["psnr", "ssim"], n_boot=settings["bootstrap"])
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(out_dir / "table1_psnr_ssim.csv", long)
    md, tex = render(
        long,
        settings["methods"],
        settings["datasets"],
        ["psnr", "ssim"],
        "Table I: PSNR / SSIM on the test split",
    )
    (out_dir / "table1_psnr_ssim.md").write_text(md)
    (out_dir / "table1_psnr_ssim.tex").write_text(tex)
    logger.info("Table I:\n%s", md)
    return long
