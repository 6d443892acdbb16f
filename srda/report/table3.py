"""Table III: the diagnosis experiment's scores, its subject-level tests, and its headroom.

Rows: the reference rows (``srda.reference_rows``: LR on the HR grid, LR at its own size,
HR, HR with labels shuffled by subject) and every configured method. Scores per slice (the
paper's accuracy) and per subject (a vote over the subject's slices), with intervals that
resample subjects.

Inference runs over subjects, never over slices (slices of one subject are not independent):

* Slice level, where a subject has several test images: a paired sign-flip permutation test
  of the per-subject accuracy differences (the fraction of a subject's slices each classifier
  gets right), exact up to 16 subjects with non-zero differences, Monte Carlo above.
* Where one image is one subject (2D sets), and at the subject level (one vote per subject):
  McNemar's test on the per-subject outcomes (exact binomial below 25 discordant subjects).

Two families of tests, each Holm-adjusted across its rows: SRDA against every row (the
paper's comparison; columns ``p_value``/``p_holm`` of ``table3_diagnosis.csv``), and every
method against Bicubic (the question "does SR help diagnosis", ``table3_headroom.csv``). The
shuffled-label control is scored against its own labels and enters neither family.

Headroom (``table3_headroom.csv``, long: dataset, scale, seed, level, metric, quantity, method,
value, ci_low, ci_high, mde, n_subjects, p_value, p_holm, verdict): ``hr_minus_bicubic`` (what
any SR method could win back), ``hr_minus_lr``, ``bicubic_minus_lr``,
``best_sr_minus_bicubic`` (the best method picked on this test set: optimistic by
construction), ``sr_minus_bicubic`` for every method, and ``hr_shuffled_minus_chance``
(balanced accuracy minus 1/K). Intervals: paired bootstrap over test subjects. ``mde``: see
``detectable_difference``.

Convergence: every row of ``table3_diagnosis.csv`` carries ``converged`` and
``last_quarter_gain`` of its classifier (``srda.report.convergence``: the gain of its
selection score over the last quarter of its steps, and whether the selected step is the last);
the renderings mark a row still improving with a dagger.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from srda import layout
from srda.diagnosis.metrics import (
    LEVELS,
    confusion_table,
    evaluate_predictions,
    paired_correctness,
    read_predictions,
    subject_predictions,
)
from srda.errors import InputError
from srda.reference_rows import BASELINE, REFERENCE_ROWS, classifier_dir, table_order
from srda.report import convergence
from srda.report.tables import KEYS, REFERENCE, render_blocks
from srda.shards import write_csv
from srda.stats import (
    holm,
    mcnemar,
    min_subjects_for_significance,
    minimal_detectable_difference,
    paired_cluster_bootstrap_diff,
    per_subject_means,
    sign_flip_test,
    smallest_attainable_p,
)

logger = logging.getLogger(__name__)

ALPHA = 0.05
POWER = 0.8
#: Rows scored against labels of their own: no paired test with the others.
OWN_LABELS = tuple(name for name, row in REFERENCE_ROWS.items() if row.shuffle_labels)
SIGN_FLIP = "sign-flip over subjects"
MCNEMAR = "mcnemar over subjects"
HEADROOM_COLUMNS = [
    "dataset",
    "scale",
    "seed",
    "level",
    "metric",
    "quantity",
    "method",
    "value",
    "ci_low",
    "ci_high",
    "mde",
    "n_subjects",
    "p_value",
    "p_holm",
    "verdict",
]
#: One score of one classifier: level (slice | subject), metric, value with its interval,
#: images and subjects it rests on.
SCORE_COLUMNS = ["level", "metric", "value", "ci_low", "ci_high", "n", "n_subjects"]
LONG_COLUMNS = [
    *KEYS,
    *SCORE_COLUMNS,
    "p_value",
    "p_holm",
    "test",
    *convergence.TABLE_COLUMNS,
]
P_NOTE = (
    "Paired test of SRDA's classifier against each row's, over test subjects (never slices): "
    "a sign-flip permutation test of per-subject accuracy differences where a subject has "
    "several slices, McNemar's test where one image is one subject and on the per-subject "
    "votes; Holm-adjusted across rows."
)


# --------------------------------------------------------------------------------------------
# Inputs


def read_classes(results_dir: Path | str, dataset: str) -> list[str]:
    import json

    path = layout.dataset_json(layout.data_dir(results_dir, dataset))
    if not path.exists():
        raise InputError(path, "dataset.json missing (did the data stage run?)")
    return list(json.loads(path.read_text())["classes"])


def prediction_dir(
    results_dir: Path | str,
    dataset: str,
    scale: int,
    source: str,
    seed: int,
    cross_fitted: tuple[str, ...] | list[str] = (),
    cross_fit: int = 0,
    degradation: str = layout.BICUBIC,
) -> Path:
    """The folder of one Table III row's classifier (``srda.reference_rows.classifier_dir``)."""
    return classifier_dir(
        results_dir, dataset, scale, source, seed, cross_fitted, cross_fit, degradation
    )


def read_row_predictions(
    settings: dict[str, Any], dataset: str, scale: int, seed: int, sources: list[str]
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Every row's test predictions of one (dataset, scale, seed), checked against the
    dataset's classes."""
    results = settings["results_dir"]
    classes = read_classes(results, dataset)
    frames = {}
    for source in sources:
        folder = prediction_dir(
            results,
            dataset,
            scale,
            source,
            seed,
            settings.get("cross_fitted", ()),
            settings.get("cross_fit", 0),
            settings.get("degradation", layout.BICUBIC),
        )
        path = layout.predictions_csv(folder)
        if not path.exists():
            raise InputError(path, "predictions missing (did the diagnosis job run?)")
        frame, file_classes = read_predictions(path)
        if file_classes != classes:
            raise InputError(path, f"classes {file_classes} != dataset's {classes}")
        frames[source] = frame
    return frames, classes


# --------------------------------------------------------------------------------------------
# Per-subject outcomes and the paired test


def correctness(
    frames: dict[str, pd.DataFrame], a: str, b: str, classes: list[str], level: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Aligned 0/1 correctness of rows ``a`` and ``b`` and the subject of each item: every
    test slice (``slice``) or every subject's vote (``subject``)."""
    ok_a, ok_b = paired_correctness(frames[a], frames[b], classes, level)
    if level == "subject":
        subjects = subject_predictions(frames[a], classes)["subject"].astype(str).to_numpy()
    else:
        frame = frames[a]
        subjects = frame.set_index(frame["index"].astype(str))["subject"].astype(str).to_numpy()
    return ok_a.astype(np.float64), ok_b.astype(np.float64), subjects


def several_per_subject(subjects: np.ndarray) -> bool:
    return bool(len(subjects)) and np.unique(subjects).size < len(subjects)


def paired_subject_test(
    ok_a: np.ndarray, ok_b: np.ndarray, subjects: np.ndarray, seed: int = 0
) -> tuple[float, str]:
    """Two-sided p of "rows a and b are equally accurate", over subjects, and the test's name:
    sign-flip of per-subject accuracy differences when subjects have several items, McNemar
    when each subject is one item."""
    if several_per_subject(subjects):
        _, diff = per_subject_means(ok_a - ok_b, subjects)
        return sign_flip_test(diff, seed=seed), SIGN_FLIP
    return mcnemar(ok_a.astype(bool), ok_b.astype(bool)), MCNEMAR


def subject_differences(ok_a: np.ndarray, ok_b: np.ndarray, subjects: np.ndarray) -> np.ndarray:
    """Per-subject accuracy differences (a - b): the unit the tests and the mde rest on."""
    return per_subject_means(ok_a - ok_b, subjects)[1]


def detectable_difference(
    differences: list[np.ndarray], n_subjects: int, n_comparisons: int, binary: bool
) -> float:
    """The smallest accuracy difference against Bicubic that this test set detects with 80%
    power at alpha 0.05 after Holm over ``n_comparisons`` methods.

    Paired t approximation over ``n_subjects`` (``srda.stats.minimal_detectable_difference``):
    (t_{1-alpha/2m, n-1} + t_{0.8, n-1}) x sd / sqrt(n), with sd the spread of the per-subject
    differences of the methods against Bicubic (pooled over the methods: root mean variance),
    alpha/m being the level Holm's first step asks of the best comparison. Floors: no
    difference at all when even n subjects all moving one way cannot reach alpha/m (exact
    test: p >= 2/2^n); with one 0/1 outcome per subject (2D sets, votes) at least k subjects
    must change, k the smallest with 2/2^k <= alpha/m, so the mde is at least k/n.
    """
    m = max(1, n_comparisons)
    if n_subjects < 1 or smallest_attainable_p(n_subjects) > ALPHA / m:
        return float("inf")
    spread = [np.var(d, ddof=1) for d in differences if len(d) > 1]
    sd = float(np.sqrt(np.mean(spread))) if spread else float("nan")
    mde = minimal_detectable_difference(sd, n_subjects, ALPHA, POWER, m)
    if binary:
        mde = max(mde, min_subjects_for_significance(ALPHA, m) / n_subjects)
    return float(mde)


# --------------------------------------------------------------------------------------------
# The long table


def score_rows(
    frames: dict[str, pd.DataFrame],
    classes: list[str],
    key: dict[str, Any],
    n_boot: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores of every row of one (dataset, scale, seed) with SRDA's subject-level tests
    against each row, and the confusion matrices."""
    scored, confusion = [], []
    for source, frame in frames.items():
        scores = evaluate_predictions(frame, classes, n_boot=n_boot)
        scored.append(scores.assign(**key, method=source, p_value=np.nan, p_holm=np.nan, test=""))
        for level in LEVELS:
            cm = confusion_table(frame, classes, level).stack().rename("count").reset_index()
            confusion.append(cm.assign(**key, method=source, level=level))
    long = pd.concat(scored, ignore_index=True)
    if REFERENCE in frames:
        others = [s for s in frames if s not in (REFERENCE, *OWN_LABELS)]
        for level in LEVELS:
            tests = [
                paired_subject_test(*correctness(frames, REFERENCE, s, classes, level))
                for s in others
            ]
            adjusted = holm(np.array([p for p, _ in tests])) if tests else []
            for source, (p, test), ph in zip(others, tests, adjusted, strict=True):
                rows = (long["method"] == source) & (long["level"] == level)
                rows &= long["metric"] == "acc"
                long.loc[rows, ["p_value", "p_holm", "test"]] = [p, float(ph), test]
    return long, pd.concat(confusion, ignore_index=True)


# --------------------------------------------------------------------------------------------
# Headroom


def _verdict(value: float, mde: float, p_holm: float) -> str:
    if not np.isfinite(value):
        return ""
    if abs(value) < mde or not np.isfinite(mde):
        return "not resolvable"
    return "significant" if np.isfinite(p_holm) and p_holm < ALPHA else "not significant"


def _difference(
    frames: dict[str, pd.DataFrame],
    classes: list[str],
    level: str,
    n_boot: int,
    a: str,
    b: str,
    quantity: str,
    method: str = "",
) -> dict[str, Any] | None:
    """Row a's accuracy minus row b's with its paired subject bootstrap and subject-level p
    (None when either row was not run), plus the per-subject differences for the mde."""
    if a not in frames or b not in frames:
        return None
    ok_a, ok_b, subjects = correctness(frames, a, b, classes, level)
    value, lo, hi = paired_cluster_bootstrap_diff(ok_a, ok_b, subjects, n_boot, seed=0)
    p, _ = paired_subject_test(ok_a, ok_b, subjects)
    return {
        "quantity": quantity,
        "method": method,
        "value": value,
        "ci_low": lo,
        "ci_high": hi,
        "p_value": p,
        "p_holm": np.nan,
        "_differences": subject_differences(ok_a, ok_b, subjects),
        "_binary": not several_per_subject(subjects),
    }


def headroom_rows(
    frames: dict[str, pd.DataFrame],
    classes: list[str],
    methods: list[str],
    key: dict[str, Any],
    n_boot: int,
    long: pd.DataFrame,
) -> list[dict[str, Any]]:
    """The headroom quantities of one (dataset, scale, seed), both levels (module docstring)."""
    out: list[dict[str, Any]] = []
    contenders = [m for m in methods if m != BASELINE and m in frames]
    n_subjects = int(frames[next(iter(frames))]["subject"].nunique())
    for level in LEVELS:
        args = (frames, classes, level, n_boot)
        pairs = [
            ("hr", BASELINE, "hr_minus_bicubic"),
            ("hr", "lr", "hr_minus_lr"),
            (BASELINE, "lr", "bicubic_minus_lr"),
        ]
        rows = [r for a, b, q in pairs if (r := _difference(*args, a, b, q))]
        versus = [
            r for m in contenders if (r := _difference(*args, m, BASELINE, "sr_minus_bicubic", m))
        ]
        adjusted = holm(np.array([r["p_value"] for r in versus])) if versus else []
        for row, ph in zip(versus, adjusted, strict=True):
            row["p_holm"] = float(ph)
        rows += versus
        if versus:
            rows.append(
                {**max(versus, key=lambda r: r["value"]), "quantity": "best_sr_minus_bicubic"}
            )
        mde = (
            detectable_difference(
                [r["_differences"] for r in versus],
                n_subjects,
                len(versus),
                binary=any(r["_binary"] for r in versus),
            )
            if versus
            else float("nan")
        )
        for row in rows:
            del row["_differences"], row["_binary"]
            # methods against Bicubic: Holm's p; single headroom comparisons: their own p
            family = row["quantity"] in ("sr_minus_bicubic", "best_sr_minus_bicubic")
            p = row["p_holm"] if family else row["p_value"]
            row["verdict"] = _verdict(row["value"], mde, p)
            out.append({**key, "level": level, "metric": "acc", **row, "mde": mde})
            out[-1]["n_subjects"] = n_subjects
        for control in OWN_LABELS:
            sel = long[
                (long["method"] == control)
                & (long["level"] == level)
                & (long["metric"] == "balanced_acc")
            ]
            if sel.empty:
                continue
            chance = 1.0 / len(classes)
            value = float(sel["value"].iloc[0]) - chance
            lo, hi = float(sel["ci_low"].iloc[0]) - chance, float(sel["ci_high"].iloc[0]) - chance
            at_chance = not (np.isfinite(lo) and (lo > 0 or hi < 0))
            out.append(
                {
                    **key,
                    "level": level,
                    "metric": "balanced_acc",
                    "quantity": f"{control}_minus_chance",
                    "method": control,
                    "value": value,
                    "ci_low": lo,
                    "ci_high": hi,
                    "mde": np.nan,
                    "n_subjects": n_subjects,
                    "p_value": np.nan,
                    "p_holm": np.nan,
                    "verdict": "at chance" if at_chance else "ABOVE CHANCE: check the split",
                }
            )
    return out


# --------------------------------------------------------------------------------------------
# Rendering


def _fmt(value: float, digits: int = 3, signed: bool = True) -> str:
    if not np.isfinite(value):
        return "–" if np.isnan(value) else ("∞" if value > 0 else "−∞")
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _headroom_cell(part: pd.DataFrame, with_verdict: bool = True) -> str:
    """Mean over seeds, the first seed's interval, and the verdict (``mixed`` when seeds
    disagree)."""
    if part.empty:
        return "–"
    first = part.iloc[0]
    text = _fmt(float(part["value"].mean()))
    if np.isfinite(first["ci_low"]):
        text += f" [{_fmt(first['ci_low'], 2)}, {_fmt(first['ci_high'], 2)}]"
    if part["method"].iloc[0] and part["quantity"].iloc[0] == "best_sr_minus_bicubic":
        text += f" ({part['method'].iloc[0]})"
    verdicts = set(part["verdict"].dropna())
    if with_verdict and verdicts:
        text += f", {verdicts.pop() if len(verdicts) == 1 else 'mixed over seeds'}"
    return text


HEADROOM_LABELS = {
    "hr_minus_bicubic": "HR − Bicubic (the headroom)",
    "hr_minus_lr": "HR − LR (nearest)",
    "bicubic_minus_lr": "Bicubic − LR (nearest)",
    "best_sr_minus_bicubic": "best SR method − Bicubic (picked on this test set)",
    "hr_shuffled_minus_chance": "HR, shuffled labels: balanced accuracy − chance",
}
HEADROOM_NOTE = (
    "Accuracy differences with 95% paired bootstrap intervals over test subjects. mde: the "
    "smallest difference from Bicubic this test set detects with 80% power at alpha 0.05 "
    "after Holm over the methods (paired t approximation over subjects, with exact-test floors; "
    "srda.report.table3.detectable_difference); ∞: no difference can reach significance with "
    "so few subjects. 'not resolvable': the difference is below the mde."
)


def render_headroom(
    headroom: pd.DataFrame, display: dict[str, str], datasets: list[str]
) -> tuple[str, str]:
    """Markdown and LaTeX of the headroom, power and each method against Bicubic."""
    from srda.report.tables import to_latex, to_markdown

    md, tex = [], []
    for scale in sorted(headroom["scale"].unique()):
        for level in LEVELS:
            part = headroom[(headroom["scale"] == scale) & (headroom["level"] == level)]
            if part.empty:
                continue
            shown = [d for d in datasets if d in set(part["dataset"])]
            rows = [["Quantity", *shown]]
            for quantity, label in HEADROOM_LABELS.items():
                cells = [
                    _headroom_cell(
                        part[(part["dataset"] == d) & (part["quantity"] == quantity)],
                        with_verdict=quantity
                        in ("best_sr_minus_bicubic", "hr_shuffled_minus_chance"),
                    )
                    for d in shown
                ]
                if any(c != "–" for c in cells):
                    rows.append([label, *cells])
            acc = part[part["metric"] == "acc"]
            first = acc.groupby("dataset")[["mde", "n_subjects"]].first()
            m = acc[acc["quantity"] == "sr_minus_bicubic"].groupby("dataset")["method"].nunique()
            rows.append(
                ["mde (80% power, Holm over m methods)"]
                + [
                    f"{_fmt(first.loc[d, 'mde'], signed=False)} (m = {int(m.get(d, 0))})"
                    if d in first.index
                    else "–"
                    for d in shown
                ]
            )
            rows.append(
                ["test subjects"]
                + [str(int(first.loc[d, "n_subjects"])) if d in first.index else "–" for d in shown]
            )
            title = f"Headroom and power ({level} level), x{scale}"
            md.append(f"### {title}\n\n{HEADROOM_NOTE}\n\n" + to_markdown(rows))
            tex.append(to_latex(rows, title))
            versus = acc[acc["quantity"] == "sr_minus_bicubic"]
            if versus.empty:
                continue
            rows = [["Method", *shown]]
            for method in [m for m in display if m in set(versus["method"])]:
                rows.append(
                    [display[method]]
                    + [
                        _headroom_cell(
                            versus[(versus["dataset"] == d) & (versus["method"] == method)]
                        )
                        for d in shown
                    ]
                )
            title = f"Each method against Bicubic ({level} level), x{scale}"
            note = (
                "Accuracy difference from Bicubic's classifier [95% paired subject bootstrap]; "
                "'significant': at least the mde and Holm-adjusted p < 0.05 over subjects."
            )
            md.append(f"### {title}\n\n{note}\n\n" + to_markdown(rows))
            tex.append(to_latex(rows, title))
    return "\n".join(md), "\n".join(tex)


def boldable(headroom: pd.DataFrame, level: str) -> dict[str, set[str]]:
    """Per dataset, the methods a rendered table may bold at ``level``: those whose accuracy
    exceeds Bicubic's significantly and by at least the mde, on every seed."""
    part = headroom[(headroom["level"] == level) & (headroom["quantity"] == "sr_minus_bicubic")]
    out: dict[str, set[str]] = {}
    for (dataset, method), rows in part.groupby(["dataset", "method"]):
        if ((rows["verdict"] == "significant") & (rows["value"] > 0)).all():
            out.setdefault(dataset, set()).add(method)
    return out


LR_NATIVE_NOTE = (
    "LR (nearest): the LR images on the HR grid by nearest neighbour, the same network and "
    "input size as every method: the fair 'no SR' row. LR, native size (paper): the paper's "
    "LR row, at 1/scale the input size; its deficit is the network's input size as much as "
    "lost information. HR, shuffled labels: labels permuted across subjects, a control that "
    "must sit at chance under a subject-level split. Bold: the best of the methods that beat "
    "Bicubic by at least the mde with Holm-adjusted p < 0.05 over subjects (none: no "
    "resolvable winner)."
)


def write_table3(settings: dict[str, Any], out_dir: Path) -> pd.DataFrame:
    """table3_diagnosis (long CSV, .md, .tex), table3_headroom.csv, table3_confusion.csv and
    the ``_vs_paper`` version; one section per LR model (config ``degradations``), each long
    table with its ``degradation`` column."""
    from srda.report.build import _write, model_title, per_model, with_model, write_vs_paper

    title = "Table III: diagnosis accuracy of a classifier trained on each method's output"
    longs, rooms, confusions, mds, texs = [], [], [], [], []
    for model, sub in per_model(settings):
        long, cms, room, md, tex, display = _model_table3(sub, model_title(title, model))
        longs.append(with_model(long, model))
        confusions.append(with_model(cms, model))
        rooms.append(with_model(room, model))
        mds.append(md)
        texs.append(tex)
        if model == layout.BICUBIC:
            write_vs_paper(
                long,
                "III",
                display,
                sub,
                out_dir / "table3_diagnosis_vs_paper",
                paper_rows={"lr_native": "LR"},
            )
    long = pd.concat(longs, ignore_index=True)
    _write(out_dir, "table3_diagnosis", long, "\n".join(mds), "\n".join(texs), title)
    write_csv(out_dir / "table3_headroom.csv", pd.concat(rooms, ignore_index=True))
    write_csv(out_dir / "table3_confusion.csv", pd.concat(confusions, ignore_index=True))
    return long


def _model_table3(
    settings: dict[str, Any], title: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str, str, dict[str, str]]:
    """Table III of one LR model's networks: long, confusion, headroom, Markdown, LaTeX and
    the display names of its rows."""
    rows = list(settings.get("rows", list(REFERENCE_ROWS)))
    methods = [m for m, _ in settings["methods"]]
    names = {**{r: REFERENCE_ROWS[r].display for r in REFERENCE_ROWS}, **dict(settings["methods"])}
    display = {source: names[source] for source in table_order(rows, methods)}
    n_boot = settings["bootstrap"]
    parts, confusion, headroom = [], [], []
    for dataset in settings["datasets"]:
        for scale in settings["scales"]:
            for seed in settings["seeds"]:
                frames, classes = read_row_predictions(
                    settings, dataset, scale, seed, list(display)
                )
                key = {"dataset": dataset, "scale": scale, "seed": seed}
                long, cms = score_rows(frames, classes, key, n_boot)
                parts.append(long)
                confusion.append(cms)
                headroom += headroom_rows(frames, classes, methods, key, n_boot, long)
    long = pd.concat(parts, ignore_index=True)
    verdicts = convergence.classifier_convergence(
        settings["results_dir"],
        long[KEYS].drop_duplicates().itertuples(index=False, name=None),
        settings.get("cross_fitted", ()),
        settings.get("cross_fit", 0),
        settings.get("degradation", layout.BICUBIC),
    )
    long = convergence.attach(long, verdicts)[LONG_COLUMNS]
    cms = pd.concat(confusion, ignore_index=True)[[*KEYS, "level", "true", "pred", "count"]]
    room = pd.DataFrame(headroom, columns=HEADROOM_COLUMNS)
    blocks = [
        {
            "title": title,
            "metrics": ["acc"],
            "level": "slice",
            "note": f"Per test slice, as the paper (descriptive: slices are not independent). "
            f"{LR_NATIVE_NOTE}",
            "boldable": boldable(room, "slice"),
        },
        {
            "title": "Diagnosis per subject (vote over each subject's slices)",
            "metrics": ["acc", "balanced_acc"],
            "level": "subject",
            "boldable": boldable(room, "subject"),
        },
        {
            "title": "Diagnosis per slice: balanced accuracy, macro-F1, one-vs-rest AUC",
            "metrics": ["balanced_acc", "macro_f1", "auc"],
            "level": "slice",
            "note": "Descriptive; no row is bold (the tests and the mde concern accuracy).",
            "boldable": {},
        },
    ]
    if REFERENCE in display:
        for level in LEVELS:
            blocks.append(
                {
                    "title": f"SRDA against each row ({level} level): Holm-adjusted p",
                    "metrics": ["acc"],
                    "level": level,
                    "column": "p_holm",
                    "note": P_NOTE,
                }
            )
    md, tex = render_blocks(
        long, display, settings["datasets"], blocks, unfinished_note=convergence.CLASSIFIER_NOTE
    )
    if not room.empty:
        room_md, room_tex = render_headroom(room, display, settings["datasets"])
        md, tex = f"{md}\n{room_md}", f"{tex}\n{room_tex}"
    return long, cms, room, md, tex, display
