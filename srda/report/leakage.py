"""The leakage study: how much the paper's random split over slices inflates Table III.

The same classifiers (one per method's SR output and per reference row, the same recipe) are
trained and tested twice: under the subject split (no subject in two splits) and under the
paper's split over slices (a subject's slices spread over train, validation and test). Under
the second, a test slice's neighbours from the same subject were seen in training, so the
classifier may recognise the subject instead of the disease. The shuffled-label control shows
it plainly: its labels carry no disease at all (permuted by subject), so anything it scores
above chance is subject identity learned from the train split.

Outputs (``write_leakage``): ``leakage.csv`` (long: dataset, scale, seed, split_mode, method,
level, metric, value, ci_low, ci_high, n, n_subjects, leaked_subjects), ``leakage.md`` (per
dataset: each row under both splits and the inflation, slices minus subjects) and one figure.

Intervals are each run's bootstrap over its test subjects. The inflation's interval combines
the two in quadrature, a normal approximation for independent estimates: the two test sets
come from one cohort and overlap, so it is conservative (too wide), and it covers test
sampling only, not the classifier's training seed. It is descriptive, like every slice-level
number.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from srda import layout
from srda.diagnosis.metrics import evaluate_predictions
from srda.errors import InputError
from srda.reference_rows import REFERENCE_ROWS, table_order
from srda.report.table3 import SCORE_COLUMNS, read_row_predictions
from srda.shards import atomic_path, write_csv

logger = logging.getLogger(__name__)

SPLIT_MODES = ("subjects", "slices")
METRICS = ("acc", "balanced_acc")
COLUMNS = [
    "dataset",
    "scale",
    "seed",
    "split_mode",
    "method",
    *SCORE_COLUMNS,
    "leaked_subjects",
]
Z95 = 1.959963984540054


def leaked_subjects(results_dir: Path | str, dataset: str) -> int:
    """Test subjects with at least one slice in the train split (0 under the subject split)."""
    subjects = {}
    for split in ("train", "test"):
        path = layout.meta_csv(layout.data_dir(results_dir, dataset), split)
        if not path.exists():
            raise InputError(path, "split metadata missing (did the data stage run?)")
        subjects[split] = set(pd.read_csv(path, dtype={"subject": str})["subject"])
    return len(subjects["train"] & subjects["test"])


def score_run(run: dict[str, Any], settings: dict[str, Any], sources: list[str]) -> pd.DataFrame:
    """Accuracy and balanced accuracy of every source of one split mode's run."""
    frames_out = []
    read_settings = {
        "results_dir": run["results_dir"],
        "cross_fitted": run.get("cross_fitted", ()),
        "cross_fit": run.get("cross_fit", 0),
    }
    for dataset in settings["datasets"]:
        leaked = leaked_subjects(run["results_dir"], dataset)
        for scale in settings["scales"]:
            for seed in settings["seeds"]:
                frames, classes = read_row_predictions(read_settings, dataset, scale, seed, sources)
                for source, frame in frames.items():
                    scores = evaluate_predictions(frame, classes, n_boot=settings["bootstrap"])
                    scores = scores[scores["metric"].isin(METRICS)]
                    frames_out.append(
                        scores.assign(
                            dataset=dataset,
                            scale=scale,
                            seed=seed,
                            split_mode=run["split_mode"],
                            method=source,
                            leaked_subjects=leaked,
                        )
                    )
    return pd.concat(frames_out, ignore_index=True)


def leakage_table(settings: dict[str, Any]) -> pd.DataFrame:
    """The long table over both runs (``settings["runs"]``: split_mode, results_dir, ...)."""
    methods = [m for m, _ in settings["methods"]]
    sources = table_order(settings["rows"], methods)
    modes = [run["split_mode"] for run in settings["runs"]]
    if sorted(modes) != sorted(SPLIT_MODES):
        raise ValueError(f"leakage needs one run per split mode {SPLIT_MODES}, got {modes}")
    parts = [score_run(run, settings, sources) for run in settings["runs"]]
    long = pd.concat(parts, ignore_index=True)[COLUMNS]
    order = {mode: i for i, mode in enumerate(SPLIT_MODES)}
    long = long.sort_values(
        ["dataset", "scale", "seed", "split_mode", "level", "metric"],
        key=lambda col: col.map(order) if col.name == "split_mode" else col,
        kind="stable",
    )
    return long.reset_index(drop=True)


def inflation(long: pd.DataFrame) -> pd.DataFrame:
    """Slices minus subjects per (dataset, scale, seed, method, level, metric), with the two
    runs' intervals combined in quadrature. That treats the two estimates as independent;
    their test sets come from one cohort and overlap, so the estimates are positively
    correlated and the interval is conservative (too wide). It covers test sampling only,
    not the classifier's training seed. NaN where a run has no interval (``bootstrap: 0``)."""
    keys = ["dataset", "scale", "seed", "method", "level", "metric"]
    columns = ["value", "ci_low", "ci_high"]
    wide = (
        long.groupby([*keys, "split_mode"], sort=False)[columns]
        .first()
        .unstack("split_mode")
        .reindex(columns=pd.MultiIndex.from_product([columns, SPLIT_MODES]))
    )
    value = wide[("value", "slices")] - wide[("value", "subjects")]
    se = [(wide[("ci_high", mode)] - wide[("ci_low", mode)]) / (2 * Z95) for mode in SPLIT_MODES]
    half = Z95 * np.sqrt(se[0] ** 2 + se[1] ** 2)
    out = pd.DataFrame({"value": value, "ci_low": value - half, "ci_high": value + half})
    return out.reset_index()


# --------------------------------------------------------------------------------------------
# Rendering


def _cell(value: float, lo: float, hi: float, signed: bool = False) -> str:
    if not np.isfinite(value):
        return "-"
    fmt = "{:+.3f}" if signed else "{:.3f}"
    interval = f" [{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) and np.isfinite(hi) else ""
    return fmt.format(value) + interval


def render_markdown(long: pd.DataFrame, display: dict[str, str], n_classes: dict[str, int]) -> str:
    """Per dataset and scale: each row's accuracy per slice and balanced accuracy per subject
    under both splits, and the inflation."""
    gain = inflation(long)
    shown = [
        ("slice", "acc", "Accuracy per slice"),
        ("subject", "balanced_acc", "Balanced acc. per subject"),
    ]
    lines = ["## Leakage: the paper's split over slices beside the subject split", ""]
    for (dataset, scale), part in long.groupby(["dataset", "scale"], sort=False):
        leaked = part.groupby("split_mode")["leaked_subjects"].first()
        tested = part.groupby("split_mode")["n_subjects"].max()
        lines.append(
            f"### {dataset} x{scale}: {int(leaked.get('slices', 0))} of "
            f"{int(tested.get('slices', 0))} test subjects under the split over slices have "
            f"slices in train ({int(leaked.get('subjects', 0))} under the subject split)"
        )
        lines.append("")
        header = ["Row"]
        for _, _, title in shown:
            header += [f"{title}: subjects", "slices", "inflation"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        seeds = sorted(part["seed"].unique())
        for method in display:
            for seed in seeds:
                label = display[method] + (f" (seed {seed})" if len(seeds) > 1 else "")
                cells = [label]
                for level, metric, _ in shown:
                    pick = (part["method"] == method) & (part["seed"] == seed)
                    pick &= (part["level"] == level) & (part["metric"] == metric)
                    rows = part[pick].set_index("split_mode")
                    for mode in SPLIT_MODES:
                        r = rows.loc[mode] if mode in rows.index else None
                        cells.append("-" if r is None else _cell(r.value, r.ci_low, r.ci_high))
                    g = gain[
                        (gain["dataset"] == dataset)
                        & (gain["scale"] == scale)
                        & (gain["seed"] == seed)
                        & (gain["method"] == method)
                        & (gain["level"] == level)
                        & (gain["metric"] == metric)
                    ]
                    cells.append(
                        "-"
                        if g.empty
                        else _cell(*g[["value", "ci_low", "ci_high"]].iloc[0], signed=True)
                    )
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        if not leaked.any() and part["n"].max() == tested.max():
            lines.append(
                "One test image per subject: the split over slices is a split over subjects "
                "here, and the two runs coincide."
            )
        chance = 1 / n_classes[dataset]
        lines.append(
            f"Chance balanced accuracy is {chance:.3f} ({n_classes[dataset]} classes): the "
            f"shuffled-label row can only rise above it by recognising subjects."
        )
        lines.append("")
    lines.append(
        "Intervals: 95% bootstrap over each run's test subjects. Inflation: slices minus "
        "subjects; its interval combines the two in quadrature, as if independent (the test "
        "sets overlap, so it is conservative; test sampling only, not training seeds). "
        "Slice-level numbers are descriptive (slices of a subject are not independent). "
        "Same classifier recipe, same images, only the split differs."
    )
    return "\n".join(lines) + "\n"


def draw_leakage(long: pd.DataFrame, display: dict[str, str], n_classes: dict[str, int]):
    """One panel per dataset (first scale and seed): accuracy per slice (top) and balanced
    accuracy per subject (bottom) of each row under both splits."""
    from srda.report.figures import _figure, _styled

    @_styled
    def draw():
        datasets = list(dict.fromkeys(long["dataset"]))
        fig = _figure(3.2 * len(datasets) + 0.8, 5.2)
        axes = fig.subplots(2, len(datasets), squeeze=False, sharey="row")
        shown = [
            ("slice", "acc", "accuracy per slice"),
            ("subject", "balanced_acc", "balanced acc. per subject"),
        ]
        colours = {"subjects": "#1b6ca8", "slices": "#c0392b"}
        x = np.arange(len(display))
        for j, dataset in enumerate(datasets):
            part = long[long["dataset"] == dataset]
            part = part[
                (part["scale"] == part["scale"].min()) & (part["seed"] == part["seed"].min())
            ]
            for i, (level, metric, label) in enumerate(shown):
                ax = axes[i, j]
                for k, mode in enumerate(SPLIT_MODES):
                    rows = part[(part["split_mode"] == mode) & (part["level"] == level)]
                    rows = rows[rows["metric"] == metric].set_index("method").reindex(list(display))
                    err = np.vstack(
                        [rows["value"] - rows["ci_low"], rows["ci_high"] - rows["value"]]
                    )
                    ax.errorbar(
                        x + (k - 0.5) * 0.25,
                        rows["value"],
                        yerr=np.clip(np.nan_to_num(err), 0, None),
                        fmt="o",
                        color=colours[mode],
                        label=f"split over {mode}",
                        capsize=2,
                    )
                if metric == "balanced_acc":
                    ax.axhline(1 / n_classes[dataset], color="grey", ls="--", lw=0.8)
                ax.set_xticks(x, list(display.values()), rotation=45, ha="right")
                ax.set_ylim(0, 1.02)
                if i == 0:
                    ax.set_title(dataset)
                if j == 0:
                    ax.set_ylabel(label)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=2)
        fig.suptitle("Leakage: the paper's split over slices against the subject split")
        return fig

    return draw()


def write_leakage(settings: dict[str, Any], tables_dir: Path, figures_dir: Path) -> pd.DataFrame:
    """``leakage.csv`` and ``leakage.md`` in ``tables_dir``, ``leakage.{png,pdf}`` in
    ``figures_dir``."""
    import json

    from srda.report.figures import save_figure

    long = leakage_table(settings)
    names = {**{r: REFERENCE_ROWS[r].display for r in REFERENCE_ROWS}, **dict(settings["methods"])}
    display = {
        s: names[s] for s in table_order(settings["rows"], [m for m, _ in settings["methods"]])
    }
    main = settings["runs"][0]["results_dir"]
    n_classes = {
        d: len(json.loads(layout.dataset_json(layout.data_dir(main, d)).read_text())["classes"])
        for d in settings["datasets"]
    }
    tables_dir.mkdir(parents=True, exist_ok=True)
    write_csv(tables_dir / "leakage.csv", long)
    md = render_markdown(long, display, n_classes)
    with atomic_path(tables_dir / "leakage.md") as tmp:
        tmp.write_text(md)
    logger.info("%s", md)
    save_figure(draw_leakage(long, display, n_classes), figures_dir, "leakage")
    return long
