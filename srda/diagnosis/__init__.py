"""The downstream diagnosis experiment (Table III): a classifier trained from scratch on each
image source (every SR method's output, LR and HR) with one recipe, and its scores.

* ``classifier``: ``ClassifierSettings``, ``SplitData``, ``fit_and_predict``, ``run_diagnosis``.
* ``metrics``: accuracy, balanced accuracy, macro-F1, one-vs-rest AUC, confusion matrix, per
  slice and per subject (majority vote), with subject-level bootstrap intervals.
"""

from typing import Any

from srda.diagnosis.metrics import (
    classification_metrics,
    confusion_matrix,
    evaluate_predictions,
    mcnemar_between,
    read_predictions,
    subject_predictions,
)

_CLASSIFIER = (
    "ClassifierSettings",
    "Predictions",
    "SplitData",
    "fit_and_predict",
    "load_classifier",
    "load_split_data",
    "run_diagnosis",
    "shard_path",
)


def __getattr__(name: str) -> Any:
    # The classifier imports torch; the tables only need the metrics, so load it on first use.
    if name in _CLASSIFIER:
        from srda.diagnosis import classifier

        return getattr(classifier, name)
    raise AttributeError(f"module 'srda.diagnosis' has no attribute {name!r}")


__all__ = [
    "ClassifierSettings",
    "Predictions",
    "SplitData",
    "classification_metrics",
    "confusion_matrix",
    "evaluate_predictions",
    "fit_and_predict",
    "load_classifier",
    "load_split_data",
    "mcnemar_between",
    "read_predictions",
    "run_diagnosis",
    "shard_path",
    "subject_predictions",
]
