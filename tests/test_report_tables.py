"""Tables I-III from fabricated job outputs: shapes, levels, paired tests, the paper beside."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from srda.errors import InputError
from srda.report import build, table3
from srda.report.tables import paired_tests, volume_level

DATASETS = ["adni-mri", "demented-mri"]
METHODS = [["bicubic", "Bicubic"], ["rcan", "RCAN"], ["srda", "SRDA"]]
CLASSES = ["CN", "MCI", "AD"]


def _settings(root, **extra):
    return {
        "results_dir": str(root),
        "datasets": DATASETS,
        "scales": [4],
        "seeds": [0],
        "methods": METHODS,
        "bootstrap": 100,
        "paper_names": {"adni-mri": "ADNI-MRI", "demented-mri": "Demented-MRI"},
        "rows": ["lr_native", "lr", "hr", "hr_shuffled"],
        **extra,
    }


def _fake_results(root, with_roi=True):
    """Per-image metrics (3D set: 6 subjects x 3 slices; 2D set: 12 single images) and one
    predictions.csv per Table III row, SRDA best in both."""
    rng = np.random.default_rng(0)
    offsets = {"bicubic": 0.0, "rcan": 0.5, "srda": 1.0}
    for dataset in DATASETS:
        per_subject = 3 if dataset == "adni-mri" else 1
        n_subjects = 6 if dataset == "adni-mri" else 12
        base = root / dataset
        base.mkdir(parents=True)
        (base / "dataset.json").write_text(json.dumps({"classes": CLASSES}))
        subjects = np.repeat([f"s{i}" for i in range(n_subjects)], per_subject)
        labels = np.array(CLASSES)[np.arange(subjects.size) // per_subject % 3]
        meta = pd.DataFrame({"index": np.arange(subjects.size), "subject": subjects})
        for method, offset in offsets.items():
            out = base / "x4" / "sr" / method / "seed0"
            out.mkdir(parents=True)
            frame = meta.assign(
                psnr=25 + offset + rng.normal(0, 0.1, subjects.size),
                ssim=0.7 + offset / 10 + rng.normal(0, 0.01, subjects.size),
            )
            if with_roi and dataset == "adni-mri":
                frame["psnr_hippocampus"] = frame["psnr"] - 2
                frame["ssim_hippocampus"] = frame["ssim"] - 0.1
                frame.loc[0, ["psnr_hippocampus", "ssim_hippocampus"]] = np.nan  # no region
            frame.to_csv(out / "test_metrics.csv", index=False)
        right = {"lr_native": 0.3, "lr": 0.4, "bicubic": 0.5, "rcan": 0.6, "srda": 0.9}
        right.update(hr=1.0, hr_shuffled=0.33)
        for source, share in right.items():
            folder = table3.prediction_dir(root, dataset, 4, source, 0)
            folder.mkdir(parents=True, exist_ok=True)
            correct = rng.random(subjects.size) < share
            wrong = np.array(CLASSES)[(np.searchsorted(CLASSES, labels) + 1) % 3]
            pred = np.where(correct, labels, wrong)
            prob = np.full((subjects.size, 3), 0.1)
            prob[np.arange(subjects.size), [CLASSES.index(p) for p in pred]] = 0.8
            pd.DataFrame(
                {
                    "index": meta["index"],
                    "subject": subjects,
                    "label": labels,
                    "pred": pred,
                    **{f"prob_{c}": prob[:, i] for i, c in enumerate(CLASSES)},
                }
            ).to_csv(folder / "predictions.csv", index=False)


def test_volume_level_pools_squared_error():
    per_image = pd.DataFrame(
        {
            "dataset": "d",
            "scale": 4,
            "method": "m",
            "seed": 0,
            "subject": ["a", "a"],
            "psnr": [20.0, 30.0],
            "ssim": [0.5, 0.7],
        }
    )
    vol = volume_level(per_image)
    assert len(vol) == 1
    assert vol["psnr"].iloc[0] == pytest.approx(-10 * np.log10((1e-2 + 1e-3) / 2))
    assert vol["ssim"].iloc[0] == pytest.approx(0.6)


def test_paired_tests_match_scipy_and_holm():
    rng = np.random.default_rng(1)
    rows = []
    for method, shift in (("srda", 1.0), ("a", 0.0), ("b", 0.9)):
        for s in range(10):
            for _k in range(2):  # two images per subject: the test runs on subject means
                rows.append(
                    {
                        "dataset": "d",
                        "scale": 4,
                        "method": method,
                        "seed": 0,
                        "subject": f"s{s}",
                        "psnr": 20 + shift + s + rng.normal(0, 0.3),
                    }
                )
    frame = pd.DataFrame(rows)
    tests = paired_tests(frame, ["psnr"]).set_index("method")
    means = frame.groupby(["method", "subject"])["psnr"].mean()
    p_a = stats.wilcoxon(means["srda"], means["a"]).pvalue
    p_b = stats.wilcoxon(means["srda"], means["b"]).pvalue
    assert tests.loc["a", "p_value"] == pytest.approx(p_a)
    assert tests.loc["b", "p_value"] == pytest.approx(p_b)
    lo, hi = sorted([p_a, p_b])
    expected = {p_a: None, p_b: None}
    expected[lo] = 2 * lo
    expected[hi] = max(2 * lo, hi)
    assert tests.loc["a", "p_holm"] == pytest.approx(min(1, expected[p_a]))
    assert tests.loc["b", "p_holm"] == pytest.approx(min(1, expected[p_b]))
    assert "srda" not in tests.index


def test_table1_levels_tests_roi_and_paper(tmp_path):
    _fake_results(tmp_path)
    out = tmp_path / "tables"
    long = build.write_table1(_settings(tmp_path), out)
    # image level everywhere, volume level only for the 3D set (several images per subject)
    assert set(long.loc[long["level"] == "volume", "dataset"]) == {"adni-mri"}
    assert len(long[long["level"] == "image"]) == 2 * 3 * 2
    srda = long[long["method"] == "srda"]
    assert srda["p_value"].isna().all()
    others = long[(long["method"] != "srda") & (long["level"] == "image")]
    assert others["p_value"].notna().all() and (others["p_holm"] >= others["p_value"]).all()
    # SRDA is better than bicubic on every 3D subject: the exact two-sided p is 2 / 2^6
    p = long[
        (long["method"] == "bicubic")
        & (long["dataset"] == "adni-mri")
        & (long["level"] == "image")
        & (long["metric"] == "psnr")
    ]["p_value"].iloc[0]
    assert p == pytest.approx(2 / 2**6)
    md = (out / "table1_psnr_ssim.md").read_text()
    assert "per volume" in md and "Holm" in md and "**" in md
    roi = pd.read_csv(out / "table_roi_psnr_ssim.csv")
    assert set(roi["metric"]) == {"psnr_hippocampus", "ssim_hippocampus"}
    assert set(roi["dataset"]) == {"adni-mri"}  # the 2D set has no masks
    paper = pd.read_csv(out / "table1_psnr_ssim_vs_paper.csv")
    row = paper[
        (paper["method"] == "bicubic")
        & (paper["dataset"] == "adni-mri")
        & (paper["metric"] == "psnr")
    ].iloc[0]
    assert row["paper"] == pytest.approx(26.76)  # the paper's Bicubic on ADNI-MRI
    assert row["difference"] == pytest.approx(row["ours"] - 26.76)
    beside = (out / "table1_psnr_ssim_vs_paper.md").read_text()
    assert "26.76" in beside and "only the ordering of methods is comparable." in beside
    # what the reader may compare follows where each dataset's images came from
    build.write_table1(_settings(tmp_path, synthetic=[]), out)
    beside = (out / "table1_psnr_ssim_vs_paper.md").read_text()
    assert "synthetic" not in beside and "Your data are not the paper's subjects" in beside
    build.write_table1(_settings(tmp_path, synthetic=["demented-mri"]), out)
    beside = (out / "table1_psnr_ssim_vs_paper.md").read_text()
    assert "demented-mri: the embedded cohort, synthetic" in beside
    assert "adni-mri: the embedded" not in beside


def test_table3_rows_levels_subject_tests_confusion_headroom(tmp_path):
    _fake_results(tmp_path)
    out = tmp_path / "tables"
    long = build.write_table3(_settings(tmp_path), out)
    rows = {"lr_native", "lr", "bicubic", "rcan", "srda", "hr", "hr_shuffled"}
    assert set(long["method"]) == rows
    assert set(long["level"]) == {"slice", "subject"}
    assert set(long["metric"]) == {"acc", "balanced_acc", "macro_f1", "auc"}
    acc = long[(long["metric"] == "acc") & ~long["method"].isin(["srda", "hr_shuffled"])]
    assert acc["p_value"].notna().all()
    # the control has labels of its own: it is never paired with another row
    assert long.loc[long["method"] == "hr_shuffled", "p_value"].isna().all()
    assert long.loc[long["metric"] != "acc", "p_value"].isna().all()
    # inference over subjects: sign-flip where subjects have 3 slices, McNemar where one image
    # is one subject and on the votes
    tested = acc.drop_duplicates(["dataset", "level", "test"])
    tests = {(r.dataset, r.level): r.test for r in tested.itertuples()}
    assert tests[("adni-mri", "slice")] == table3.SIGN_FLIP
    assert tests[("adni-mri", "subject")] == table3.MCNEMAR
    assert tests[("demented-mri", "slice")] == table3.MCNEMAR
    hr = long[(long["method"] == "hr") & (long["metric"] == "acc")]
    assert (hr["value"] == 1.0).all()
    cm = pd.read_csv(out / "table3_confusion.csv")
    one = cm[(cm["dataset"] == "adni-mri") & (cm["method"] == "hr") & (cm["level"] == "slice")]
    assert one["count"].sum() == 18 and len(one) == 9
    md = (out / "table3_diagnosis.md").read_text()
    lines = [line for line in md.splitlines() if line.startswith("| ")]
    assert lines[1].startswith("| LR, native size (paper)") and lines[2].startswith("| LR (")
    assert any(line.startswith("| HR, shuffled labels") for line in lines)
    assert "Headroom and power" in md and "not resolvable" in md
    room = pd.read_csv(out / "table3_headroom.csv")
    # the headroom's columns, with the LR model the networks were trained on after the scale
    expected = list(table3.HEADROOM_COLUMNS)
    expected.insert(expected.index("scale") + 1, "degradation")
    assert list(room.columns) == expected and set(room["degradation"]) == {"bicubic"}
    quantities = set(room["quantity"])
    assert {"hr_minus_bicubic", "hr_minus_lr", "bicubic_minus_lr"} <= quantities
    assert {"best_sr_minus_bicubic", "sr_minus_bicubic", "hr_shuffled_minus_chance"} <= quantities
    paper = pd.read_csv(out / "table3_diagnosis_vs_paper.csv")
    lr = paper[(paper["method"] == "lr_native") & (paper["dataset"] == "adni-mri")].iloc[0]
    assert lr["paper"] == pytest.approx(0.5863)  # the paper's LR row is the native-size one
    assert np.isnan(paper[paper["method"] == "lr"]["paper"]).all()
    assert np.isnan(paper[paper["method"] == "bicubic"]["paper"]).all()  # not in the paper


def test_missing_predictions_name_the_file(tmp_path):
    _fake_results(tmp_path)
    missing = table3.prediction_dir(tmp_path, "adni-mri", 4, "rcan", 0) / "predictions.csv"
    missing.unlink()
    with pytest.raises(InputError, match="predictions missing") as err:
        build.write_table3(_settings(tmp_path), tmp_path / "tables")
    assert str(missing) in str(err.value)


def test_every_method_tied_for_the_best_is_bold():
    from srda.report.tables import wide

    long = pd.DataFrame(
        {
            "dataset": ["d"] * 3,
            "scale": [4] * 3,
            "method": ["a", "b", "c"],
            "seed": [0] * 3,
            "metric": ["acc"] * 3,
            "value": [1.0, 1.0, 0.5],
        }
    )
    rows = wide(long, {"a": "A", "b": "B", "c": "C"}, ["d"], ["acc"], 4)
    assert [r[1] for r in rows[1:]] == ["**1.0000**", "**1.0000**", "0.5000"]
