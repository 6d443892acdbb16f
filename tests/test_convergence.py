"""Convergence verdicts from hand-written training logs, and their marks in the tables."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_report_tables import _fake_results, _settings

from srda.errors import InputError
from srda.reference_rows import diagnosis_dir
from srda.report import build, convergence, table3
from srda.report.tables import render_blocks, wide

SR_TOL = convergence.SR_TOLERANCE_DB
CLS_TOL = convergence.CLASSIFIER_TOLERANCE


def _sr_log(sr_dir, total, validations, planned=None):
    """A train_log.csv as the SR trainer writes it: one row per step, val_psnr on some."""
    train = sr_dir / "train"
    train.mkdir(parents=True, exist_ok=True)
    steps = np.arange(1, total + 1)
    val = [validations.get(int(s), "") for s in steps]
    pd.DataFrame(
        {"step": steps, "loss": 0.1, "l1": 0.1, "lr": 1e-4, "seconds": steps * 0.1, "val_psnr": val}
    ).to_csv(train / "train_log.csv", index=False)
    if planned is not None:
        (sr_dir / "run.json").write_text(json.dumps({"training": {"steps": planned}}))


def _classifier_log(folder, total, validations, best_step=None):
    """classifier_log.csv and summary.json as srda.diagnosis.classifier writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    steps = np.arange(1, total + 1)
    bacc = [validations.get(int(s), "") for s in steps]
    pd.DataFrame(
        {
            "step": steps,
            "loss": 1.0,
            "train_acc": 0.5,
            "lr": 1e-4,
            "seconds": steps * 0.1,
            "val_loss": ["" if b == "" else 1.0 for b in bacc],
            "val_acc": bacc,
            "val_balanced_acc": bacc,
        }
    ).to_csv(folder / "classifier_log.csv", index=False)
    if best_step is None:
        best_step = max(validations, key=lambda s: (validations[s], -s))
    summary = {"steps": total, "best_step": best_step, "select_on": "balanced_acc"}
    (folder / "summary.json").write_text(json.dumps(summary))


# --------------------------------------------------------------------------------------------
# The rule on curves


def test_a_flat_curve_converges():
    v = convergence.judge([100, 200, 300, 400], [20.0, 24.0, 24.02, 24.03], 400, SR_TOL)
    assert v["converged"] is True
    assert v["last_quarter_gain"] == pytest.approx(0.03)
    assert v["n_validations"] == 4 and v["since_step"] == 200


def test_a_rising_curve_does_not_converge():
    v = convergence.judge([100, 200, 300, 400], [20.0, 21.0, 22.0, 23.0], 400, SR_TOL)
    assert v["converged"] is False
    assert v["last_quarter_gain"] == pytest.approx(2.0)  # best inside (23) - best before (21)


def test_a_fall_in_the_last_quarter_is_no_gain():
    v = convergence.judge([100, 200, 300, 400], [20.0, 24.0, 23.0, 23.5], 400, SR_TOL)
    assert v["converged"] is True and v["last_quarter_gain"] == pytest.approx(-0.5)


def test_the_quick_presets_two_validations_are_judged_over_the_last_half():
    # 400 steps validated at 200 and 400: the window reaches back to half the run
    v = convergence.judge([200, 400], [22.0, 22.05], 400, SR_TOL)
    assert v["converged"] is True and v["since_step"] == 200
    assert convergence.judge([200, 400], [22.0, 22.9], 400, SR_TOL)["converged"] is False


@pytest.mark.parametrize(
    ("steps", "scores", "why"),
    [
        ([400], [24.0], "one validation"),
        ([], [], "no validation"),
        ([100, 200], [20.0, 21.0], "none inside the last quarter (log cut short)"),
        ([300, 400], [20.0, 21.0], "none before the last quarter"),
        ([100, 400], [20.0, 20.01], "the window would reach back past half the run"),
        ([100, 200, 300], [20.0, np.nan, np.nan], "failed validations do not count"),
    ],
)
def test_a_log_too_short_to_judge_says_so(steps, scores, why):
    v = convergence.judge(steps, scores, 400, SR_TOL)
    assert v["converged"] is None, why
    assert np.isnan(v["last_quarter_gain"])


def test_a_classifier_whose_best_step_is_its_last_is_flagged():
    steps, scores = [100, 200, 300], [0.5, 0.6, 0.605]
    assert convergence.judge(steps, scores, 300, CLS_TOL)["converged"] is True
    v = convergence.judge(steps, scores, 300, CLS_TOL, best_is_last=True)
    assert v["converged"] is False and v["last_quarter_gain"] < CLS_TOL


# --------------------------------------------------------------------------------------------
# The logs on disk


def test_a_run_stopped_on_a_plateau_is_judged_by_its_curve_and_says_so():
    # Stopped at 2000 of a 4000-step cap after a short plateau (1800 to 2000): the window from
    # 1400 holds the best (1800), so it still reads "improving"; a long plateau reads converged.
    steps, scores = [1400, 1500, 1600, 1700, 1800, 1900, 2000], [20, 20, 21, 21, 22, 21.9, 22]
    short = convergence.judge(steps, scores, 2000, SR_TOL, stopped_early=True)
    assert short["converged"] is False and short["stopped_early"] is True
    assert short["last_quarter_gain"] == pytest.approx(2.0)
    flat = [22.0] * 7  # no new best after 1400, before the last quarter (1500)
    long = convergence.judge(steps, flat, 2000, SR_TOL, stopped_early=True)
    assert long["converged"] is True and long["stopped_early"] is True
    assert convergence.judge(steps, scores, 2000, SR_TOL)["stopped_early"] is False


def test_the_summaries_stopped_early_reaches_the_verdict(tmp_path):
    sr_dir = tmp_path / "d" / "x4" / "sr" / "srda" / "seed0"
    # still improving in its last quarter though it stopped early: the dagger stays
    _sr_log(sr_dir, 400, {100: 20.0, 200: 21.0, 300: 22.0, 400: 21.5})
    (sr_dir / "run.json").write_text(
        json.dumps({"training": {"steps": 400, "stopped_early": True}})
    )
    frame = convergence.sr_convergence(tmp_path, [("d", 4, "srda", 0)])
    assert frame["stopped_early"].tolist() == [True]
    assert frame["converged"].tolist() == [False]
    hr = Path(diagnosis_dir(tmp_path, "d", 4, "hr", 0))
    _classifier_log(hr, 300, {100: 0.4, 200: 0.5, 300: 0.6})
    frame = convergence.classifier_convergence(tmp_path, [("d", 4, "hr", 0)], [], 0)
    assert frame["converged"].tolist() == [False] and frame["stopped_early"].tolist() == [False]


def test_sr_logs_give_one_verdict_per_run_and_untrained_methods_none(tmp_path):
    base = tmp_path / "d" / "x4" / "sr"
    _sr_log(base / "flat" / "seed0", 400, {200: 24.0, 400: 24.05}, planned=400)
    _sr_log(base / "rising" / "seed0", 400, {200: 20.0, 400: 22.0})
    _sr_log(base / "cut" / "seed0", 236, {200: 20.0}, planned=400)  # interrupted run
    (base / "bicubic" / "seed0").mkdir(parents=True)  # not trained: no train/ folder
    keys = [("d", 4, m, 0) for m in ("flat", "rising", "cut", "bicubic")]
    frame = convergence.sr_convergence(tmp_path, keys)
    assert list(frame.columns) == convergence.COLUMNS
    frame = frame.set_index("method")
    assert frame.loc["flat", "converged"] == True  # noqa: E712 (nullable boolean)
    assert frame.loc["flat", "last_quarter_gain"] == pytest.approx(0.05)
    assert frame.loc["rising", "converged"] == False  # noqa: E712
    assert frame.loc["rising", "n_validations"] == 2
    assert pd.isna(frame.loc["cut", "converged"])  # planned 400: nothing in its last quarter
    assert pd.isna(frame.loc["bicubic", "converged"])
    assert frame.loc["bicubic", "n_validations"] == 0


def test_classifier_logs_read_the_summary_and_the_cross_fitted_folder(tmp_path):
    hr = Path(diagnosis_dir(tmp_path, "d", 4, "hr", 0))
    srda = Path(diagnosis_dir(tmp_path, "d", 4, "srda", 0, cross_fit=2))
    _classifier_log(hr, 300, {100: 0.5, 200: 0.7, 300: 0.7})
    _classifier_log(srda, 300, {100: 0.4, 200: 0.6, 300: 0.65})
    keys = [("d", 4, "hr", 0), ("d", 4, "srda", 0), ("d", 4, "rcan", 0)]
    frame = convergence.classifier_convergence(tmp_path, keys, ["srda"], 2)
    assert list(frame.columns) == convergence.CLASSIFIER_COLUMNS
    frame = frame.set_index("method")
    assert frame.loc["hr", "converged"] == True  # noqa: E712 (best at 200, the earliest tie)
    assert frame.loc["hr", "best_is_last"] == False  # noqa: E712
    assert frame.loc["srda", "converged"] == False  # noqa: E712
    assert frame.loc["srda", "best_is_last"] == True  # noqa: E712
    assert frame.loc["srda", "last_quarter_gain"] == pytest.approx(0.05)
    assert pd.isna(frame.loc["rcan", "converged"])  # no classifier log at all


def test_a_log_without_its_score_column_names_the_file(tmp_path):
    sr_dir = tmp_path / "d" / "x4" / "sr" / "rcan" / "seed0"
    (sr_dir / "train").mkdir(parents=True)
    bad = sr_dir / "train" / "train_log.csv"
    bad.write_text("step,loss\n1,0.5\n")
    with pytest.raises(InputError, match="lacks columns") as err:
        convergence.sr_convergence(tmp_path, [("d", 4, "rcan", 0)])
    assert str(bad) in str(err.value)


# --------------------------------------------------------------------------------------------
# The tables


def _long(converged):
    rows = []
    for method, value in (("a", 20.0), ("b", 21.0), ("c", 19.0)):
        rows.append(
            {
                "dataset": "d",
                "scale": 4,
                "method": method,
                "seed": 0,
                "metric": "psnr",
                "value": value,
                "converged": converged[method],
                "last_quarter_gain": 0.0,
            }
        )
    frame = pd.DataFrame(rows)
    frame["converged"] = frame["converged"].astype("boolean")
    return frame


def test_an_unfinished_row_has_a_dagger_and_a_bold_one_keeps_it():
    display = {"a": "A", "b": "B", "c": "C"}
    long = _long({"a": True, "b": False, "c": None})
    rows = wide(long, display, ["d"], ["psnr"], 4)
    assert [r[0] for r in rows[1:]] == ["A", "B†", "C"]  # None: not judged, not marked
    assert rows[2][1] == "**21.00**†"
    md, tex = render_blocks(long, display, ["d"], [{"title": "T", "metrics": ["psnr"]}], "† x")
    assert md.rstrip().endswith("† x")
    assert "B$^\\dagger$" in tex and "\\textbf{21.00}$^\\dagger$" in tex and "\\footnotesize" in tex
    finished = _long({"a": True, "b": True, "c": None})
    md, _ = render_blocks(finished, display, ["d"], [{"title": "T", "metrics": ["psnr"]}], "† x")
    assert "†" not in md  # no mark, no footnote


def test_tables_carry_the_columns_and_mark_unfinished_rows(tmp_path):
    _fake_results(tmp_path)
    for dataset in ("adni-mri", "demented-mri"):
        base = tmp_path / dataset / "x4" / "sr"
        _sr_log(base / "rcan" / "seed0", 40, {20: 24.0, 40: 24.02})  # flat
        _sr_log(base / "srda" / "seed0", 40, {20: 24.0, 40: 25.0})  # rising: bold and unfinished
        for source in ("lr_native", "lr", "bicubic", "rcan", "srda", "hr", "hr_shuffled"):
            folder = table3.prediction_dir(tmp_path, dataset, 4, source, 0)
            rising = source == "srda"
            _classifier_log(folder, 30, {10: 0.4, 20: 0.5, 30: 0.6 if rising else 0.5})
    out = tmp_path / "tables"
    long = build.write_table1(_settings(tmp_path), out)
    csv = pd.read_csv(out / "table1_psnr_ssim.csv")
    assert {"converged", "last_quarter_gain"} <= set(csv.columns)
    by_method = csv.groupby("method")["converged"].unique()
    assert pd.isna(by_method["bicubic"]).all()
    assert list(by_method["rcan"]) == [True] and list(by_method["srda"]) == [False]
    assert long.loc[long["method"] == "srda", "last_quarter_gain"].eq(1.0).all()
    md = (out / "table1_psnr_ssim.md").read_text()
    assert "| SRDA† |" in md and "| RCAN |" in md and "| Bicubic |" in md
    assert "**†" in md and f"{SR_TOL:g} dB" in md
    beside = (out / "table1_psnr_ssim_vs_paper.md").read_text()
    assert "| SRDA† |" in beside and "| RCAN |" in beside and "† still improving" in beside
    roi = pd.read_csv(out / "table_roi_psnr_ssim.csv")
    assert roi.loc[roi["method"] == "srda", "converged"].eq(False).all()
    t3 = build.write_table3(_settings(tmp_path), out)
    # Table III's columns, with the LR model its networks were trained on after the scale
    expected = list(table3.LONG_COLUMNS)
    expected.insert(expected.index("scale") + 1, "degradation")
    assert list(t3.columns) == expected
    csv = pd.read_csv(out / "table3_diagnosis.csv")
    flags = csv.groupby("method")["converged"].unique()
    assert list(flags["srda"]) == [False] and list(flags["bicubic"]) == [True]
    md = (out / "table3_diagnosis.md").read_text()
    assert "| SRDA† |" in md and "| HR |" in md and "selected step was its last" in md


def test_plateau_replay_script_counts_early_stops_and_changed_models(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "plateau_replay", Path(__file__).parent.parent / "scripts/plateau_replay.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    _sr_log(tmp_path / "d/x4/sr/rcan/seed0", 400, {200: 22.0, 400: 22.5}, planned=400)
    # flat after 100: patience 1 stops at 200 keeping 100's model, the tables' model too
    _classifier_log(
        Path(diagnosis_dir(tmp_path, "d", 4, "hr", 0)), 300, {100: 0.7, 200: 0.7, 300: 0.6}
    )
    # a later best: patience 1 would stop at 200 and keep another model than 300's
    _classifier_log(
        Path(diagnosis_dir(tmp_path, "d", 4, "lr", 0)), 300, {100: 0.5, 200: 0.4, 300: 0.6}
    )
    table = script.summarise(script.runs(tmp_path), [1, 5]).set_index(["kind", "patience"])
    assert table.loc[("sr", 1), "stopped_early"] == 0  # two validations: the cap comes first
    assert table.loc[("classifier", 1), "stopped_early"] == 2
    assert table.loc[("classifier", 1), "other_model"] == 1
    assert table.loc[("classifier", 1), "steps_saved_share"] == pytest.approx(1 - 400 / 600)
    assert table.loc[("classifier", 5), "stopped_early"] == 0
    assert script.main([str(tmp_path / "nothing")]) == 1
