"""Scores of a downstream classifier's test predictions, per slice and per subject.

Input: a ``predictions.csv`` as ``srda.diagnosis.classifier`` writes it (columns ``index``,
``subject``, ``label``, ``pred`` and one ``prob_<class>`` per class, in the class order of
``dataset.json``; ``label`` and ``pred`` hold class names).

Metrics (one value each, for one set of predictions):

* ``acc``: fraction correct.
* ``balanced_acc``: mean recall over the classes present in the true labels.
* ``macro_f1``: mean F1 over the classes present in the true labels or the predictions (a
  class never predicted and absent has no F1; one predicted but absent has F1 0).
* ``auc``: one-vs-rest ROC AUC per class from its probability column, averaged (macro); NaN
  when any class has no positive or no negative item (AUC undefined for it).

Per subject: a subject's prediction is the **majority vote** of its slices' predicted classes;
a tie goes to the tied class with the highest mean probability over the subject's slices (then
to the first class). Its probabilities (for the AUC) are the mean over its slices. Every slice
of a subject must carry the same label.

Intervals: subjects are the independent units, so every interval resamples subjects (cluster
bootstrap): slice-level accuracy through ``srda.stats.cluster_bootstrap_ci`` on per-slice
correctness with subject clusters, the other metrics (and subject-level ones) through the same
draw of subjects with the metric recomputed on the pooled resample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from srda.errors import InputError
from srda.stats import cluster_bootstrap_ci, mcnemar, percentile_interval

PROB_PREFIX = "prob_"
METRICS = ("acc", "balanced_acc", "macro_f1", "auc")
LEVELS = ("slice", "subject")


# --------------------------------------------------------------------------------------------
# Metrics on class-index arrays


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts: row = true class, column = predicted class."""
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.size} labels against {y_pred.size} predictions")
    for name, y in (("labels", y_true), ("predictions", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"{name} outside 0..{n_classes - 1}: {np.unique(y).tolist()}")
    flat = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    return float(np.mean(y_true == y_pred)) if y_true.size else float("nan")


def _balanced_from_cm(cm: np.ndarray) -> float:
    support = cm.sum(axis=1)
    present = support > 0
    if not present.any():
        return float("nan")
    return float(np.mean(np.diag(cm)[present] / support[present]))


def _macro_f1_from_cm(cm: np.ndarray) -> float:
    tp = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    used = (support + predicted) > 0
    if not used.any():
        return float("nan")
    f1 = 2.0 * tp[used] / (support[used] + predicted[used])
    return float(np.mean(f1))


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Mean per-class recall over the classes that occur in ``y_true``."""
    return _balanced_from_cm(confusion_matrix(y_true, y_pred, n_classes))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Mean F1 over the classes that occur in ``y_true`` or ``y_pred``."""
    return _macro_f1_from_cm(confusion_matrix(y_true, y_pred, n_classes))


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata  # here: scipy.stats costs every classifier job 0.5 s

    ranks = rankdata(score)  # ties get the mean rank: AUC counts a tie as 1/2
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def ovr_auc(y_true: np.ndarray, prob: np.ndarray) -> float:
    """Macro one-vs-rest ROC AUC; NaN when some class has no positive or no negative item."""
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim != 2 or prob.shape[0] != y_true.size:
        raise ValueError(f"prob must be (N, classes) with N={y_true.size}, got {prob.shape}")
    aucs = [_binary_auc(y_true == k, prob[:, k]) for k in range(prob.shape[1])]
    return float(np.mean(aucs))  # NaN if any class's AUC is undefined


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, prob: np.ndarray | None = None
) -> dict[str, float]:
    """``acc``, ``balanced_acc``, ``macro_f1`` and (with ``prob`` (N, K)) ``auc``."""
    n_classes = (
        np.asarray(prob).shape[1]
        if prob is not None
        else int(max(np.max(y_true, initial=-1), np.max(y_pred, initial=-1)) + 1)
    )
    cm = confusion_matrix(y_true, y_pred, n_classes)
    out = {
        "acc": accuracy(y_true, y_pred),
        "balanced_acc": _balanced_from_cm(cm),
        "macro_f1": _macro_f1_from_cm(cm),
        "auc": ovr_auc(y_true, prob) if prob is not None else float("nan"),
    }
    return out


# --------------------------------------------------------------------------------------------
# Prediction tables


def prob_columns(classes: list[str]) -> list[str]:
    return [f"{PROB_PREFIX}{c}" for c in classes]


def read_predictions(path: Path | str) -> tuple[pd.DataFrame, list[str]]:
    """A predictions CSV and its class order (from the order of its ``prob_`` columns)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "predictions CSV not found")
    frame = pd.read_csv(path, dtype={"subject": str, "label": str, "pred": str})
    classes = [c[len(PROB_PREFIX) :] for c in frame.columns if c.startswith(PROB_PREFIX)]
    missing = {"index", "subject", "label", "pred"} - set(frame.columns)
    if missing or not classes:
        what = f"columns {sorted(missing)}" if missing else "prob_<class> columns"
        raise InputError(path, f"predictions CSV lacks {what}")
    try:
        check_predictions(frame, classes)
    except ValueError as exc:
        raise InputError(path, str(exc)) from exc
    return frame, classes


def check_predictions(frame: pd.DataFrame, classes: list[str]) -> None:
    for col in ("label", "pred"):
        unknown = sorted(set(frame[col].astype(str)) - set(classes))
        if unknown:
            raise ValueError(f"{col} values {unknown} are not among the classes {classes}")
    missing = [c for c in prob_columns(classes) if c not in frame.columns]
    if missing:
        raise ValueError(f"missing probability columns {missing}")


def _arrays(frame: pd.DataFrame, classes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lookup = {c: k for k, c in enumerate(classes)}
    y_true = frame["label"].astype(str).map(lookup).to_numpy(dtype=np.int64)
    y_pred = frame["pred"].astype(str).map(lookup).to_numpy(dtype=np.int64)
    prob = frame[prob_columns(classes)].to_numpy(dtype=np.float64)
    return y_true, y_pred, prob


def vote(pred: np.ndarray, prob: np.ndarray) -> int:
    """One subject's class: majority of ``pred`` (its slices' classes), ties broken by the
    highest mean of ``prob`` (N, K) among the tied classes, then by the lowest class index."""
    n_classes = prob.shape[1]
    counts = np.bincount(np.asarray(pred, dtype=np.int64), minlength=n_classes)
    tied = np.flatnonzero(counts == counts.max())
    if tied.size == 1:
        return int(tied[0])
    mean = prob.mean(axis=0)
    return int(tied[np.argmax(mean[tied])])  # argmax: first of equal maxima


def subject_predictions(frame: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """One row per subject (in order of first appearance): ``subject``, ``label``, ``pred``
    (majority vote, see ``vote``), ``n_slices`` and the mean ``prob_<class>`` of its slices."""
    check_predictions(frame, classes)
    y_true, y_pred, prob = _arrays(frame, classes)
    subjects = frame["subject"].astype(str).to_numpy()
    _, first, inverse = np.unique(subjects, return_index=True, return_inverse=True)
    rows = []
    for group in np.argsort(first, kind="stable"):
        members = np.flatnonzero(inverse == group)
        labels = np.unique(y_true[members])
        if labels.size != 1:
            raise ValueError(
                f"subject {subjects[members[0]]!r} has slices labelled "
                f"{[classes[k] for k in labels]}: one label per subject expected"
            )
        mean_prob = prob[members].mean(axis=0)
        rows.append(
            {
                "subject": subjects[members[0]],
                "label": classes[labels[0]],
                "pred": classes[vote(y_pred[members], prob[members])],
                "n_slices": members.size,
                **dict(zip(prob_columns(classes), mean_prob, strict=True)),
            }
        )
    columns = ["subject", "label", "pred", "n_slices", *prob_columns(classes)]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------------------------
# Scores with intervals


def _cluster_draws(clusters: np.ndarray, n_boot: int, seed: int) -> list[np.ndarray] | None:
    """Row indices of ``n_boot`` resamples of whole clusters, drawn as ``cluster_bootstrap_ci``
    draws them (same generator, same call); None when there is nothing to resample."""
    _, inverse = np.unique(np.asarray(clusters), return_inverse=True)
    n_clusters = int(inverse.max()) + 1 if inverse.size else 0
    if n_boot <= 0 or n_clusters < 2:
        return None
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(n_clusters + 1))
    members = [order[starts[g] : starts[g + 1]] for g in range(n_clusters)]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_clusters, size=(n_boot, n_clusters))
    return [np.concatenate([members[g] for g in draw]) for draw in draws]


def score_table(
    frame: pd.DataFrame, classes: list[str], n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> list[dict[str, float | str]]:
    """Rows ``metric, value, ci_low, ci_high`` for every metric of ``METRICS``, over the rows of
    ``frame`` (predictions, as ``check_predictions`` takes them), intervals resampling its
    subjects.

    ``acc``'s interval is ``cluster_bootstrap_ci`` of per-item correctness; the others are
    recomputed on the same resamples of clusters (percentile intervals).
    """
    y_true, y_pred, prob = _arrays(frame, classes)
    clusters = frame["subject"].astype(str).to_numpy()
    values = classification_metrics(y_true, y_pred, prob)
    correct = (y_true == y_pred).astype(np.float64)
    intervals = {"acc": cluster_bootstrap_ci(correct, clusters, n_boot, seed, level)}
    draws = _cluster_draws(clusters, n_boot, seed) or []
    boot = [classification_metrics(y_true[r], y_pred[r], prob[r]) for r in draws]
    for m in METRICS:
        if m != "acc":  # no resamples: nan, nan
            intervals[m] = percentile_interval(np.array([b[m] for b in boot]), level)
    return [
        {"metric": m, "value": values[m], "ci_low": intervals[m][0], "ci_high": intervals[m][1]}
        for m in METRICS
    ]


def evaluate_predictions(
    frame: pd.DataFrame,
    classes: list[str],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Long table: ``level`` (slice | subject), ``metric``, ``value``, ``ci_low``, ``ci_high``,
    ``n`` (items scored at that level), ``n_subjects``.

    Slice level: every row of ``frame``, intervals resampling subjects. Subject level: one
    vote per subject (``subject_predictions``), intervals resampling subjects.
    """
    check_predictions(frame, classes)
    n_subjects = int(frame["subject"].astype(str).nunique())
    units = {"slice": frame, "subject": subject_predictions(frame, classes)}
    rows = [
        {"level": unit, **row, "n": len(scored), "n_subjects": n_subjects}
        for unit, scored in units.items()
        for row in score_table(scored, classes, n_boot, seed, level)
    ]
    return pd.DataFrame(
        rows, columns=["level", "metric", "value", "ci_low", "ci_high", "n", "n_subjects"]
    )


def confusion_table(frame: pd.DataFrame, classes: list[str], level: str = "slice") -> pd.DataFrame:
    """The confusion matrix as a labelled frame (index: true class, columns: predicted)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    data = subject_predictions(frame, classes) if level == "subject" else frame
    y_true, y_pred, _ = _arrays(data, classes)
    cm = confusion_matrix(y_true, y_pred, len(classes))
    return pd.DataFrame(
        cm,
        index=pd.Index(classes, name="true"),
        columns=pd.Index(classes, name="pred"),
    )


def paired_correctness(
    a: pd.DataFrame, b: pd.DataFrame, classes: list[str], level: str = "subject"
) -> tuple[np.ndarray, np.ndarray]:
    """Per-item correctness of two prediction tables of the same test set, aligned on
    ``index`` (slice level) or ``subject`` (subject level, after the vote)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    if level == "subject":
        a, b, key = subject_predictions(a, classes), subject_predictions(b, classes), "subject"
    else:
        key = "index"
    left = a.set_index(a[key].astype(str))
    right = b.set_index(b[key].astype(str))
    if set(left.index) != set(right.index) or len(left) != len(right):
        raise ValueError(f"the two prediction tables do not cover the same {key}s")
    right = right.loc[left.index]
    if not (left["label"].astype(str).to_numpy() == right["label"].astype(str).to_numpy()).all():
        raise ValueError(f"the two prediction tables disagree on the labels of some {key}s")
    return (
        (left["label"] == left["pred"]).to_numpy(),
        (right["label"] == right["pred"]).to_numpy(),
    )


def mcnemar_between(
    a: pd.DataFrame, b: pd.DataFrame, classes: list[str], level: str = "subject"
) -> float:
    """McNemar p-value of two classifiers on the same test set (``srda.stats.mcnemar``).

    Subject level by default: subjects are independent, slices of one subject are not, so a
    slice-level McNemar test overstates the evidence.
    """
    correct_a, correct_b = paired_correctness(a, b, classes, level)
    return mcnemar(correct_a, correct_b)
