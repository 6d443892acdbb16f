#!/usr/bin/env python3
"""Table III's headroom (HR - Bicubic) from the HR and Bicubic classifiers alone.

    python scripts/headroom_probe.py /work/probe15/x8 --scale 8 \\
        --datasets adni-mri demented-mri --seeds 0 1 2 [--comparisons 12] [--bootstrap 1000]

For probes of the cohort's headroom (issue 15) that train only the two classifiers the
headroom needs, asked of the workflow by their ``predictions.csv`` targets:
``{results}/{dataset}/diagnosis_hr/seed{seed}/predictions.csv`` and
``{results}/{dataset}/x{scale}/sr/bicubic/seed{seed}/diagnosis/predictions.csv``.

Per dataset, seed and level (slice | subject) it prints the ``hr_minus_bicubic`` row as
``srda.report.table3`` computes it: the paired subject bootstrap of
``srda.stats.paired_cluster_bootstrap_diff`` (seed 0, as the table), the subject-level p of
``table3.paired_subject_test``, and the mde of ``table3.detectable_difference`` with Holm over
``--comparisons`` methods (12: every configured method but Bicubic). The table pools the
spread of the SR methods' per-subject differences from Bicubic; without SR methods this
script takes the spread of HR - Bicubic's, which is a stand-in, not the table's own number.
Then mean (sd) over seeds. ``--csv`` also writes the rows in long form.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from srda.diagnosis.metrics import LEVELS, evaluate_predictions
from srda.reference_rows import BASELINE
from srda.report import table3
from srda.report.tables import to_markdown
from srda.stats import paired_cluster_bootstrap_diff


def headroom(
    results: Path, dataset: str, scale: int, seed: int, n_boot: int, comparisons: int
) -> list[dict]:
    """The hr_minus_bicubic rows of one (dataset, scale, seed), both levels, with the two
    classifiers' accuracies and balanced accuracies at that level."""
    settings = {"results_dir": str(results)}
    frames, classes = table3.read_row_predictions(settings, dataset, scale, seed, ["hr", BASELINE])
    scores = {s: evaluate_predictions(f, classes, n_boot=0) for s, f in frames.items()}
    n_subjects = int(frames["hr"]["subject"].nunique())
    rows = []
    for level in LEVELS:
        ok_hr, ok_bic, subjects = table3.correctness(frames, "hr", BASELINE, classes, level)
        value, lo, hi = paired_cluster_bootstrap_diff(ok_hr, ok_bic, subjects, n_boot, seed=0)
        p, test = table3.paired_subject_test(ok_hr, ok_bic, subjects)
        mde = table3.detectable_difference(
            [table3.subject_differences(ok_hr, ok_bic, subjects)],
            n_subjects,
            comparisons,
            binary=not table3.several_per_subject(subjects),
        )

        def score(source: str, metric: str, level: str = level) -> float:
            table = scores[source]
            sel = table[(table["level"] == level) & (table["metric"] == metric)]
            return float(sel["value"].iloc[0])

        rows.append(
            {
                "dataset": dataset,
                "scale": scale,
                "seed": seed,
                "level": level,
                "hr_minus_bicubic": value,
                "ci_low": lo,
                "ci_high": hi,
                "p_value": p,
                "test": test,
                "mde": mde,
                "n_subjects": n_subjects,
                "hr_acc": score("hr", "acc"),
                "bicubic_acc": score(BASELINE, "acc"),
                "hr_balanced_acc": score("hr", "balanced_acc"),
                "bicubic_balanced_acc": score(BASELINE, "balanced_acc"),
            }
        )
    return rows


def summary(long: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and level: the seeds' values with intervals, mean (sd), mean mde."""
    out = []
    for (dataset, level), part in long.groupby(["dataset", "level"], sort=False):
        cells = [
            f"{r.hr_minus_bicubic:+.3f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]"
            for r in part.itertuples()
        ]
        values = part["hr_minus_bicubic"].to_numpy()
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
        out.append(
            {
                "dataset": dataset,
                "level": level,
                "HR - Bicubic per seed [95% paired subject bootstrap]": " / ".join(cells),
                "mean (sd)": f"{values.mean():+.3f} ({sd:.3f})",
                "mde (mean over seeds)": f"{part['mde'].mean():.3f}",
                "HR acc": " / ".join(f"{v:.3f}" for v in part["hr_acc"]),
                "Bicubic acc": " / ".join(f"{v:.3f}" for v in part["bicubic_acc"]),
            }
        )
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="the probe's results_dir")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--datasets", nargs="+", default=["adni-mri", "demented-mri"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples (config default)")
    parser.add_argument(
        "--comparisons",
        type=int,
        default=12,
        help="methods Holm adjusts over in Table III's headroom family (mde)",
    )
    parser.add_argument("--csv", type=Path, help="also write the long rows here")
    args = parser.parse_args(argv)
    rows = [
        row
        for dataset in args.datasets
        for seed in args.seeds
        for row in headroom(
            args.results, dataset, args.scale, seed, args.bootstrap, args.comparisons
        )
    ]
    long = pd.DataFrame(rows)
    if args.csv:
        long.to_csv(args.csv, index=False)
    table = summary(long)
    print(to_markdown([list(table.columns), *table.astype(str).values.tolist()]))


if __name__ == "__main__":
    main()
