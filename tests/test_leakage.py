"""The leakage study's table, inflation, leak count and outputs, on constructed results trees."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from srda.config import ConfigError, resolve
from srda.reference_rows import classifier_dir
from srda.report import leakage

CLASSES = ["CN", "AD"]
SOURCES = ["lr", "bicubic", "hr", "hr_shuffled"]


def _predictions(subjects, accuracy):
    """Two slices per subject, labels alternating by subject; the first ``accuracy`` share of
    the slices right."""
    subjects = np.repeat(subjects, 2)
    labels = np.array(CLASSES)[np.arange(subjects.size) // 2 % 2]
    right = np.arange(subjects.size) < round(accuracy * subjects.size)
    pred = np.where(right, labels, np.where(labels == "CN", "AD", "CN"))
    prob = np.where(pred == "CN", 0.9, 0.1)
    return pd.DataFrame(
        {
            "index": np.arange(subjects.size),
            "subject": [f"sub-{s:02d}" for s in subjects],
            "slice": np.arange(subjects.size) % 2,
            "label": labels,
            "pred": pred,
            "prob_CN": prob,
            "prob_AD": 1 - prob,
        }
    )


def _tree(root, accuracy, train_subjects, test_subjects):
    base = root / "set"
    base.mkdir(parents=True)
    (base / "dataset.json").write_text(json.dumps({"classes": CLASSES}))
    for split, subjects in (("train", train_subjects), ("test", test_subjects)):
        pd.DataFrame({"subject": [f"sub-{s:02d}" for s in subjects]}).to_csv(
            base / f"{split}_meta.csv", index=False
        )
    for source in SOURCES:
        folder = Path(classifier_dir(root, "set", 4, source, 0))
        folder.mkdir(parents=True, exist_ok=True)
        _predictions(test_subjects, accuracy).to_csv(folder / "predictions.csv", index=False)


@pytest.fixture
def settings(tmp_path):
    # subject split: test subjects 0-7, none in train; split over slices: 6 of its 8 test
    # subjects also have slices in train
    _tree(tmp_path / "main", 0.5, range(8, 40), range(8))
    _tree(tmp_path / "slices", 0.75, range(2, 40), range(8))
    return {
        "runs": [
            {"split_mode": "subjects", "results_dir": str(tmp_path / "main")},
            {"split_mode": "slices", "results_dir": str(tmp_path / "slices")},
        ],
        "datasets": ["set"],
        "scales": [4],
        "seeds": [0],
        "methods": [["bicubic", "Bicubic"]],
        "rows": ["lr", "hr", "hr_shuffled"],
        "bootstrap": 50,
    }


def test_table_scores_each_row_under_both_splits_and_counts_the_leak(settings):
    long = leakage.leakage_table(settings)
    assert list(long.columns) == leakage.COLUMNS
    acc = long[(long["level"] == "slice") & (long["metric"] == "acc")]
    assert set(acc["method"]) == set(SOURCES)
    assert acc.groupby("split_mode")["value"].unique().to_dict() == {
        "slices": [0.75],
        "subjects": [0.5],
    }
    leaked = long.groupby("split_mode")["leaked_subjects"].unique().to_dict()
    assert leaked == {"slices": [6], "subjects": [0]}
    assert (long["n_subjects"] == 8).all()


def test_inflation_is_slices_minus_subjects_with_a_wider_interval(settings):
    long = leakage.leakage_table(settings)
    gain = leakage.inflation(long)
    row = gain[(gain["method"] == "hr") & (gain["level"] == "slice") & (gain["metric"] == "acc")]
    assert row["value"].item() == pytest.approx(0.25)
    one = long[(long["method"] == "hr") & (long["level"] == "slice") & (long["metric"] == "acc")]
    widest = (one["ci_high"] - one["ci_low"]).max()
    assert (row["ci_high"] - row["ci_low"]).item() > widest


def test_without_intervals_the_table_and_inflation_still_render(settings, tmp_path):
    settings["bootstrap"] = 0  # the schema allows it: no intervals anywhere
    leakage.write_leakage(settings, tmp_path / "tables", tmp_path / "figures")
    long = pd.read_csv(tmp_path / "tables/leakage.csv")
    assert long["ci_low"].isna().all() and long["value"].notna().all()
    gain = leakage.inflation(long)
    assert gain["value"].dropna().round(3).isin([0.25, 0.0]).all()
    assert gain["ci_low"].isna().all()
    assert "+0.250" in (tmp_path / "tables/leakage.md").read_text()


def test_needs_one_run_per_split_mode(settings):
    settings["runs"][1]["split_mode"] = "subjects"
    with pytest.raises(ValueError, match="one run per split mode"):
        leakage.leakage_table(settings)


def test_write_leakage_writes_csv_markdown_and_figure(settings, tmp_path):
    leakage.write_leakage(settings, tmp_path / "tables", tmp_path / "figures")
    md = (tmp_path / "tables/leakage.md").read_text()
    assert "6 of 8 test subjects" in md
    assert "+0.250" in md
    assert "Chance balanced accuracy is 0.500" in md
    assert pd.read_csv(tmp_path / "tables/leakage.csv").shape[0] == 2 * 4 * 2 * 2
    for ext in ("png", "pdf"):
        assert (tmp_path / f"figures/leakage.{ext}").stat().st_size > 1000


def test_config_defaults_and_unknown_method(base_config):
    assert resolve(base_config)["leakage"] == {
        "methods": ["bicubic", "srda"],
        "rows": ["lr", "hr", "hr_shuffled"],
    }
    with pytest.raises(ConfigError, match="leakage.methods: unknown method 'nope'"):
        resolve({**base_config, "leakage": {"methods": ["bicubic", "nope"]}})


def test_the_other_runs_config_differs_only_in_split_folder_methods_and_rows(base_config):
    from srda.config import leakage_config, other_split_mode

    assert other_split_mode("subjects") == "slices" and other_split_mode("slices") == "subjects"
    leak = {"methods": ["bicubic"], "rows": ["hr_shuffled"]}
    other = leakage_config(base_config, leak, "slices", "results/leakage/split_slices")
    assert other["split"] == "slices" and other["results_dir"] == "results/leakage/split_slices"
    assert other["run_methods"] == ["bicubic"]
    enabled = {r: v["enabled"] for r, v in other["diagnosis"]["rows"].items()}
    assert enabled == {"lr": False, "lr_native": False, "hr": False, "hr_shuffled": True}
    assert other["datasets"] == base_config["datasets"] and base_config["split"] == "subjects"
    assert "rows" not in base_config["diagnosis"]  # the main run's config is left as it was
