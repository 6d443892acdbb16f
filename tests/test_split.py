import numpy as np
import pandas as pd
import pytest

from srda.data.split import MIN_PER_CLASS, SPLITS, SplitError, allocate, check_cohort, split_rows

FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


def _meta(n_subjects=30, slices=5, labels=("CN", "MCI", "AD")):
    rows = [
        {"subject": f"s{i:03d}", "slice": k, "label": labels[i % len(labels)]}
        for i in range(n_subjects)
        for k in range(slices)
    ]
    return pd.DataFrame(rows)


def test_subject_split_shares_no_subject_and_is_stratified():
    meta = _meta()
    result = split_rows(meta, "subjects", FRACTIONS, seed=0)
    assert result.shared_subjects == 0
    assert (meta.assign(split=result.row_split).groupby("subject")["split"].nunique() == 1).all()
    counts = result.table.groupby(["split", "label"]).size()
    for label in ("CN", "MCI", "AD"):
        assert counts[("train", label)] == 8 and counts[("val", label)] == 1
        assert counts[("test", label)] == 1
    assert list(result.table.columns) == ["subject", "label", "split"]


def test_split_is_seeded():
    meta = _meta()
    a = split_rows(meta, "subjects", FRACTIONS, seed=1).row_split
    b = split_rows(meta, "subjects", FRACTIONS, seed=1).row_split
    c = split_rows(meta, "subjects", FRACTIONS, seed=2).row_split
    assert a.equals(b) and not a.equals(c)


def test_slice_split_reproduces_the_papers_leak_and_reports_it():
    meta = _meta()
    result = split_rows(meta, "slices", FRACTIONS, seed=0)
    assert result.shared_subjects > 0
    assert {"subject", "slice", "label", "split"} <= set(result.table.columns)
    assert len(result.table) == len(meta)


def test_small_classes_still_get_val_and_test():
    units = pd.DataFrame({"label": ["CN"] * 4 + ["AD"] * 4})
    split = allocate(units, FRACTIONS, seed=0)
    for label in ("CN", "AD"):
        assert sorted(split[units["label"] == label]) == ["test", "train", "train", "val"]


def test_report_counts_subjects_and_slices():
    result = split_rows(_meta(), "subjects", FRACTIONS, seed=0)
    report = result.report
    assert report["n_slices"].sum() == 150
    assert report.loc[report["split"] == "train", "n_subjects"].sum() == 24


def test_unknown_mode():
    with pytest.raises(ValueError, match="unknown split mode"):
        split_rows(_meta(), "random", FRACTIONS, seed=0)


def test_fractions_are_respected_roughly_on_large_sets():
    meta = _meta(n_subjects=300, slices=1)
    split = split_rows(meta, "subjects", FRACTIONS, seed=0).row_split
    share = split.value_counts(normalize=True)
    assert np.isclose(share["train"], 0.8, atol=0.02)


def test_a_cohort_too_small_for_three_splits_is_refused_with_the_counts():
    # the cohort: 1 CN, 2 MCI, 1 AD leaves val and test empty
    meta = pd.DataFrame(
        {"subject": ["a", "b", "c", "d"], "slice": 0, "label": ["CN", "MCI", "MCI", "AD"]}
    )
    with pytest.raises(SplitError) as err:
        split_rows(meta, "subjects", FRACTIONS, seed=0)
    text = str(err.value)
    assert "CN 1 subject," in text and "MCI 2 subjects" in text and "AD 1 subject" in text
    assert f"at least {MIN_PER_CLASS}" in text and MIN_PER_CLASS == 3
    assert "val and test splits would be empty" in text


def test_one_short_class_is_refused_even_when_no_split_is_empty():
    meta = _meta(n_subjects=12, slices=2)
    meta = meta[~meta["subject"].isin(["s002", "s005"])]  # AD: 4 subjects -> 2
    with pytest.raises(SplitError, match=r"\(AD 2 subjects; each class needs at least 3"):
        split_rows(meta, "subjects", FRACTIONS, seed=0)
    meta = meta[meta["label"] != "AD"]
    assert set(split_rows(meta, "subjects", FRACTIONS, seed=0).row_split) == set(SPLITS)


def test_slice_mode_counts_slices_per_class():
    meta = _meta(n_subjects=3, slices=2)  # one subject per class, 2 slices each
    with pytest.raises(SplitError, match="too few slices per class .*CN 2 slices"):
        split_rows(meta, "slices", FRACTIONS, seed=0)
    assert len(split_rows(_meta(n_subjects=3, slices=3), "slices", FRACTIONS, seed=0).table) == 9


def test_fractions_that_leave_a_split_empty_are_refused():
    counts = {"CN": 4, "MCI": 4, "AD": 4}
    with pytest.raises(SplitError, match=r"the train split would be empty \(subjects per class"):
        check_cohort(counts, "subjects", {"train": 0.1, "val": 0.45, "test": 0.45})
    check_cohort(counts, "subjects", FRACTIONS)
