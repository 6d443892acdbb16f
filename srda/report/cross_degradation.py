"""The cross-degradation table: each method trained on one LR model and scored on each.

Long form (``table_cross_degradation.csv``): dataset, scale, method, seed, train_degradation,
test_degradation, metric, value, ci_low, ci_high, n_subjects. ``metric`` is ``psnr`` or
``ssim`` (the mean over test images, as Table I, with a 95% interval that resamples subjects)
or ``psnr_minus_matched`` / ``ssim_minus_matched``: the score of a network trained on another
model minus that of the same method trained on the test images' own model (the matched cell
of its column), paired image by image and resampled by subject. A gap whose interval lies
below 0 is what a mismatched LR model costs the method on this test set; one that includes 0
is a cost this test set cannot resolve.

The Markdown (``table_cross_degradation.md``) has one table per dataset and scale: a row per
method and train degradation, a column per test degradation, each cell the PSNR (seed mean)
and, off the diagonal, its gap to the matched network. The figure per dataset
(``cross_degradation_{dataset}``) is a heat map of the same matrix per method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from srda import layout
from srda.errors import InputError
from srda.shards import read_meta, write_csv
from srda.stats import cluster_bootstrap_ci, paired_cluster_bootstrap_diff

#: Identifies one cell of the matrix for one seed.
CELL = ["dataset", "scale", "method", "seed", "train_degradation", "test_degradation"]
LONG_COLUMNS = [*CELL, "metric", "value", "ci_low", "ci_high", "n_subjects"]
METRICS = ("psnr", "ssim")
GAP = "_minus_matched"
#: The table's file stem under tables/ (.csv, .md).
TABLE = "table_cross_degradation"


def read_cells(paths: Mapping[tuple[str, int, str, int, str, str], Path]) -> pd.DataFrame:
    """Per-image scores of every cell: ``paths`` maps a CELL key to its metrics CSV (a method
    job's ``test_metrics.csv`` on the diagonal, a cross score elsewhere)."""
    frames = []
    for key, path in paths.items():
        frame = read_meta(path)
        for name, value in zip(CELL, key, strict=True):
            frame[name] = value
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*CELL, "index", "subject", *METRICS])
    return pd.concat(frames, ignore_index=True)


def cross_long(per_image: pd.DataFrame, n_boot: int, seed: int = 0) -> pd.DataFrame:
    """The long table of ``per_image`` (``read_cells``): every cell's mean and interval, and
    every off-diagonal cell's gap to the matched cell of its column."""
    rows = []
    groups = dict(tuple(per_image.groupby(CELL, sort=False)))
    for key, group in groups.items():
        cell = dict(zip(CELL, key, strict=True))
        group = group.sort_values("index")
        subjects = group["subject"].to_numpy()
        for metric in METRICS:
            values = group[metric].to_numpy(np.float64)
            lo, hi = cluster_bootstrap_ci(values, subjects, n_boot=n_boot, seed=seed)
            rows.append(_row(cell, metric, float(np.nanmean(values)), lo, hi, subjects))
        matched_key = (*key[:4], key[5], key[5])
        if key[4] == key[5] or matched_key not in groups:
            continue
        matched = groups[matched_key].sort_values("index")
        if not np.array_equal(matched["index"].to_numpy(), group["index"].to_numpy()):
            raise ValueError(f"cell {key} and its matched cell score different test images")
        for metric in METRICS:
            est, lo, hi = paired_cluster_bootstrap_diff(
                group[metric].to_numpy(), matched[metric].to_numpy(), subjects, n_boot, seed
            )
            rows.append(_row(cell, metric + GAP, est, lo, hi, subjects))
    return pd.DataFrame(rows, columns=LONG_COLUMNS)


def _row(
    cell: dict[str, Any], metric: str, value: float, lo: float, hi: float, subjects: np.ndarray
) -> dict[str, Any]:
    return {
        **cell,
        "metric": metric,
        "value": value,
        "ci_low": lo,
        "ci_high": hi,
        "n_subjects": int(np.unique(subjects).size),
    }


def _cell_text(block: pd.DataFrame, metric: str, digits: int) -> str:
    """Seed mean of a metric, with its interval when there is one seed (sd over seeds else)."""
    if block.empty:
        return "–"
    values = block["value"].to_numpy(np.float64)
    text = f"{values.mean():+.{digits}f}" if metric.endswith(GAP) else f"{values.mean():.{digits}f}"
    if len(block) == 1 and np.isfinite(block["ci_low"].iloc[0]):
        return (
            f"{text} [{block['ci_low'].iloc[0]:.{digits}f}, {block['ci_high'].iloc[0]:.{digits}f}]"
        )
    if len(block) > 1:
        return f"{text} ± {values.std(ddof=1):.{digits}f}"
    return text


def markdown(long: pd.DataFrame, display: Mapping[str, str], metric: str = "psnr") -> str:
    """One table per (dataset, scale): rows method x train degradation, columns test
    degradations; each cell the score and, off the diagonal, the gap to the matched network."""
    if long.empty:
        return "No method was trained on more than one degradation.\n"
    digits = 2 if metric == "psnr" else 4
    parts = []
    for (dataset, scale), block in long.groupby(["dataset", "scale"], sort=False):
        tests = list(dict.fromkeys(block["test_degradation"]))
        n = int(block["n_subjects"].max())
        parts.append(f"### {dataset}, x{scale} ({metric.upper()}, {n} test subjects)\n")
        parts.append(
            "| method | trained on | " + " | ".join(f"tested on {t}" for t in tests) + " |"
        )
        parts.append("|---|---|" + "---|" * len(tests))
        for (method, train), rows in block.groupby(["method", "train_degradation"], sort=False):
            cells = []
            for test in tests:
                here = rows[rows["test_degradation"] == test]
                text = _cell_text(here[here["metric"] == metric], metric, digits)
                gap = here[here["metric"] == metric + GAP]
                if not gap.empty:
                    text += f"; {_cell_text(gap, metric + GAP, digits)} vs matched"
                cells.append(text)
            parts.append(f"| {display.get(method, method)} | {train} | " + " | ".join(cells) + " |")
        parts.append("")
    parts.append(
        f"Cells: mean {metric.upper()} over test images [95% interval resampling subjects]; "
        "with several seeds, the seed mean ± sd. Off the diagonal, '… vs matched' is the score "
        "minus that of the same method trained on the test images' own degradation, paired "
        "image by image and resampled by subject: an interval below 0 is a cost this test set "
        "resolves, one that includes 0 is not. Slices are not independent; intervals resample "
        "subjects.\n"
    )
    return "\n".join(parts)


def heatmap_figure(long: pd.DataFrame, dataset: str, display: Mapping[str, str]) -> Any:
    """The dataset's matrices, one panel per method: colour the PSNR gap to the matched network
    (0 on the diagonal), text the PSNR itself."""
    from matplotlib.figure import Figure

    block = long[long["dataset"] == dataset]
    methods = list(dict.fromkeys(block["method"]))
    scales = list(dict.fromkeys(block["scale"]))
    fig = Figure(figsize=(2.6 * max(len(methods), 1) + 0.8, 2.4 * max(len(scales), 1)))
    axes = fig.subplots(max(len(scales), 1), max(len(methods), 1), squeeze=False)
    gaps = block[block["metric"] == "psnr" + GAP]["value"]
    span = max(float(np.nanmax(np.abs(gaps))) if len(gaps) else 0.0, 0.1)
    image = None
    for r, scale in enumerate(scales):
        for c, method in enumerate(methods):
            ax = axes[r][c]
            here = block[(block["scale"] == scale) & (block["method"] == method)]
            trains = list(dict.fromkeys(here["train_degradation"]))
            tests = list(dict.fromkeys(here["test_degradation"]))
            colour = np.zeros((len(trains), len(tests)))
            for i, train in enumerate(trains):
                for j, test in enumerate(tests):
                    cell = here[
                        (here["train_degradation"] == train) & (here["test_degradation"] == test)
                    ]
                    psnr = cell[cell["metric"] == "psnr"]["value"].mean()
                    gap = cell[cell["metric"] == "psnr" + GAP]["value"].mean()
                    colour[i, j] = 0.0 if train == test or np.isnan(gap) else gap
                    dark = abs(colour[i, j]) > span / 2  # white text on the deep colours
                    ax.text(
                        j,
                        i,
                        f"{psnr:.2f}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if dark else "black",
                    )
            image = ax.imshow(colour, cmap="RdBu", vmin=-span, vmax=span)
            ax.set_xticks(range(len(tests)), tests, fontsize=7)
            ax.set_yticks(range(len(trains)), trains if c == 0 else [], fontsize=7)
            ax.set_title(f"{display.get(method, method)} (x{scale})", fontsize=9)
            if c == 0:
                ax.set_ylabel("trained on")
            if r == len(scales) - 1:
                ax.set_xlabel("tested on")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="PSNR minus matched (dB)")
    fig.suptitle(f"{dataset}: PSNR (dB) across degradations")
    return fig


def figure_stems(datasets: Sequence[str]) -> list[str]:
    """The figure of each dataset with more than one degradation."""
    return [f"cross_degradation_{d}" for d in datasets]


def cell_paths(settings: Mapping[str, Any]) -> dict[tuple[str, int, str, int, str, str], Path]:
    """Every cell's metrics file: datasets with more than one LR model (``settings``:
    ``degradations`` per dataset), the trained methods (``methods`` minus ``external``)."""
    results = settings["results_dir"]
    external = set(settings.get("external", ()))
    paths = {}
    for dataset, models in settings["degradations"].items():
        if dataset not in settings["datasets"] or len(models) < 2:
            continue
        for scale in settings["scales"]:
            for method, _ in settings["methods"]:
                if method in external:
                    continue
                for seed in settings["seeds"]:
                    for train in models:
                        sr = layout.sr_dir(results, dataset, scale, method, seed, train)
                        for test in models:
                            path = (
                                layout.sr_metrics_csv(sr)
                                if test == train
                                else layout.cross_metrics_csv(sr, test)
                            )
                            paths[(dataset, scale, method, seed, train, test)] = path
    return paths


def write_cross_table(
    settings: Mapping[str, Any], tables_dir: Path, figures_dir: Path
) -> pd.DataFrame:
    """table_cross_degradation.{csv,md} and a heat map per dataset (``figure_stems``)."""
    from srda.report.figures import save_figure

    paths = cell_paths(settings)
    missing = [p for p in paths.values() if not p.exists()]
    if missing:
        raise InputError(missing[0], "metrics file missing (did its scoring job run?)")
    long = cross_long(read_cells(paths), settings["bootstrap"])
    display = dict(settings["methods"])
    tables_dir.mkdir(parents=True, exist_ok=True)
    write_csv(tables_dir / f"{TABLE}.csv", long)
    title = "Cross-degradation: each method trained on one LR model, scored on each"
    text = "\n\n".join(markdown(long, display, metric) for metric in METRICS)
    (tables_dir / f"{TABLE}.md").write_text(f"## {title}\n\n{text}")
    datasets = list(dict.fromkeys(long["dataset"]))
    for dataset, stem in zip(datasets, figure_stems(datasets), strict=True):
        save_figure(heatmap_figure(long, dataset, display), figures_dir, stem)
    return long
