"""Train/validation/test splits, stratified by class and seeded.

``subjects`` (default) keeps every subject in one split. ``slices`` is the paper's random split
over slices: the slices of one subject land in several splits, so test scores are optimistic;
the report counts the subjects it leaks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from srda.layout import SPLITS

logger = logging.getLogger(__name__)


@dataclass
class SplitResult:
    row_split: pd.Series  # split name per row of the meta frame
    table: pd.DataFrame  # splits.csv: one row per unit that was split
    report: pd.DataFrame  # per split and class: subjects, slices
    shared_subjects: int  # subjects found in more than one split (0 in subjects mode)


#: Units (subjects, or slices in ``slices`` mode) a class needs for a stratified split: one
#: in each of train, val and test.
MIN_PER_CLASS = len(SPLITS)


class SplitError(ValueError):
    """A cohort the split cannot serve: a class too small, or a split left empty."""


def _sizes(n: int, fractions: dict[str, float]) -> dict[str, int]:
    """Units of one class of ``n`` per split; val and test get one each from three units on."""
    n_val = int(round(n * fractions["val"]))
    n_test = int(round(n * fractions["test"]))
    if n >= MIN_PER_CLASS:
        n_val, n_test = max(n_val, 1), max(n_test, 1)
    return {"train": n - n_val - n_test, "val": n_val, "test": n_test}


def allocate(units: pd.DataFrame, fractions: dict[str, float], seed: int) -> pd.Series:
    """Split units (rows with a ``label``) per class; every split gets one unit of a class
    that has at least three, so small cohorts still have validation and test examples."""
    rng = np.random.default_rng(seed)
    out = pd.Series(index=units.index, dtype=object)
    for label in sorted(units["label"].unique()):
        idx = units.index[units["label"] == label].to_numpy()
        idx = idx[rng.permutation(len(idx))]
        sizes = _sizes(len(idx), fractions)
        n_train, n_val = sizes["train"], sizes["val"]
        out[idx[:n_train]] = "train"
        out[idx[n_train : n_train + n_val]] = "val"
        out[idx[n_train + n_val :]] = "test"
    return out


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def check_cohort(counts: dict[str, int], mode: str, fractions: dict[str, float]) -> None:
    """Refuse (``SplitError``) per-class unit counts the split cannot serve: a class with fewer
    than ``MIN_PER_CLASS`` units, or a split that would be left empty. ``counts``: class ->
    subjects (``subjects`` mode) or slices (``slices``)."""
    unit = "subject" if mode == "subjects" else "slice"
    short = {c: n for c, n in counts.items() if n < MIN_PER_CLASS}
    totals = {s: sum(_sizes(n, fractions)[s] for n in counts.values()) for s in SPLITS}
    empty = [s for s in SPLITS if totals[s] <= 0]
    problems = []
    if short:
        listed = ", ".join(f"{c} {_plural(n, unit)}" for c, n in short.items())
        problems.append(
            f"too few {unit}s per class for a split by {unit} into train, val and test "
            f"({listed}; each class needs at least {MIN_PER_CLASS}, one per split)"
        )
    if empty:
        named = f"the {' and '.join(empty)} split{'s' if len(empty) > 1 else ''} would be empty"
        whole = ", ".join(f"{c} {n}" for c, n in counts.items())
        why = "" if short else f" ({unit}s per class: {whole}; split_fractions {fractions})"
        problems.append(named + why)
    if problems:
        raise SplitError("; ".join(problems))


def split_rows(
    meta: pd.DataFrame,
    mode: str,
    fractions: dict[str, float],
    seed: int,
    classes: Sequence[str] = (),
) -> SplitResult:
    """Assign each row of ``meta`` (columns subject, label, slice) to a split; a cohort too
    small for it is refused (``SplitError``, see ``check_cohort``; classes in the order of
    ``classes``, the rest alphabetically)."""

    def counts(labels: pd.Series) -> dict[str, int]:
        found = labels.value_counts()
        order = [c for c in classes if c in found] + sorted(set(found.index) - set(classes))
        return {str(c): int(found[c]) for c in order}

    if mode == "subjects":
        # A subject's class for stratification: its most frequent label (ADNI subjects convert).
        subjects = (
            meta.groupby("subject")["label"].agg(lambda s: s.value_counts().index[0]).reset_index()
        )
        check_cohort(counts(subjects["label"]), mode, fractions)
        subjects["split"] = allocate(subjects, fractions, seed).to_numpy()
        row_split = meta["subject"].map(subjects.set_index("subject")["split"])
        table = subjects[["subject", "label", "split"]]
    elif mode == "slices":
        check_cohort(counts(meta["label"]), mode, fractions)
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
