"""Was a trained row still improving when its budget ran out? Judged from the trainers' logs.

Why: a table that ranks runs stopped while they were still learning ranks how fast each method
learns, not what it can do. Every trained row of Tables I-III carries ``converged`` and
``last_quarter_gain`` so that a reader (and the rendered tables' dagger) can tell them apart.

Logs read (nothing is re-run):

* SR methods: ``train/train_log.csv`` in the method job's folder (``srda.layout``)
  (``val_psnr`` on validation steps; ``srda.train.trainer``), the run's length from
  ``run.json`` beside ``train/`` when present.
* Classifiers (Table III rows): ``classifier_log.csv`` and ``summary.json`` in the row's folder
  (``srda.reference_rows.diagnosis_dir``); the score is the one the classifier selects on
  (``val_balanced_acc`` by default).

Measure. With T the run's length in steps, the last quarter starts at ``LAST_QUARTER * T``
(0.75 T; a validation exactly there belongs to it). ``last_quarter_gain`` = the best
validation score at or after it minus the best before it (dB for SR, balanced accuracy for
classifiers): what the last quarter added to the best score so far; ``n_validations``: the
validations the two maxima are taken over (all of the log's); ``since_step``: the last
validation before the quarter, where the measured window really starts.

Coarse validation. The window starts at the last validation before 0.75 T, so when validations
are sparse it covers more than a quarter: the quick preset's SR runs validate at 200 and 400 of
400 steps (the gain is 400 minus 200: the last half), its classifiers at 100, 200, 300 of 300
(300 minus the best of 100 and 200: the last third). The best score so far never falls, so a
longer window can only show more gain: ``converged`` stays a safe verdict, while ``False`` may
come from the third quarter's progress. The window may reach back to ``EARLIEST_REFERENCE * T``
(half the run) and no further.

Rule (``judge``):

* SR: converged when the gain is below ``SR_TOLERANCE_DB`` (0.1 dB).
* Classifier: converged when the gain is below ``CLASSIFIER_TOLERANCE`` (0.01) **and** the
  selected step is not the last one (``best_is_last``: the selection score was at its highest
  when the budget ran out, so a longer run would select a later model).
* Too short to judge (``converged`` and the gain NaN, never True): fewer than two validations,
  none before or none inside the last quarter, or the last one before it earlier than half the
  run.
* Not trained (no log: Bicubic, outside tools): NaN as well, never marked.
* Stopped on a plateau (``until_plateau``; the run's summary says ``stopped_early``): judged
  by the same rule, T being where it stopped, and ``stopped_early`` reported beside the
  verdict. A plateau that spans the last quarter already reads as converged; a shorter one
  (a small patience, one noisy dip) is not taken as proof, so such a run can carry a †.

Limit: with two validations the verdict rests on one difference, and a transient plateau
between them looks converged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from srda import layout
from srda.errors import InputError
from srda.reference_rows import classifier_dir
from srda.report.tables import KEYS

logger = logging.getLogger(__name__)

#: The last quarter of a run starts at this fraction of its steps.
LAST_QUARTER = 0.75
#: The validation the gain is measured from may lie no earlier than this fraction of the run.
EARLIEST_REFERENCE = 0.5
#: SR: converged when the best validation PSNR gained less than this (dB) in the last quarter.
SR_TOLERANCE_DB = 0.1
#: Classifier: converged when its selection score gained less than this (and best is not last).
CLASSIFIER_TOLERANCE = 0.01

SR_SCORE = "val_psnr"
#: Columns the long tables gain.
TABLE_COLUMNS = ["converged", "last_quarter_gain"]
COLUMNS = [
    *KEYS,
    "converged",
    "last_quarter_gain",
    "n_validations",
    "since_step",
    "stopped_early",
]
CLASSIFIER_COLUMNS = [*COLUMNS, "best_is_last"]

SR_RULE = (
    f"its best validation PSNR rose by {SR_TOLERANCE_DB:g} dB or more over the last quarter "
    "of its training steps (counted from the last validation before that quarter)"
)
CLASSIFIER_RULE = (
    f"its classifier's best validation balanced accuracy rose by {CLASSIFIER_TOLERANCE:g} or "
    "more over the last quarter of its steps (counted from the last validation before that "
    "quarter), or its selected step was its last"
)


def footnote(rule: str) -> str:
    """The line under a rendered table that explains its daggers."""
    return (
        f"† still improving when its budget ran out, on a dataset or seed shown: {rule}. "
        "No mark: converged, not trained, or too few validations to judge (each run's "
        "`converged` and `last_quarter_gain` are in the long CSV). A † on a bold value: the "
        "best of its column was still improving, so more training may change the ranking."
    )


SR_NOTE = footnote(SR_RULE)
CLASSIFIER_NOTE = footnote(CLASSIFIER_RULE)


# --------------------------------------------------------------------------------------------
# The measure and the rule


def judge(
    steps: Sequence[float] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    total: int,
    tolerance: float,
    best_is_last: bool | None = None,
    stopped_early: bool = False,
) -> dict[str, Any]:
    """The verdict on one validation curve (the module docstring's rule): ``converged``
    (True, False or None: too short to judge), ``last_quarter_gain``, ``n_validations``,
    ``since_step``, ``stopped_early`` (reported, not a verdict of its own). Validations with a
    non-finite score are not counted."""
    out = _judge_curve(steps, scores, total, tolerance, best_is_last)
    return {**out, "stopped_early": bool(stopped_early)}


def _judge_curve(
    steps: Sequence[float] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    total: int,
    tolerance: float,
    best_is_last: bool | None,
) -> dict[str, Any]:
    steps = np.asarray(steps, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(scores) & np.isfinite(steps)
    steps, scores = steps[ok], scores[ok]
    out: dict[str, Any] = {
        "converged": None,
        "last_quarter_gain": float("nan"),
        "n_validations": int(steps.size),
        "since_step": float("nan"),
    }
    cut = LAST_QUARTER * total
    before, inside = steps < cut, steps >= cut
    if steps.size < 2 or not before.any() or not inside.any():
        return out
    since = float(steps[before].max())
    out["since_step"] = since
    if since < EARLIEST_REFERENCE * total:
        return out
    gain = float(scores[inside].max() - scores[before].max())
    out["last_quarter_gain"] = gain
    out["converged"] = bool(gain < tolerance and not best_is_last)
    return out


def not_judged() -> dict[str, Any]:
    """The verdict of a row that was not trained (no log)."""
    return {
        "converged": None,
        "last_quarter_gain": float("nan"),
        "n_validations": 0,
        "since_step": float("nan"),
        "stopped_early": False,
    }


# --------------------------------------------------------------------------------------------
# Reading the logs


def read_log(path: Path, score: str) -> pd.DataFrame:
    """``step`` and ``score`` of a trainer's log (every step; the score on validation steps)."""
    try:
        frame = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a readable training log ({exc})") from None
    missing = sorted({"step", score} - set(frame.columns))
    if missing:
        raise InputError(path, f"training log lacks columns {missing}")
    out = pd.DataFrame(
        {
            "step": pd.to_numeric(frame["step"], errors="coerce"),
            score: pd.to_numeric(frame[score], errors="coerce"),
        }
    )
    if out["step"].isna().any():
        raise InputError(path, "training log has a non-numeric step")
    return out


def _read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(path, "expected a JSON object")
    return data


def _total(log: pd.DataFrame, planned: Any) -> int:
    """The run's length: what the trainer reports, else the log's last step."""
    if planned is not None:
        return int(planned)
    return int(log["step"].max()) if len(log) else 0


def _validations(log: pd.DataFrame, score: str) -> tuple[np.ndarray, np.ndarray]:
    rows = log[log[score].notna()]
    return rows["step"].to_numpy(), rows[score].to_numpy()


def sr_verdict(sr_dir: Path) -> dict[str, Any]:
    """One SR run's verdict from ``{sr_dir}/train/train_log.csv`` (not trained: no log)."""
    path = layout.train_log_csv(sr_dir)
    if not path.exists():
        return not_judged()
    log = read_log(path, SR_SCORE)
    training = _read_json(layout.run_json(sr_dir)).get("training") or {}
    total = _total(log, training.get("steps"))
    stopped = bool(training.get("stopped_early"))
    verdict = judge(*_validations(log, SR_SCORE), total, SR_TOLERANCE_DB, None, stopped)
    if verdict["converged"] is None:
        logger.warning("%s: too few validations to judge convergence", path)
    return verdict


def classifier_verdict(folder: Path) -> dict[str, Any]:
    """One classifier's verdict from ``classifier_log.csv`` and ``summary.json`` in ``folder``.

    ``best_is_last``: the selected step (``summary.json``'s ``best_step``) is the run's last
    step; without a summary, the first best validation of the log is its last step."""
    path = layout.classifier_log_csv(folder)
    if not path.exists():
        return {**not_judged(), "best_is_last": None}
    summary = _read_json(layout.classifier_summary_json(folder))
    score = f"val_{summary.get('select_on') or 'balanced_acc'}"
    log = read_log(path, score)
    total = _total(log, summary.get("steps"))
    steps, scores = _validations(log, score)
    if summary.get("best_step") is not None:
        best_is_last: bool | None = int(summary["best_step"]) == total
    elif np.isfinite(scores).any():
        best_is_last = int(steps[int(np.nanargmax(scores))]) == total
    else:
        best_is_last = None
    stopped = bool(summary.get("stopped_early"))
    verdict = judge(steps, scores, total, CLASSIFIER_TOLERANCE, best_is_last, stopped)
    if verdict["converged"] is None:
        logger.warning("%s: too few validations to judge convergence", path)
    return {**verdict, "best_is_last": best_is_last}


# --------------------------------------------------------------------------------------------
# Frames for the tables


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    for flag in ("converged", "best_is_last"):
        if flag in frame:
            frame[flag] = frame[flag].astype("boolean")
    return frame


def _unique(keys: Iterable[tuple[str, int, str, int]]) -> list[tuple[str, int, str, int]]:
    return list(dict.fromkeys((str(d), int(sc), str(m), int(se)) for d, sc, m, se in keys))


def sr_convergence(
    results_dir: Path | str,
    keys: Iterable[tuple[str, int, str, int]],
    degradation: str = layout.BICUBIC,
) -> pd.DataFrame:
    """One row per (dataset, scale, method, seed): ``COLUMNS`` from the SR training logs of
    the networks trained on the LR model ``degradation``."""
    rows = []
    for dataset, scale, method, seed in _unique(keys):
        sr_dir = layout.sr_dir(results_dir, dataset, scale, method, seed, degradation)
        rows.append(
            {
                "dataset": dataset,
                "scale": scale,
                "method": method,
                "seed": seed,
                **sr_verdict(sr_dir),
            }
        )
    return _frame(rows, COLUMNS)


def classifier_convergence(
    results_dir: Path | str,
    keys: Iterable[tuple[str, int, str, int]],
    cross_fitted: Sequence[str] = (),
    cross_fit: int = 0,
    degradation: str = layout.BICUBIC,
) -> pd.DataFrame:
    """One row per Table III (dataset, scale, row, seed): ``CLASSIFIER_COLUMNS`` from its
    classifier's log (a method listed in ``cross_fitted`` reads its cross-fitted classifier)."""
    rows = []
    for dataset, scale, source, seed in _unique(keys):
        folder = classifier_dir(
            results_dir, dataset, scale, source, seed, cross_fitted, cross_fit, degradation
        )
        rows.append(
            {
                "dataset": dataset,
                "scale": scale,
                "method": source,
                "seed": seed,
                **classifier_verdict(folder),
            }
        )
    return _frame(rows, CLASSIFIER_COLUMNS)


def attach(long: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """``long`` with ``TABLE_COLUMNS`` from ``verdicts`` on (dataset, scale, method, seed)
    (NaN where a row has no verdict), its rows in their order."""
    out = long.copy()
    index = pd.MultiIndex.from_frame(out[KEYS].astype({"scale": int, "seed": int}))
    keyed = verdicts.set_index(KEYS)
    out["converged"] = keyed["converged"].reindex(index).astype("boolean").to_numpy()
    out["converged"] = out["converged"].astype("boolean")
    out["last_quarter_gain"] = keyed["last_quarter_gain"].reindex(index).to_numpy(np.float64)
    return out
