"""Write the tables from what the method and diagnosis jobs leave behind.

Each table is a long CSV (one row per dataset, scale, method, seed, level, metric) plus
Markdown and LaTeX in the paper's layout, and, where the paper reports the table, a
``*_vs_paper`` version with our value beside the paper's. Every row carries ``converged`` and
``last_quarter_gain`` from its training log (``srda.report.convergence``; empty for methods
that are not trained), and the renderings mark rows still improving with a dagger.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from srda import layout
from srda.errors import InputError
from srda.report import ABLATIONS, convergence, table3
from srda.report.tables import (
    KEYS,
    REFERENCE,
    render_blocks,
    summarise,
    summarise_with_tests,
    volume_level,
)
from srda.shards import write_csv

logger = logging.getLogger(__name__)

#: Where the reported numbers of the paper live (typed out from its text).
PAPER_TABLES = Path(__file__).resolve().parents[2] / "results" / "paper" / "reported_tables.csv"
P_NOTE_T1 = (
    "Paired two-sided Wilcoxon signed-rank test of SRDA against each method on per-subject "
    "mean values (same seed), Holm-adjusted across methods."
)


# --------------------------------------------------------------------------------------------
# Inputs


def collect(settings: dict[str, Any], methods: list[str]) -> pd.DataFrame:
    """Per-image test metrics of every (dataset, scale, method, seed) asked for."""
    frames = []
    for dataset in settings["datasets"]:
        for scale in settings["scales"]:
            for method in methods:
                for seed in settings["seeds"]:
                    sr = layout.sr_dir(
                        settings["results_dir"], dataset, scale, method, seed, _model(settings)
                    )
                    path = layout.sr_metrics_csv(sr)
                    if not path.exists():
                        raise InputError(path, "metrics file missing (did the method's job run?)")
                    frame = pd.read_csv(path, dtype={"subject": str})
                    frames.append(
                        frame.assign(dataset=dataset, scale=scale, method=method, seed=seed)
                    )
    return pd.concat(frames, ignore_index=True)


def sr_verdicts(settings: dict[str, Any], methods: list[str]) -> pd.DataFrame:
    """Convergence of every (dataset, scale, method, seed) asked for, from its SR log."""
    keys = [
        (dataset, scale, method, seed)
        for dataset in settings["datasets"]
        for scale in settings["scales"]
        for method in methods
        for seed in settings["seeds"]
    ]
    return convergence.sr_convergence(settings["results_dir"], keys, _model(settings))


def _model(settings: dict[str, Any]) -> str:
    """The LR model a table's settings are for (``per_model``; bicubic when unsaid)."""
    return settings.get("degradation", layout.BICUBIC)


def per_model(settings: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(LR model, the table settings for it) of every model run, bicubic (the paper's) first:
    the datasets that have it, and outside tools only on bicubic (they see its images only)."""
    models = settings.get("degradations") or {d: [layout.BICUBIC] for d in settings["datasets"]}
    names = list(dict.fromkeys(m for d in settings["datasets"] for m in models[d]))
    names.sort(key=lambda m: m != layout.BICUBIC)
    external = set(settings.get("external", ()))
    out = []
    for model in names:
        methods = [pair for pair in settings["methods"]]
        if model != layout.BICUBIC:
            methods = [pair for pair in methods if pair[0] not in external]
        datasets = [d for d in settings["datasets"] if model in models[d]]
        out.append(
            (model, {**settings, "degradation": model, "datasets": datasets, "methods": methods})
        )
    return out


def with_model(long: pd.DataFrame, model: str) -> pd.DataFrame:
    """A long table with its ``degradation`` column (the LR model trained on) after scale."""
    out = long.copy()
    out.insert(list(out.columns).index("scale") + 1, "degradation", model)
    return out


def model_title(title: str, model: str) -> str:
    """A table's title for the networks trained on ``model`` (the paper's title for bicubic)."""
    return title if model == layout.BICUBIC else f"{title} (LR model: {model})"


def _display(settings: dict[str, Any]) -> dict[str, str]:
    """Method key -> display name, in table order (given as pairs: JSON keeps list order)."""
    return dict(settings["methods"])


def _multi_image_subjects(per_image: pd.DataFrame) -> pd.DataFrame:
    """Rows of the datasets whose subjects have several images (3D sets: a volume level)."""
    counts = per_image.groupby(["dataset", "scale", "method", "seed", "subject"]).size()
    multi = counts[counts > 1].reset_index()["dataset"].unique()
    return per_image[per_image["dataset"].isin(multi)]


# --------------------------------------------------------------------------------------------
# Tables I and II (PSNR / SSIM), and the ROI table


def psnr_ssim_long(per_image: pd.DataFrame, n_boot: int) -> pd.DataFrame:
    """Image level for every dataset, volume level for 3D sets, each with its paired tests."""
    parts = [summarise_with_tests(per_image, ["psnr", "ssim"], n_boot, level="image")]
    multi = _multi_image_subjects(per_image)
    if not multi.empty:
        volumes = volume_level(multi[[*KEYS, "subject", "psnr", "ssim"]])
        parts.append(summarise_with_tests(volumes, ["psnr", "ssim"], n_boot, level="volume"))
    return pd.concat(parts, ignore_index=True)


def _write(out_dir: Path, stem: str, long: pd.DataFrame, md: str, tex: str, title: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(out_dir / f"{stem}.csv", long)
    (out_dir / f"{stem}.md").write_text(f"## {title}\n\n{md}")
    (out_dir / f"{stem}.tex").write_text(tex)
    logger.info("%s:\n%s", title, md)


def _psnr_ssim_blocks(title: str, with_tests: bool) -> list[dict]:
    blocks = [{"title": title, "metrics": ["psnr", "ssim"], "level": "image"}]
    blocks.append(
        {
            "title": f"{title}, per volume",
            "metrics": ["psnr", "ssim"],
            "level": "volume",
            "note": "One value per test subject: PSNR of its pooled squared error, mean SSIM.",
        }
    )
    if with_tests:
        blocks.append(
            {
                "title": "SRDA against each method: Holm-adjusted p-values",
                "metrics": ["psnr", "ssim"],
                "level": "image",
                "column": "p_holm",
                "note": P_NOTE_T1,
            }
        )
    return blocks


#: Tables I and II: the stem of their files and their title.
PSNR_SSIM_TABLES = {
    "I": ("table1_psnr_ssim", "Table I: PSNR / SSIM on the test split"),
    "II": ("table2_ablation", "Table II: ablation of SRDA's parts (PSNR / SSIM)"),
}


def _write_psnr_ssim(
    parts: list[tuple[str, dict[str, Any], pd.DataFrame]],
    table: str,
    display: dict[str, str],
    out: Path,
) -> pd.DataFrame:
    """Table I or II in ``out`` from its long table per LR model (``parts``: model, its
    settings, long): the long CSV with its ``degradation`` column, Markdown and LaTeX one
    section per model, and the ``_vs_paper`` version of the paper's (bicubic) networks."""
    stem, title = PSNR_SSIM_TABLES[table]
    mds, texs = [], []
    for model, settings, long in parts:
        md, tex = render_blocks(
            long,
            display,
            settings["datasets"],
            _psnr_ssim_blocks(model_title(title, model), REFERENCE in display),
            unfinished_note=convergence.SR_NOTE,
        )
        mds.append(md)
        texs.append(tex)
    combined = pd.concat([with_model(long, model) for model, _, long in parts], ignore_index=True)
    _write(out, stem, combined, "\n".join(mds), "\n".join(texs), title)
    model, settings, long = parts[0]
    if model == layout.BICUBIC:
        write_vs_paper(long, table, display, settings, out / f"{stem}_vs_paper")
    return combined


def write_table1(settings: dict[str, Any], out_dir: Path) -> pd.DataFrame:
    """table1_psnr_ssim (long CSV, .md, .tex), its ``_vs_paper`` version, and table_roi;
    one section per LR model (config ``degradations``)."""
    parts, roi_parts = [], []
    for model, sub in per_model(settings):
        display = _display(sub)
        per_image = collect(sub, list(display))
        verdicts = sr_verdicts(sub, list(display))
        long = convergence.attach(psnr_ssim_long(per_image, sub["bootstrap"]), verdicts)
        parts.append((model, sub, long))
        roi_parts.append((model, sub, per_image, verdicts))
    long = _write_psnr_ssim(parts, "I", _display(settings), out_dir)
    write_roi_table(roi_parts, _display(settings), out_dir)
    return long


def write_table2(settings: dict[str, Any], out_dir: Path) -> pd.DataFrame:
    """table2_ablation: the ablation rows (SR, +Dconv, +Diag, +Atten) per dataset."""
    methods = [m for m in ABLATIONS if m in _display(settings)]
    if not methods:
        raise InputError("run_methods", f"Table II needs some of {', '.join(ABLATIONS)}")
    display = {m: ABLATIONS[m] for m in methods}
    parts = []
    for model, sub in per_model(settings):
        long = psnr_ssim_long(collect(sub, methods), sub["bootstrap"])
        parts.append((model, sub, convergence.attach(long, sr_verdicts(sub, methods))))
    return _write_psnr_ssim(parts, "II", display, out_dir)


def roi_metrics(per_image: pd.DataFrame) -> list[str]:
    return [c for c in per_image.columns if c.startswith(("psnr_", "ssim_"))]


def write_roi_table(
    parts: list[tuple[str, dict[str, Any], pd.DataFrame, pd.DataFrame]],
    display: dict[str, str],
    out_dir: Path,
) -> pd.DataFrame:
    """table_roi_psnr_ssim: PSNR / SSIM inside each labelled region, over the images that
    show it, one section per LR model (``parts``: model, its settings, per-image scores and
    the methods' convergence, as ``write_table1`` gathers them); written empty, with a note,
    when no dataset has ROI masks."""
    title = "PSNR / SSIM inside the diagnosis-relevant regions"
    longs, mds, texs = [], [], []
    for model, settings, per_image, verdicts in parts:
        metrics = roi_metrics(per_image)
        if not metrics:
            long = pd.DataFrame(columns=summarise(per_image.iloc[:0], [], 0).columns)
            longs.append(with_model(convergence.attach(long, verdicts), model))
            continue
        long = summarise_with_tests(per_image, metrics, settings["bootstrap"], level="image")
        long = long[long["n_subjects"] > 0].reset_index(drop=True)  # datasets without masks
        long = convergence.attach(long, verdicts)
        regions = list(dict.fromkeys(m.split("_", 1)[1] for m in metrics))
        blocks = [
            {
                "title": model_title(f"{title}: {r.replace('_', ' ')}", model),
                "metrics": [f"psnr_{r}", f"ssim_{r}"],
            }
            for r in regions
        ]
        md, tex = render_blocks(
            long, display, settings["datasets"], blocks, unfinished_note=convergence.SR_NOTE
        )
        longs.append(with_model(long, model))
        mds.append(md)
        texs.append(tex)
    long = pd.concat(longs, ignore_index=True)
    if not mds:
        md = "No dataset has region masks (set `masks` for real data).\n"
        _write(out_dir, "table_roi_psnr_ssim", long, md, "", title)
        return long
    _write(out_dir, "table_roi_psnr_ssim", long, "\n".join(mds), "\n".join(texs), title)
    return long


# --------------------------------------------------------------------------------------------
# Table III (diagnosis): srda.report.table3

write_table3 = table3.write_table3


# --------------------------------------------------------------------------------------------
# Beside the paper


def read_paper(path: Path = PAPER_TABLES) -> pd.DataFrame:
    if not path.exists():
        raise InputError(path, "the paper's reported tables are missing")
    return pd.read_csv(path)


def vs_paper(
    long: pd.DataFrame,
    table: str,
    display: dict[str, str],
    paper_names: dict[str, str | None],
    paper: pd.DataFrame,
    paper_rows: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Our image/slice-level values (mean over seeds, with the first seed's interval) beside
    the paper's: dataset, scale, method, metric, ours, ci_low, ci_high, paper, difference.
    ``paper_rows``: the paper's name of a row where it differs from ours (lr_native: LR)."""
    paper_rows = paper_rows or {}
    level = "slice" if table == "III" else "image"
    ours = long[(long["level"] == level) & long["method"].isin(list(display))]
    if table == "III":
        ours = ours[ours["metric"] == "acc"]
    else:
        ours = ours[ours["metric"].isin(["psnr", "ssim"])]
    grouped = ours.groupby(["dataset", "scale", "method", "metric"], sort=False)
    rows = []
    reported = paper[paper["table"] == table]
    for (dataset, scale, method, metric), group in grouped:
        name = paper_names.get(dataset)
        hit = reported[
            (reported["dataset"] == name)
            & (reported["method"] == paper_rows.get(method, display[method]))
            & (reported["metric"].str.lower() == metric)
        ]
        paper_value = float(hit["value"].iloc[0]) if len(hit) else float("nan")
        value = float(group["value"].mean())
        rows.append(
            {
                "dataset": dataset,
                "scale": scale,
                "method": method,
                "metric": metric,
                "ours": value,
                "ci_low": float(group["ci_low"].iloc[0]),
                "ci_high": float(group["ci_high"].iloc[0]),
                "paper": paper_value,
                "difference": value - paper_value,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "dataset",
            "scale",
            "method",
            "metric",
            "ours",
            "ci_low",
            "ci_high",
            "paper",
            "difference",
        ],
    )


def _flagged(long: pd.DataFrame) -> set[tuple[str, int, str]]:
    """(dataset, scale, method) of the runs flagged as still improving (any seed)."""
    if "converged" not in long:
        return set()
    rows = long[long["converged"].astype("boolean").eq(False).fillna(False).to_numpy(bool)]
    return set(zip(rows["dataset"], rows["scale"].astype(int), rows["method"], strict=True))


def _comparability(datasets: list[str], synthetic: Sequence[str] | None) -> str:
    """What a reader may compare with the paper, by where each dataset's images came from."""
    drawn = [d for d in datasets if synthetic is None or d in synthetic]
    if drawn and len(drawn) == len(datasets):
        return "The embedded cohort is synthetic, so only the ordering of methods is comparable."
    real = (
        "Your data are not the paper's subjects, split or training budget: set magnitudes "
        "side by side with care."
    )
    if not drawn:
        return real
    return (
        f"{', '.join(drawn)}: the embedded cohort, synthetic, so only the ordering of methods "
        f"is comparable there. {real}"
    )


def _vs_paper_markdown(
    frame: pd.DataFrame,
    display: dict[str, str],
    title: str,
    flagged: set[tuple[str, int, str]] | None = None,
    note: str = "",
    synthetic: Sequence[str] | None = None,
) -> str:
    """The side-by-side in Markdown; a method still improving on a dataset (``flagged``) gets
    a dagger there, explained by ``note`` under the tables. ``synthetic``: the datasets drawn
    from the embedded cohort (None: all of them)."""
    flagged = flagged or set()
    lines = [f"## {title}", ""]
    lines.append(
        "Ours: this run (95% interval resampling subjects). Paper: the value it reports for "
        "the dataset it names (`paper_name` of each dataset); – where it reports none. "
        + _comparability(list(dict.fromkeys(frame["dataset"])), synthetic)
    )
    for (dataset, scale), part in frame.groupby(["dataset", "scale"], sort=False):
        metrics = list(dict.fromkeys(part["metric"]))
        head = ["Method"] + [
            f"{metric.upper()} {w}" for metric in metrics for w in ("ours", "paper")
        ]
        lines += ["", f"### {dataset}, x{scale}", "", "| " + " | ".join(head) + " |"]
        lines.append("|" + "---|" * len(head))
        for method in [m for m in display if m in set(part["method"])]:
            mark = "†" if (dataset, int(scale), method) in flagged else ""
            cells = [display[method] + mark]
            for metric in metrics:
                row = part[(part["method"] == method) & (part["metric"] == metric)].iloc[0]
                digits = 2 if metric == "psnr" else 4
                ci = (
                    f" [{row['ci_low']:.{digits}f}, {row['ci_high']:.{digits}f}]"
                    if np.isfinite(row["ci_low"])
                    else ""
                )
                cells.append(f"{row['ours']:.{digits}f}{ci}")
                cells.append(f"{row['paper']:.{digits}f}" if np.isfinite(row["paper"]) else "–")
            lines.append("| " + " | ".join(cells) + " |")
    shown = frame[["dataset", "scale", "method"]].itertuples(index=False)
    if note and flagged & {(d, int(sc), m) for d, sc, m in shown}:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def write_vs_paper(
    long: pd.DataFrame,
    table: str,
    display: dict[str, str],
    settings: dict[str, Any],
    stem: Path,
    paper_rows: dict[str, str] | None = None,
) -> pd.DataFrame:
    """``{stem}.csv`` and ``{stem}.md``: our numbers beside the paper's Table ``table``."""
    paper_names = settings.get("paper_names", {})
    paper = read_paper(Path(settings.get("paper_tables") or PAPER_TABLES))
    frame = vs_paper(long, table, display, paper_names, paper, paper_rows)
    write_csv(stem.with_suffix(".csv"), frame)
    title = f"Table {table} beside the paper's"
    note = convergence.CLASSIFIER_NOTE if table == "III" else convergence.SR_NOTE
    stem.with_suffix(".md").write_text(
        _vs_paper_markdown(frame, display, title, _flagged(long), note, settings.get("synthetic"))
    )
    return frame
