"""Tables in long (tidy) form, and their Markdown / LaTeX renderings in the paper's layout.

Long form: dataset, scale, method, seed, level, metric, value, ci_low, ci_high, n_subjects,
p_value, p_holm. ``level`` is ``image`` (the mean over test images, as the paper) or ``volume``
(one value per subject: PSNR of the subject's pooled squared error, SSIM of its pooled map;
3D sets only). Intervals resample subjects. ``p_value``: paired two-sided Wilcoxon signed-rank
test of the reference method (SRDA) against the row's method on per-subject values (subject
means at the image level), same seed; ``p_holm``: Holm's adjustment across the methods
compared on that (dataset, scale, seed, level, metric). Rendered tables put methods in rows and
datasets as column groups, average seeds (mean +- sd when more than one) and set the best value
of each column in bold.

Convergence marks: where the long table has a ``converged`` column (``srda.report.convergence``),
a row whose run was still improving on any dataset or seed shown has a dagger after its name,
a bold value of such a (dataset, method) keeps its dagger too (the best of a column that may
still change with more training), and the block gets a footnote explaining the dagger. Rows
that were not trained or are too short to judge (``converged`` empty) are not marked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from srda.stats import cluster_bootstrap_ci, holm, wilcoxon_paired

KEYS = ["dataset", "scale", "method", "seed"]
LONG_COLUMNS = [
    *KEYS,
    "level",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "n_subjects",
    "p_value",
    "p_holm",
]
METRIC_NAMES = {
    "psnr": "PSNR",
    "ssim": "SSIM",
    "acc": "ACC",
    "balanced_acc": "BACC",
    "macro_f1": "F1",
    "auc": "AUC",
}
REFERENCE = "srda"
DAGGER = "†"
LATEX_DAGGER = "$^\\dagger$"
UNFINISHED_NOTE = "† still improving when its budget ran out (the long CSV's `converged`)."


def metric_name(metric: str) -> str:
    """Header text: 'psnr_hippocampus' -> 'hippocampus PSNR'."""
    if metric in METRIC_NAMES:
        return METRIC_NAMES[metric]
    head, _, region = metric.partition("_")
    return f"{region.replace('_', ' ')} {METRIC_NAMES.get(head, head)}"


def volume_level(per_image: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, scale, method, seed, subject): PSNR from the subject's pooled mean
    squared error (images have equal size; data range 1), SSIM and other metrics averaged."""
    frame = per_image.copy()
    metrics = [c for c in frame.columns if c.startswith(("psnr", "ssim"))]
    for m in metrics:
        if m.startswith("psnr"):
            frame[m] = np.power(10.0, -frame[m] / 10.0)  # back to MSE
    out = frame.groupby([*KEYS, "subject"], sort=False)[metrics].mean().reset_index()
    for m in metrics:
        if m.startswith("psnr"):
            with np.errstate(divide="ignore"):
                out[m] = -10.0 * np.log10(out[m])
    return out


def summarise(
    per_image: pd.DataFrame,
    metrics: list[str],
    n_boot: int,
    seed: int = 0,
    level: str = "image",
) -> pd.DataFrame:
    """Mean of each metric per (dataset, scale, method, seed) with a subject-bootstrap 95% CI
    (p-value columns empty: ``add_paired_tests`` fills them)."""
    rows = []
    for key, group in per_image.groupby(KEYS, sort=False):
        subjects = group["subject"].to_numpy()
        for metric in metrics:
            values = group[metric].to_numpy(dtype=np.float64)
            lo, hi = cluster_bootstrap_ci(values, subjects, n_boot=n_boot, seed=seed)
            finite = np.isfinite(values)
            rows.append(
                {
                    **dict(zip(KEYS, key, strict=True)),
                    "level": level,
                    "metric": metric,
                    "value": float(np.mean(values[finite])) if finite.any() else float("nan"),
                    "ci_low": lo,
                    "ci_high": hi,
                    "n_subjects": int(np.unique(subjects[finite]).size),
                    "p_value": float("nan"),
                    "p_holm": float("nan"),
                }
            )
    return pd.DataFrame(rows, columns=LONG_COLUMNS)


def paired_tests(
    per_image: pd.DataFrame, metrics: list[str], reference: str = REFERENCE
) -> pd.DataFrame:
    """Wilcoxon p-values of ``reference`` against every other method on per-subject means,
    Holm-adjusted across methods: columns dataset, scale, method, seed, metric, p_value,
    p_holm (empty when the reference was not run)."""
    rows = []
    for (dataset, scale, seed), group in per_image.groupby(
        ["dataset", "scale", "seed"], sort=False
    ):
        means = group.groupby(["method", "subject"])[metrics].mean()
        if reference not in means.index.get_level_values("method"):
            continue
        ref = means.loc[reference]
        others = [m for m in group["method"].unique() if m != reference]
        for metric in metrics:
            p = []
            for method in others:
                mine = means.loc[method][metric].reindex(ref.index)
                p.append(wilcoxon_paired(ref[metric].to_numpy(), mine.to_numpy()))
            adjusted = holm(np.array(p)) if p else np.array([])
            for method, pv, ph in zip(others, p, adjusted, strict=True):
                rows.append(
                    {
                        "dataset": dataset,
                        "scale": scale,
                        "method": method,
                        "seed": seed,
                        "metric": metric,
                        "p_value": pv,
                        "p_holm": float(ph),
                    }
                )
    return pd.DataFrame(rows, columns=[*KEYS, "metric", "p_value", "p_holm"])


def add_paired_tests(long: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """Fill ``p_value`` / ``p_holm`` of ``long``'s rows from ``paired_tests`` output."""
    if tests.empty:
        return long
    keyed = tests.set_index([*KEYS, "metric"])
    out = long.copy()
    index = pd.MultiIndex.from_frame(out[[*KEYS, "metric"]])
    out["p_value"] = keyed["p_value"].reindex(index).to_numpy()
    out["p_holm"] = keyed["p_holm"].reindex(index).to_numpy()
    return out


def summarise_with_tests(
    per_image: pd.DataFrame, metrics: list[str], n_boot: int, level: str = "image"
) -> pd.DataFrame:
    return add_paired_tests(
        summarise(per_image, metrics, n_boot, level=level), paired_tests(per_image, metrics)
    )


def _cell(values: pd.Series, digits: int) -> str:
    mean = values.mean()
    if len(values) > 1:
        return f"{mean:.{digits}f} ± {values.std(ddof=1):.{digits}f}"
    return f"{mean:.{digits}f}"


def _p_cell(values: pd.Series) -> str:
    p = values.max()  # over seeds: the least significant
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def unfinished(long: pd.DataFrame, scale: int, level: str | None = None) -> set[tuple[str, str]]:
    """(dataset, method) pairs of one scale (and level) with a run flagged ``converged`` False
    on any seed (none when the table has no ``converged`` column)."""
    if "converged" not in long:
        return set()
    part = long[long["scale"] == scale]
    if level is not None and "level" in part:
        part = part[part["level"] == level]
    flagged = part[part["converged"].astype("boolean").eq(False).fillna(False).to_numpy(bool)]
    return set(zip(flagged["dataset"], flagged["method"], strict=True))


def _marked(methods: list[str], datasets: list[str], flags: set[tuple[str, str]]) -> set[str]:
    return {m for m in methods if any((d, m) in flags for d in datasets)}


def wide(
    long: pd.DataFrame,
    display: dict[str, str],
    datasets: list[str],
    metrics: list[str],
    scale: int,
    latex: bool = False,
    level: str | None = None,
    column: str = "value",
    bold_best: bool = True,
    boldable: dict[str, set[str]] | None = None,
) -> list[list[str]]:
    """Rows of cells for one scale (and level): header row, then one row per method, the best
    of each column in bold. ``column``: ``value`` or a p-value column (then not bolded).
    ``boldable``: per dataset, the only rows that may be bold (the best of them); a dataset
    missing from it gets no bold at all (Table III: no winner the tests cannot resolve).
    A method still improving on a dataset shown gets a dagger after its name, and after a
    bold value of that dataset (``unfinished``)."""
    part = long[long["scale"] == scale]
    if level is not None and "level" in part:
        part = part[part["level"] == level]
    methods = [m for m in display if m in set(part["method"])]
    flags = unfinished(long, scale, level)
    dagger = LATEX_DAGGER if latex else DAGGER
    marked = _marked(methods, datasets, flags)
    header = ["Method"] + [f"{d} {metric_name(m)}" for d in datasets for m in metrics]
    body = [[display[m] + (dagger if m in marked else "")] for m in methods]
    for d in datasets:
        for metric in metrics:
            digits = 2 if metric.startswith("psnr") else 4
            sel = part[(part["dataset"] == d) & (part["metric"] == metric)]
            means = sel.groupby("method")[column].mean()
            if boldable is not None:
                means = means[means.index.isin(boldable.get(d, set()))]
            # every method that ties for the best is bold (a vote over 9 subjects ties often)
            top = means.max() if len(means) and means.notna().any() else None
            best = set() if top is None else set(means.index[np.isclose(means, top, rtol=0)])
            for row, m in zip(body, methods, strict=True):
                values = sel.loc[sel["method"] == m, column].dropna()
                if values.empty:
                    row.append("–")
                    continue
                text = _cell(values, digits) if column == "value" else _p_cell(values)
                several = len(means) > 1 or boldable is not None
                if bold_best and column == "value" and m in best and several:
                    text = f"\\textbf{{{text}}}" if latex else f"**{text}**"
                    text += dagger if (d, m) in flags else ""
                row.append(text.replace("±", "$\\pm$") if latex else text)
    return [header, *body]


def to_markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines) + "\n"


def to_latex(rows: list[list[str]], caption: str, footnote: str = "") -> str:
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
    out += ["\\hline", "\\end{tabular}"]
    if footnote:
        text = footnote.replace("`", "").replace("_", "\\_").replace(DAGGER, LATEX_DAGGER)
        out += ["\\par\\smallskip", f"{{\\footnotesize {text}}}"]
    out.append("\\end{table}")
    return "\n".join(out) + "\n"


def render_blocks(
    long: pd.DataFrame,
    display: dict[str, str],
    datasets: list[str],
    blocks: list[dict],
    unfinished_note: str = UNFINISHED_NOTE,
) -> tuple[str, str]:
    """Markdown and LaTeX of several views of a long table, one set per scale. Each block:
    ``title``, ``metrics``, optional ``level``, ``column`` (value | p_value | p_holm), ``note``,
    ``boldable`` (see ``wide``). ``unfinished_note``: the footnote under a block that marks a
    row as still improving (its rule)."""
    md, tex = [], []
    for scale in sorted(long["scale"].unique()):
        for block in blocks:
            args = (display, datasets, block["metrics"], scale)
            kw = {
                "level": block.get("level"),
                "column": block.get("column", "value"),
                "boldable": block.get("boldable"),
            }
            rows = wide(long, *args, **kw)
            if len(rows) == 1:
                continue
            note = f"\n{block['note']}\n" if block.get("note") else ""
            shown = [m for m in display if m in set(long["method"])]
            flags = unfinished(long, scale, block.get("level"))
            footnote = unfinished_note if _marked(shown, datasets, flags) else ""
            md.append(
                f"### {block['title']}, x{scale}\n{note}\n"
                + to_markdown(rows)
                + (f"\n{footnote}\n" if footnote else "")
            )
            tex.append(
                to_latex(
                    wide(long, *args, latex=True, **kw),
                    f"{block['title']}, $\\times${scale}",
                    footnote,
                )
            )
    return "\n".join(md), "\n".join(tex)


def render(
    long: pd.DataFrame,
    display: dict[str, str],
    datasets: list[str],
    metrics: list[str],
    title: str,
    level: str | None = None,
) -> tuple[str, str]:
    """Markdown and LaTeX of a long table, one block per scale."""
    return render_blocks(
        long, display, datasets, [{"title": title, "metrics": metrics, "level": level}]
    )
