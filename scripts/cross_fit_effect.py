#!/usr/bin/env python3
"""How much the in-sample train images move Table III: each method's classifier trained on
in-sample SR train images (``diagnosis/``) against the one trained on out-of-fold images
(``diagnosis_crossfit{K}/``), on the same test set.

    python scripts/cross_fit_effect.py results --folds 2 --methods srda a2f srd
    python scripts/cross_fit_effect.py results --folds 2 --methods srda --json effect.json

Run after a workflow run with ``diagnosis.cross_fit: K`` beside the default one (both
classifiers then exist; docs/diagnosis.md). Per dataset, method and level: both accuracies,
their difference (cross-fitted minus in-sample) with a paired bootstrap interval over test
subjects, and the subject-level p of the same test Table III uses.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from srda.diagnosis.metrics import LEVELS, read_predictions
from srda.reference_rows import diagnosis_dir
from srda.report.table3 import correctness, paired_subject_test
from srda.report.tables import to_markdown
from srda.stats import paired_cluster_bootstrap_diff


def effect(
    results: Path, datasets: list[str], methods: list[str], folds: int, scale: int, seed: int
) -> pd.DataFrame:
    rows = []
    for dataset in datasets:
        for method in methods:
            frames = {}
            for name, k in (("in_sample", 0), ("cross_fit", folds)):
                path = Path(diagnosis_dir(results, dataset, scale, method, seed, k))
                frames[name], classes = read_predictions(path / "predictions.csv")
            for level in LEVELS:
                ok_cf, ok_in, subjects = correctness(
                    frames, "cross_fit", "in_sample", classes, level
                )
                diff, lo, hi = paired_cluster_bootstrap_diff(ok_cf, ok_in, subjects, 1000)
                p, test = paired_subject_test(ok_cf, ok_in, subjects)
                rows.append(
                    {
                        "dataset": dataset,
                        "method": method,
                        "level": level,
                        "acc_in_sample": ok_in.mean(),
                        "acc_cross_fit": ok_cf.mean(),
                        "difference": diff,
                        "ci_low": lo,
                        "ci_high": hi,
                        "p_value": p,
                        "test": test,
                        "n_subjects": len(set(subjects)),
                    }
                )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="the results folder of the run")
    parser.add_argument("--folds", type=int, required=True, help="diagnosis.cross_fit's K")
    parser.add_argument("--methods", nargs="+", required=True)
    parser.add_argument("--datasets", nargs="+", default=["adni-mri", "adni-pet", "demented-mri"])
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    table = effect(args.results, args.datasets, args.methods, args.folds, args.scale, args.seed)
    cells = [list(table.columns)] + [
        [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
        for row in table.itertuples(index=False)
    ]
    print(to_markdown(cells))
    if args.json:
        args.json.write_text(json.dumps(table.to_dict(orient="records"), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
