"""Table III's subject-level tests, headroom, mde and reference rows, on constructed answers."""

import numpy as np
import pandas as pd
import pytest

from srda.config import diagnosis_job_settings, enabled_reference_rows, resolve
from srda.report import table3
from srda.report.tables import wide

CLASSES = ["CN", "AD"]


def _frame(subjects, labels, correct):
    """A predictions table: every item right or wrong (the wrong class is the other one)."""
    labels = np.asarray(labels)
    other = np.where(labels == "CN", "AD", "CN")
    pred = np.where(correct, labels, other)
    prob = np.where(pred == "CN", 0.8, 0.2)
    return pd.DataFrame(
        {
            "index": np.arange(len(subjects)),
            "subject": [str(s) for s in subjects],
            "label": labels,
            "pred": pred,
            "prob_CN": prob,
            "prob_AD": 1 - prob,
        }
    )


def _volumes(n_subjects, per_subject):
    subjects = np.repeat(np.arange(n_subjects), per_subject)
    labels = np.array(CLASSES)[subjects % 2]
    return subjects, labels


# --------------------------------------------------------------------------------------------
# The paired test over subjects


def test_identical_predictions_give_p_one():
    subjects, labels = _volumes(6, 3)
    correct = np.arange(subjects.size) % 2 == 0
    frames = {"a": _frame(subjects, labels, correct), "b": _frame(subjects, labels, correct)}
    for level in table3.LEVELS:
        p, _ = table3.paired_subject_test(*table3.correctness(frames, "a", "b", CLASSES, level))
        assert p == 1.0


def test_constructed_difference_gives_the_exact_sign_flip_p():
    # 5 subjects x 2 slices: a right everywhere, b wrong on one slice of each subject. The
    # per-subject differences are all +0.5: exact two-sided p = 2 / 2^5, whatever the slices.
    subjects, labels = _volumes(5, 2)
    b_right = np.arange(subjects.size) % 2 == 0
    frames = {
        "a": _frame(subjects, labels, np.ones(subjects.size, bool)),
        "b": _frame(subjects, labels, b_right),
    }
    p, test = table3.paired_subject_test(*table3.correctness(frames, "a", "b", CLASSES, "slice"))
    assert test == table3.SIGN_FLIP
    assert p == pytest.approx(2 / 2**5)
    # ten independent slices would have given McNemar's exact 2 / 2^5 too, but on 5 discordant
    # subjects-worth of evidence only: the test never counts a subject twice
    p_votes, test_votes = table3.paired_subject_test(
        *table3.correctness(frames, "a", "b", CLASSES, "subject")
    )
    assert test_votes == table3.MCNEMAR
    assert np.isfinite(p_votes)


def test_one_image_per_subject_uses_mcnemar():
    subjects, labels = _volumes(12, 1)
    a = np.ones(12, bool)
    b = np.array([True] * 6 + [False] * 6)
    frames = {"a": _frame(subjects, labels, a), "b": _frame(subjects, labels, b)}
    p, test = table3.paired_subject_test(*table3.correctness(frames, "a", "b", CLASSES, "slice"))
    assert test == table3.MCNEMAR
    assert p == pytest.approx(2 / 2**6)  # 6 discordant subjects, all one way


# --------------------------------------------------------------------------------------------
# mde


def test_mde_is_infinite_when_no_test_can_reach_the_holm_level():
    # 8 subjects: the smallest exact p is 2/256 = 0.0078 > 0.05/12
    assert table3.detectable_difference([np.ones(8) * 0.1], 8, 12, binary=False) == np.inf
    # 9 subjects can (2/512 <= 0.05/12), but with 0/1 outcomes only if all 9 move one way
    assert table3.detectable_difference([np.r_[np.ones(5), np.zeros(4)]], 9, 12, True) == 1.0


def test_mde_matches_a_simulation_of_the_test_it_stands_for():
    # per-subject differences with the spread the mde was computed from: at the mde the
    # Holm-level sign-flip test rejects about 80% of the time, at half of it far less often
    rng = np.random.default_rng(0)
    n, sd, m = 40, 0.25, 4
    mde = table3.detectable_difference([rng.normal(0, sd, 4000)], n, m, binary=False)
    from srda.stats import sign_flip_test

    def power(effect):
        hits = [
            sign_flip_test(rng.normal(effect, sd, n), n_perm=1000, seed=k) < 0.05 / m
            for k in range(200)
        ]
        return np.mean(hits)

    assert 0.68 <= power(mde) <= 0.9
    assert power(mde / 2) < 0.4


# --------------------------------------------------------------------------------------------
# Headroom


def _headroom(n_subjects, per_subject, right):
    subjects, labels = _volumes(n_subjects, per_subject)
    rng = np.random.default_rng(1)
    frames = {k: _frame(subjects, labels, rng.random(subjects.size) < v) for k, v in right.items()}
    key = {"dataset": "d", "scale": 4, "seed": 0}
    long, _ = table3.score_rows(frames, CLASSES, key, n_boot=200)
    methods = [m for m in right if m not in table3.REFERENCE_ROWS]
    rows = table3.headroom_rows(frames, CLASSES, methods, key, 200, long)
    return pd.DataFrame(rows, columns=table3.HEADROOM_COLUMNS), frames


def test_headroom_values_are_paired_differences_of_accuracy():
    room, frames = _headroom(9, 10, {"lr": 0.5, "bicubic": 0.7, "srda": 0.75, "hr": 0.9})
    acc = {k: (f["label"] == f["pred"]).mean() for k, f in frames.items()}
    slice_level = room[room["level"] == "slice"].set_index("quantity")
    assert slice_level.loc["hr_minus_bicubic", "value"] == pytest.approx(acc["hr"] - acc["bicubic"])
    assert slice_level.loc["bicubic_minus_lr", "value"] == pytest.approx(acc["bicubic"] - acc["lr"])
    row = slice_level.loc["hr_minus_lr"]
    assert row["ci_low"] <= row["value"] <= row["ci_high"]
    # the quick preset's 3D test set (9 subjects): per subject, one method's gain cannot be
    # resolved below a whole subject set flipping
    subject_level = room[room["level"] == "subject"]
    assert (subject_level["n_subjects"] == 9).all()
    sr = subject_level[subject_level["quantity"] == "sr_minus_bicubic"].iloc[0]
    assert sr["verdict"] == "not resolvable"


def test_a_resolvable_winner_is_bold_and_an_unresolvable_one_is_not():
    room, frames = _headroom(200, 1, {"bicubic": 0.5, "srda": 0.95, "rcan": 0.52})
    verdicts = room[(room["quantity"] == "sr_minus_bicubic") & (room["level"] == "slice")]
    verdicts = verdicts.set_index("method")["verdict"]
    assert verdicts["srda"] == "significant"
    assert verdicts["rcan"] == "not resolvable"
    long, _ = table3.score_rows(frames, CLASSES, {"dataset": "d", "scale": 4, "seed": 0}, 100)
    display = {"bicubic": "Bicubic", "rcan": "RCAN", "srda": "SRDA"}
    ok = table3.boldable(room, "slice")
    rows = wide(long, display, ["d"], ["acc"], 4, level="slice", boldable=ok)
    assert [r[1].startswith("**") for r in rows[1:]] == [False, False, True]
    # the same table where no method resolvably beats Bicubic: nothing bold
    rows = wide(long, display, ["d"], ["acc"], 4, level="slice", boldable={})
    assert not any(r[1].startswith("**") for r in rows[1:])


def test_shuffled_control_reports_its_distance_from_chance():
    room, _ = _headroom(40, 2, {"bicubic": 0.7, "hr": 0.9, "hr_shuffled": 0.5})
    control = room[room["quantity"] == "hr_shuffled_minus_chance"]
    assert set(control["metric"]) == {"balanced_acc"}
    assert (control["verdict"] == "at chance").all()
    room, _ = _headroom(40, 2, {"bicubic": 0.7, "hr": 0.9, "hr_shuffled": 0.97})
    control = room[room["quantity"] == "hr_shuffled_minus_chance"]
    assert control["verdict"].str.startswith("ABOVE CHANCE").all()


# --------------------------------------------------------------------------------------------
# Reference rows in the configuration


def _config(base_config, **diagnosis):
    cfg = dict(base_config)
    cfg["diagnosis"] = {**base_config.get("diagnosis", {}), **diagnosis}
    return resolve(cfg)


def test_reference_rows_have_their_own_input_handling(base_config):
    cfg = _config(base_config)
    assert enabled_reference_rows(cfg) == ["lr_native", "lr", "hr", "hr_shuffled"]
    lr = diagnosis_job_settings(cfg, "lr", 4)
    assert (lr["upsample"], lr["upsample_mode"]) == (4, "nearest")
    assert diagnosis_job_settings(cfg, "lr", 2)["upsample"] == 2
    assert diagnosis_job_settings(cfg, "lr_native", 4)["upsample"] == 1
    assert diagnosis_job_settings(cfg, "hr_shuffled")["shuffle_labels"] is True
    assert "shuffle_labels" not in diagnosis_job_settings(cfg, "hr")
    # method rows get the recipe alone (their SR images are on the HR grid already)
    assert "upsample" not in diagnosis_job_settings(cfg)
    # a row's handling is its own, from the config (strings as --config passes them)
    cfg = _config(base_config, rows={"lr": {"upsample_mode": "bicubic"}, "hr": {"enabled": False}})
    assert diagnosis_job_settings(cfg, "lr", 4)["upsample_mode"] == "bicubic"
    assert enabled_reference_rows(cfg) == ["lr_native", "lr", "hr_shuffled"]
    cfg = _config(base_config, rows={"lr_native": {"upsample": "2"}})
    assert diagnosis_job_settings(cfg, "lr_native", 4)["upsample"] == 2


def test_cross_fit_of_one_fold_is_refused(base_config):
    from srda.config import ConfigError

    with pytest.raises(ConfigError, match="cross_fit"):
        _config(base_config, cross_fit=1)


def test_cross_fit_effect_compares_the_two_classifiers_of_a_method(tmp_path):
    import importlib.util

    from srda.reference_rows import diagnosis_dir

    spec = importlib.util.spec_from_file_location(
        "cross_fit_effect", table3.Path(__file__).parent.parent / "scripts/cross_fit_effect.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    subjects, labels = _volumes(8, 2)
    in_sample = _frame(subjects, labels, np.ones(subjects.size, bool))
    cross_fit = _frame(subjects, labels, np.arange(subjects.size) % 2 == 0)
    for frame, k in ((in_sample, 0), (cross_fit, 2)):
        folder = table3.Path(diagnosis_dir(tmp_path, "d", 4, "srda", 0, k))
        folder.mkdir(parents=True)
        frame.to_csv(folder / "predictions.csv", index=False)
    out = script.effect(tmp_path, ["d"], ["srda"], folds=2, scale=4, seed=0)
    slices = out[out["level"] == "slice"].iloc[0]
    assert slices["acc_in_sample"] == 1.0 and slices["acc_cross_fit"] == 0.5
    assert slices["difference"] == pytest.approx(-0.5)
    assert slices["p_value"] == pytest.approx(2 / 2**8)  # all 8 subjects lose half their slices
