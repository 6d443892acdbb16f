"""Train/validation/test splits, stratified by class and seeded.

``subjects`` (default) keeps every subject in one split. ``slices`` is the paper's random split
over slices: the slices of one subject land in several splits, so test scores are optimistic;
the report counts the subjects it leaks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")
logger = logging.getLogger(__name__)


@dataclass
class SplitResult:
    row_split: pd.Series  # split name per row of the meta frame
    table: pd.DataFrame  # splits.csv: one row per unit that was split
    report: pd.DataFrame  # per split and class: subjects, slices
    shared_subjects: int  # subjects found in more than one split (0 in subjects mode)


def allocate(units: pd.DataFrame, fractions: dict[str, float], seed: int) -> pd.Series:
    """Split units (rows with a ``label``) per class; every split gets one unit of a class
    that has at least three, so small cohorts still have validation and test examples."""
    rng = np.random.default_rng(seed)
    out = pd.Series(index=units.index, dtype=object)
    for label in sorted(units["label"].unique()):
        idx = units.index[units["label"] == label].to_numpy()
        idx = idx[rng.permutation(len(idx))]
        n = len(idx)
        n_val = int(round(n * fractions["val"]))
        n_test = int(round(n * fractions["test"]))
        if n >= 3:
            n_val, n_test = max(n_val, 1), max(n_test, 1)
        n_train = n - n_val - n_test
        out[idx[:n_train]] = "train"
        out[idx[n_train : n_train + n_val]] = "val"
        out[idx[n_train + n_val :]] = "test"
    return out


def split_rows(
    meta: pd.DataFrame, mode: str, fractions: dict[str, float], seed: int
) -> SplitResult:
    """Assign each row of ``meta`` (columns subject, label, slice) to a split."""
    if mode == "subjects":
        # A subject's class for stratification: its most frequent label (ADNI subjects convert).
        subjects = (
            meta.groupby("subject")["label"].agg(lambda s: s.value_counts().index[0]).reset_index()
        )
        subjects["split"] = allocate(subjects, fractions, seed).to_numpy()
        row_split = meta["subject"].map(subjects.set_index("subject")["split"])
        table = subjects[["subject", "label", "split"]]
    elif mode == "slices":
        row_split = allocate(meta[["label"]], fractions, seed)
        table = meta[["subject", "slice", "label"]].assign(split=row_split.to_numpy())
    else:
        raise ValueError(f"unknown split mode {mode!r}; expected subjects or slices")

    per_subject = pd.DataFrame({"subject": meta["subject"], "split": row_split})
    shared = int((per_subject.groupby("subject")["split"].nunique() > 1).sum())
    if mode == "slices" and shared:
        logger.warning(
            "split 'slices' leaks %d subjects across splits (the paper's protocol)", shared
        )
    frame = meta.assign(split=row_split.to_numpy())
    report = (
        frame.groupby(["split", "label"])
        .agg(n_subjects=("subject", "nunique"), n_slices=("subject", "size"))
        .reset_index()
    )
    report["split"] = pd.Categorical(report["split"], SPLITS, ordered=True)
    report = report.sort_values(["split", "label"]).reset_index(drop=True)
    return SplitResult(row_split, table.reset_index(drop=True), report, shared)
