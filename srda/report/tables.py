"""Tables in long (tidy) form, and their Markdown / LaTeX renderings in the paper's layout.

Long form: dataset, scale, method, seed, metric, value, ci_low, ci_high. Rendered tables put
methods in rows and datasets as column groups, average seeds (mean +- sd when more than one)
and set the best value of each column in bold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from srda.stats import cluster_bootstrap_ci

LONG_COLUMNS = ["dataset", "scale", "method", "seed", "metric", "value", "ci_low", "ci_high"]
METRIC_NAMES = {
    "psnr": "PSNR",
    "ssim": "SSIM",
    "acc": "ACC",
    "balanced_acc": "BACC",
    "macro_f1": "F1",
    "auc": "AUC",
}


def metrics_path(results_dir: Path | str, dataset: str, scale: int, method: str, seed: int) -> Path:
    return (
        Path(results_dir)
        / dataset
        / f"x{scale}"
        / "sr"
        / method
        / f"seed{seed}"
        / "test_metrics.csv"
    )


def summarise(
    per_image: pd.DataFrame, metrics: list[str], n_boot: int, seed: int = 0
) -> pd.DataFrame:
    """Mean of each metric per (dataset, scale, method, seed) with a subject-bootstrap 95% CI."""
    rows = []
    keys = ["dataset", "scale", "method", "seed"]
    for key, group in per_image.groupby(keys, sort=False):
        for metric in metrics:
            lo, hi = cluster_bootstrap_ci(
                group[metric].to_numpy(), group["subject"].to_numpy(), n_boot=n_boot, seed=seed
            )
            rows.append(
                {
                    **dict(zip(keys, key, strict=True)),
                    "metric": metric,
                    "value": float(np.nanmean(group[metric])),
                    "ci_low": lo,
                    "ci_high": hi,
                }
            )
    return pd.DataFrame(rows, columns=LONG_COLUMNS)


def _cell(values: pd.Series, digits: int) -> str:
    mean = values.mean()
    if len(values) > 1:
        return f"{mean:.{digits}f} ± {values.std(ddof=1):.{digits}f}"
    return f"{mean:.{digits}f}"


def wide(
    long: pd.DataFrame,
    display: dict[str, str],
    datasets: list[str],
    metrics: list[str],
    scale: int,
    latex: bool = False,
) -> list[list[str]]:
    """Rows of cells for one scale: header row, then one row per method, best in bold."""
    part = long[long["scale"] == scale]
    methods = [m for m in display if m in set(part["method"])]
    header = ["Method"] + [f"{d} {METRIC_NAMES.get(m, m)}" for d in datasets for m in metrics]
    body = [[display[m]] for m in methods]
    for d in datasets:
        for metric in metrics:
            digits = 2 if metric == "psnr" else 4
            sel = part[(part["dataset"] == d) & (part["metric"] == metric)]
            means = sel.groupby("method")["value"].mean()
            best = means.idxmax() if len(means) else None
            for row, m in zip(body, methods, strict=True):
                values = sel.loc[sel["method"] == m, "value"]
                if values.empty:
                    row.append("–")
                    continue
                text = _cell(values, digits)
                if m == best and len(means) > 1:
                    text = f"\\textbf{{{text}}}" if latex else f"**{text}**"
                row.append(text.replace("±", "$\\pm$") if latex else text)
    return [header, *body]


def to_markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines) + "\n"


def to_latex(rows: list[list[str]], caption: str) -> str:
    cols = "l" + "c" * (len(rows[0]) - 1)
    out = [
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{caption}}}",
        f"\\begin{{tabular}}{{{cols}}}",
        "\\hline",
        " & ".join(rows[0]) + " \\\\",
        "\\hline",
    ]
    out += [" & ".join(r) + " \\\\" for r in rows[1:]]
    out += ["\\hline", "\\end{tabular}", "\\end{table}"]
    return "\n".join(out) + "\n"


def render(
    long: pd.DataFrame, display: dict[str, str], datasets: list[str], metrics: list[str], title: str
) -> tuple[str, str]:
    """Markdown and LaTeX of a long table, one block per scale."""
    md, tex = [], []
    for scale in sorted(long["scale"].unique()):
        rows = wide(long, display, datasets, metrics, scale)
        md.append(f"### {title}, x{scale}\n\n" + to_markdown(rows))
        tex.append(
            to_latex(
                wide(long, display, datasets, metrics, scale, latex=True),
                f"{title}, $\\times${scale}",
            )
        )
    return "\n".join(md), "\n".join(tex)
