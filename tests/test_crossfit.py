"""Cross-fitting of the classifier's train SR images: folds, fold data, one fold job, reassembly."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import write_tiny_sr_dataset

from srda import crossfit
from srda.cli import main
from srda.config import method_job_settings, resolve
from srda.crossfit import assemble_train, assign_folds, run_fold, write_assembled, write_fold_data
from srda.errors import InputError
from srda.run import run_method
from srda.shards import read_meta, write_shard

SUBJECTS = 6  # the tiny train split's 12 images, two per subject (images i and i + 6)


def _multi_image_subjects(root):
    """Give the tiny dataset's train subjects two images each (same label) and an ROI shard."""
    meta = read_meta(root / "train_meta.csv")
    meta["subject"] = [f"train{i % SUBJECTS}" for i in range(len(meta))]
    assert (meta.groupby("subject")["label"].nunique() == 1).all()
    meta.to_csv(root / "train_meta.csv", index=False)
    roi = (np.arange(len(meta))[:, None, None] % 4 * np.ones((1, 32, 32))).astype(np.uint8)
    write_shard(root / "train_roi.npy", roi)
    return root


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = write_tiny_sr_dataset(
        tmp_path_factory.mktemp("data"),
        lambda rng, xx, yy: 0.5 + 0.4 * np.sin(6 * xx + rng.random() * 6) * np.cos(5 * yy),
        seed=0,
    )
    return _multi_image_subjects(root)


@pytest.fixture(scope="module")
def folds3(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("crossfit") / "crossfit3"
    write_fold_data(tiny_data, [4], 3, 0, out)
    return out


def _settings(base_config, method):
    config = {**base_config, "preset": "smoke"}
    config["method_defaults"] = {"train": {"steps": 2, "val_every": 2}}
    config["datasets"]["adni-mri"]["patch"] = 16
    return method_job_settings(resolve(config), "adni-mri", method)


def _cohort_meta(seed=0):
    """30 subjects of 3 unbalanced classes (15 / 9 / 6), 3 images each, rows shuffled."""
    labels = ["CN"] * 15 + ["MCI"] * 9 + ["AD"] * 6
    rows = [(f"s{i:02d}", label) for i, label in enumerate(labels) for _ in range(3)]
    meta = pd.DataFrame(rows, columns=["subject", "label"])
    return meta.sample(frac=1, random_state=seed).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Folds


def test_folds_are_stratified_and_cover_every_subject_once():
    meta = _cohort_meta()
    folds = assign_folds(meta, 4, seed=0)
    assert list(folds.columns) == ["subject", "label", "fold"]
    assert sorted(folds["subject"]) == sorted(meta["subject"].unique())  # one row per subject
    assert set(folds["fold"]) == {0, 1, 2, 3}
    sizes = folds["fold"].value_counts()
    assert sizes.max() - sizes.min() <= 1
    per_class = folds.groupby(["label", "fold"]).size().unstack(fill_value=0)
    assert (per_class.max(axis=1) - per_class.min(axis=1) <= 1).all()
    labels = meta.drop_duplicates("subject").set_index("subject")["label"]
    assert (folds.set_index("subject")["label"] == labels[folds["subject"]].to_numpy()).all()


def test_folds_are_seeded_and_do_not_depend_on_row_order():
    meta = _cohort_meta()
    first = assign_folds(meta, 3, seed=0)
    pd.testing.assert_frame_equal(first, assign_folds(_cohort_meta(seed=5), 3, seed=0))
    other = assign_folds(meta, 3, seed=1)
    assert not first["fold"].equals(other["fold"])


def test_every_fold_gets_a_subject_even_when_classes_are_smaller_than_k():
    meta = pd.DataFrame({"subject": list("abcd"), "label": ["CN", "CN", "AD", "MCI"]})
    assert set(assign_folds(meta, 4, seed=3)["fold"]) == {0, 1, 2, 3}


def test_too_few_subjects_or_folds_are_refused():
    meta = pd.DataFrame({"subject": ["a", "a", "b"], "label": ["CN", "CN", "AD"]})
    with pytest.raises(InputError, match="2 train subjects cannot fill 3 folds"):
        assign_folds(meta, 3, seed=0)
    with pytest.raises(InputError, match="cross_fit"):
        assign_folds(meta, 1, seed=0)
    with pytest.raises(InputError, match="label"):
        assign_folds(meta[["subject"]], 2, seed=0)


# --------------------------------------------------------------------------------------------
# Fold data


def test_fold_data_excludes_the_fold_subjects_and_only_them(tiny_data, folds3):
    meta = read_meta(tiny_data / "train_meta.csv")
    hr = np.load(tiny_data / "train_hr.npy")
    lr = np.load(tiny_data / "x4" / "train_lr.npy")
    roi = np.load(tiny_data / "train_roi.npy")
    folds = pd.read_csv(folds3 / "folds.csv", dtype={"subject": str})
    assert len(folds) == SUBJECTS and set(folds["fold"]) == {0, 1, 2}
    seen = []
    for f in range(3):
        fold_dir = folds3 / f"fold{f}"
        held_subjects = set(folds.loc[folds["fold"] == f, "subject"])
        train = read_meta(fold_dir / "train_meta.csv")
        assert not held_subjects & set(train["subject"])  # a held-out subject never trains
        assert held_subjects | set(train["subject"]) == set(meta["subject"])
        assert list(train["index"]) == list(range(len(train)))
        orig = train["orig_index"].to_numpy()
        assert (train["subject"].to_numpy() == meta["subject"].to_numpy()[orig]).all()
        np.testing.assert_array_equal(np.load(fold_dir / "train_hr.npy"), hr[orig])
        np.testing.assert_array_equal(np.load(fold_dir / "x4" / "train_lr.npy"), lr[orig])
        np.testing.assert_array_equal(np.load(fold_dir / "train_roi.npy"), roi[orig])
        held = pd.read_csv(fold_dir / "heldout_index.csv")["index"].to_numpy()
        assert (np.diff(held) > 0).all()
        assert set(meta["subject"].to_numpy()[held]) == held_subjects
        assert len(held) + len(train) == len(meta)
        np.testing.assert_array_equal(np.load(fold_dir / "x4" / "heldout_lr.npy"), lr[held])
        for name in ("val_hr.npy", "val_meta.csv", "dataset.json", "x4/val_lr.npy"):
            assert (fold_dir / name).read_bytes() == (tiny_data / name).read_bytes()
        seen.extend(held)
    assert sorted(seen) == list(range(len(meta)))  # the folds partition the train rows
    assert not list(folds3.glob(".staging-*"))


def test_fold_data_is_all_or_nothing(tiny_data, tmp_path, monkeypatch):
    out = tmp_path / "crossfit2"
    calls = []

    def failing(src, rows, dst):
        calls.append(dst)
        if len(calls) == 6:  # in the second fold
            raise OSError("disk full")
        return copy_rows(src, rows, dst)

    copy_rows = crossfit._copy_rows
    monkeypatch.setattr(crossfit, "_copy_rows", failing)
    with pytest.raises(OSError, match="disk full"):
        write_fold_data(tiny_data, [4], 2, 0, out)
    assert list(out.iterdir()) == []  # nothing half-written, no staging folder left
    monkeypatch.setattr(crossfit, "_copy_rows", copy_rows)
    write_fold_data(tiny_data, [4], 2, 0, out)
    write_fold_data(tiny_data, [4], 2, 1, out)  # a rerun replaces the folds
    assert sorted(p.name for p in out.iterdir()) == ["fold0", "fold1", "folds.csv"]


def test_fold_data_refuses_mismatched_shards(tiny_data, tmp_path):
    data = tmp_path / "data"
    for path in tiny_data.rglob("*"):
        if path.is_file():
            target = data / path.relative_to(tiny_data)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    write_shard(data / "x4" / "train_lr.npy", np.zeros((5, 8, 8), np.float32))
    with pytest.raises(InputError, match="5 images for the 12 rows"):
        write_fold_data(data, [4], 2, 0, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# Reassembly


def _synthetic_folds(root, parts, n_train=10):
    """Fold folders whose held-out SR image of train row i is filled with the value i."""
    folds_dir, method_dirs = root / "folds", []
    for f, rows in enumerate(parts):
        (folds_dir / f"fold{f}").mkdir(parents=True)
        pd.DataFrame({"index": rows, "subject": [f"s{r}" for r in rows]}).to_csv(
            folds_dir / f"fold{f}" / "heldout_index.csv", index=False
        )
        method_dirs.append(root / "method" / f"fold{f}")
        images = np.asarray(rows, np.float32)[:, None, None] * np.ones((1, 4, 5), np.float32)
        write_shard(method_dirs[-1] / "heldout.npy", images)
    return folds_dir, method_dirs


def test_assemble_restores_the_original_order(tmp_path):
    parts = [[1, 4, 7], [0, 2, 9], [3, 5, 6, 8]]
    folds_dir, method_dirs = _synthetic_folds(tmp_path, parts)
    out = assemble_train(folds_dir, method_dirs, 10)
    assert out.shape == (10, 4, 5) and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.arange(10, dtype=np.float32)[:, None, None] + 0 * out)
    write_assembled(folds_dir, method_dirs, 10, tmp_path / "train_crossfit3.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "train_crossfit3.npy"), out)


@pytest.mark.parametrize(
    "parts, problem",
    [
        ([[1, 4, 7], [0, 2, 9], [3, 5, 6]], "1 train rows held out by no fold: \\[8\\]"),
        ([[1, 4, 7, 8], [0, 2, 9], [3, 5, 6, 8]], "held out by several folds: \\[8\\]"),
        ([[1, 4, 7], [0, 2, 9], [3, 5, 6, 8, 10]], "outside the 10 train rows"),
    ],
)
def test_assemble_refuses_gaps_and_duplicates(tmp_path, parts, problem):
    folds_dir, method_dirs = _synthetic_folds(tmp_path, parts)
    with pytest.raises(InputError, match=problem):
        assemble_train(folds_dir, method_dirs, 10)
    with pytest.raises(InputError):
        write_assembled(folds_dir, method_dirs, 10, tmp_path / "out.npy")
    assert not (tmp_path / "out.npy").exists()


def test_assemble_refuses_a_fold_count_other_than_folds_csv(tmp_path):
    folds_dir, method_dirs = _synthetic_folds(tmp_path, [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]])
    pd.DataFrame({"subject": ["a", "b", "c"], "label": "CN", "fold": [0, 1, 2]}).to_csv(
        folds_dir / "folds.csv", index=False
    )
    with pytest.raises(InputError, match="has 3 folds, 2 were given"):
        assemble_train(folds_dir, method_dirs, 10)


# --------------------------------------------------------------------------------------------
# One fold's SR network


def test_run_fold_trains_without_the_fold_and_super_resolves_it(
    base_config, tiny_data, folds3, tmp_path
):
    settings = _settings(base_config, "srda_base")
    main_job = run_method(settings, tiny_data, 4, 0, tmp_path / "main", gpus=0)
    fold_dir = folds3 / "fold1"
    summary = run_fold(settings, fold_dir, 4, 0, tmp_path / "fold1", gpus=0, threads=1)
    held = pd.read_csv(fold_dir / "heldout_index.csv")["index"].to_numpy()
    sr = np.load(tmp_path / "fold1" / "heldout.npy")
    assert sr.shape == (len(held), 32, 32) and sr.dtype == np.float32
    assert 0 <= sr.min() and sr.max() <= 1
    in_sample = np.load(tmp_path / "main" / "train.npy")[held]
    assert not np.allclose(sr, in_sample, atol=1e-6)  # another network than the main one
    run = json.loads((tmp_path / "fold1" / "run.json").read_text())
    assert run["fold"] == 1 and run["n_heldout"] == len(held) and run["n_train"] == 12 - len(held)
    assert run["training"]["steps"] == main_job["training"]["steps"] == summary["steps"]
    assert (tmp_path / "fold1" / "train" / "train_log.csv").exists()


def test_run_fold_keeps_the_main_jobs_steps_when_counting_epochs(base_config, folds3, tmp_path):
    settings = _settings(base_config, "srda_base")
    settings["train"] = {**settings["train"], "epochs": 1, "val_every": 0}
    summary = run_fold(settings, folds3 / "fold0", 4, 0, tmp_path, gpus=0)
    assert summary["steps"] == int(np.ceil(12 / settings["batch_size"]))  # all 12 train images


def test_run_fold_refuses_methods_with_nothing_to_learn(base_config, folds3, tmp_path):
    with pytest.raises(InputError, match="methods.bicubic: has no parameters"):
        run_fold(_settings(base_config, "bicubic"), folds3 / "fold0", 4, 0, tmp_path, gpus=0)
    with pytest.raises(InputError, match="outside tool"):
        run_fold({"name": "lanczos", "external": True}, folds3 / "fold0", 4, 0, tmp_path)
    assert not (tmp_path / "heldout.npy").exists()


def test_cli_cross_fits_a_method_end_to_end(base_config, tiny_data, tmp_path):
    settings = json.dumps(_settings(base_config, "srda_base"))
    folds_dir, method_dir = tmp_path / "crossfit2", tmp_path / "sr" / "crossfit2"
    data = ["--data", str(tiny_data)]
    assert (
        main(["cross-fit-data", *data, "--scales", "4", "--folds", "2", "--out", str(folds_dir)])
        == 0
    )
    for f in range(2):
        args = ["--settings", settings, "--fold-dir", str(folds_dir / f"fold{f}"), "--scale", "4"]
        args += ["--out", str(method_dir / f"fold{f}"), "--gpus", "0", "--threads", "1"]
        assert main(["cross-fit-method", *args]) == 0
    out = tmp_path / "sr" / "train_crossfit2.npy"
    args = ["--folds-dir", str(folds_dir), "--method-dir", str(method_dir), "--folds", "2"]
    assert main(["cross-fit-assemble", *data, *args, "--out", str(out)]) == 0
    train = np.load(out)
    assert train.shape == (12, 32, 32)
    for f in range(2):
        held = pd.read_csv(folds_dir / f"fold{f}" / "heldout_index.csv")["index"].to_numpy()
        np.testing.assert_array_equal(train[held], np.load(method_dir / f"fold{f}" / "heldout.npy"))
    assert main(["cross-fit-assemble", *data, *args[:-1], "3", "--out", str(out)]) == 2


def test_cli_refuses_bicubic_with_one_line(base_config, folds3, tmp_path, capsys):
    settings = json.dumps(_settings(base_config, "bicubic"))
    args = ["--settings", settings, "--fold-dir", str(folds3 / "fold0"), "--scale", "4"]
    assert main(["cross-fit-method", *args, "--out", str(tmp_path), "--gpus", "0"]) == 2
    assert "methods.bicubic: has no parameters" in capsys.readouterr().err
