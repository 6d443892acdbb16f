"""Table III's reference rows: the image sources that are not SR methods, and where every
row's classifier writes. One place for both, read by the workflow and by the tables.

Each reference row differs from the method rows only in the information its classifier gets,
never in the network or (except ``lr_native``, kept as the paper's row) its input size:

* ``lr``: the LR images brought to the HR grid by nearest-neighbour upsampling (no
  interpolation prior): the fair "no SR" row. Bicubic is a fixed function of the same pixels.
* ``lr_native``: the LR images at their own size, as the paper classifies them. A ResNet's
  stem divides by 4, so a 24 x 24 image leaves a 1 x 1 map before pooling: this row's deficit
  is the network's input size as much as lost information (the caption says so).
* ``hr``: the HR images, the upper bound.
* ``hr_shuffled``: HR with the class labels permuted across subjects (seeded, class counts
  kept): a control that must sit at chance when no subject is in two splits. Under a leaking
  split (``split: slices``) a network that memorises subjects scores far above chance
  (Yagis et al., Sci Rep 2021: 96% with random labels under a slice-level split).

Input handling (upsample factor and mode) is a per-row setting of the config
(``diagnosis.rows.<name>``); the defaults above live in the schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from srda import layout


@dataclass(frozen=True)
class ReferenceRow:
    name: str
    display: str
    source: str  # the shard the classifier reads: "lr" or "hr"
    shuffle_labels: bool = False

    @property
    def per_scale(self) -> bool:
        """LR rows exist once per scale; HR rows once per dataset."""
        return self.source == "lr"


REFERENCE_ROWS: dict[str, ReferenceRow] = {
    row.name: row
    for row in (
        ReferenceRow("lr_native", "LR, native size (paper)", "lr"),
        ReferenceRow("lr", "LR (nearest)", "lr"),
        ReferenceRow("hr", "HR", "hr"),
        ReferenceRow("hr_shuffled", "HR, shuffled labels", "hr", shuffle_labels=True),
    )
}
#: Rows shown above the methods (what SR starts from) and below them (bounds and controls).
ROWS_BEFORE = ("lr_native", "lr")
ROWS_AFTER = ("hr", "hr_shuffled")
#: The comparison baseline of the headroom: the method every SR method must beat.
BASELINE = "bicubic"


def diagnosis_dir(
    results_dir: Path | str,
    dataset: str,
    scale: int | str,
    source: str,
    seed: int | str,
    cross_fit: int = 0,
    degradation: str = layout.BICUBIC,
) -> Path:
    """The folder of one Table III row's classifier: a reference row's, or a method's inside
    its SR output folder (``diagnosis_crossfit{K}`` when it learns from cross-fitted train
    images, so the in-sample and cross-fitted classifiers can stand side by side). HR rows do
    not depend on the scale or the LR model (``degradation``)."""
    data = layout.data_dir(results_dir, dataset)
    row = REFERENCE_ROWS.get(source)
    if row is None:
        sr = layout.method_dir(data, scale, source, seed, degradation)
        return layout.classifier_dir(sr, cross_fit)
    if row.per_scale:
        return layout.lr_row_dir(data, scale, source, seed, degradation)
    return layout.hr_row_dir(data, source, seed)


def classifier_dir(
    results_dir: Path | str,
    dataset: str,
    scale: int | str,
    source: str,
    seed: int | str,
    cross_fitted: Sequence[str] = (),
    cross_fit: int = 0,
    degradation: str = layout.BICUBIC,
) -> Path:
    """The classifier folder Table III reads for a row: ``diagnosis_dir``, cross-fitted
    (``diagnosis.cross_fit: K``) for the methods listed in ``cross_fitted``."""
    folds = cross_fit if source in cross_fitted else 0
    return diagnosis_dir(results_dir, dataset, scale, source, seed, folds, degradation)


def table_order(rows: list[str], methods: list[str]) -> list[str]:
    """Table III's row order: LR rows, the methods in config order, HR rows."""
    before = [r for r in ROWS_BEFORE if r in rows]
    after = [r for r in ROWS_AFTER if r in rows]
    return [*before, *methods, *after]
