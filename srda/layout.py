"""The results folder: every path the workflow writes, described once.

Read top to bottom, this module is the map of ``results_dir`` (``results/`` by default)::

    results/
      cohort/{dataset}/                   the embedded synthetic cohort (source: synthetic)
      {dataset}/                          data_dir: the data stage (one prepare job)
        {split}_hr.npy  {split}_meta.csv  {split}_roi.npy
        splits.csv  split_report.csv  dataset.json
        x{scale}/                         lr_dir: everything made from the x{scale} LR images
          {split}_lr.npy
          sr/{method}/seed{seed}/         sr_dir: one method job (run_method)
            {split}.npy  test_metrics.csv  run.json  sr_model.pt  attention.npz
            train/                        train_log.csv, settings.json, checkpoints/{last,best}.pt
            diagnosis/                    its Table III classifier (CLASSIFIER_FILES, checkpoints/)
            diagnosis_crossfit{K}/        ... learning from cross-fitted train images
            crossfit{K}/fold{f}/          the fold networks (heldout.npy, run.json, train/)
            train_crossfit{K}.npy         the folds' train images, put back in row order
          diagnosis_{row}/seed{seed}/     an LR reference row's classifier (lr, lr_native)
        x{scale}_{degradation}/           lr_dir of another LR model (bicubic's is x{scale}/):
          {split}_lr.npy  degradation.json  its images, and as above everything made from them
          sr/{method}/seed{seed}/  diagnosis_{row}/seed{seed}/
        diagnosis_{row}/seed{seed}/       an HR reference row's classifier (hr, hr_shuffled)
        crossfit{K}/                      folds.csv, fold{f}/ (each a data folder of its own)
      tables/  figures/  provenance.json
      leakage/split_{mode}/               the leakage study's other run: a results folder too
      logs/{stage}/{job}.log  benchmarks/{stage}/{job}.tsv

Every function returns a ``pathlib.Path`` and takes first the folder it is relative to: the
results folder, a data folder (``data_dir``, or a cross-fit fold, which the trainer reads like
one), an SR folder (``sr_dir``) or a classifier folder. Called with concrete values it names a
file for Python code; called with its defaults, Snakemake wildcards such as ``"{dataset}"``,
it is a rule's output pattern (common.smk and the rule files use it that way). An LR model
other than bicubic adds ``_{model}`` to the scale's folder name, so in patterns it is the
wildcard ``DEG_WILDCARD``, whose value is ``deg_suffix(model)``: empty for bicubic.

Standard library only, importing nothing of ``srda``: the Snakefile reads it at parse time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

Folder = str | os.PathLike[str]

#: The splits of every dataset, in the order the data stage writes them.
SPLITS = ("train", "val", "test")
#: The paper's degradation: its LR images sit in ``x{scale}/``, any other's in a folder of its own.
BICUBIC = "bicubic"
#: The LR model as a Snakemake wildcard: its value is "" (bicubic) or "_{model}" (deg_suffix).
DEG_WILDCARD = "{deg}"
#: The rows of a cross-fit fold that its network super-resolves (named like a split).
HELDOUT = "heldout"
#: What every classifier folder holds (srda.diagnosis.classifier writes them).
CLASSIFIER_FILES = (
    "predictions.csv",
    "val_predictions.csv",
    "classifier_log.csv",
    "summary.json",
)


# --------------------------------------------------------------------------------------------
# The results folder


def cohort_dir(results: Folder, dataset: str = "{dataset}") -> Path:
    """The embedded cohort's NIfTI / image files for one dataset (``source: synthetic``),
    read by the data stage as if they were the user's own."""
    return Path(results) / "cohort" / dataset


def data_dir(results: Folder, dataset: str = "{dataset}") -> Path:
    """One dataset's data folder: HR shards, their metadata, the split and the LR shards."""
    return Path(results) / dataset


def sr_dir(
    results: Folder,
    dataset: str = "{dataset}",
    scale: int | str = "{scale}",
    method: str = "{method}",
    seed: int | str = "{seed}",
    degradation: str = BICUBIC,
) -> Path:
    """One method job's folder (dataset, scale, method, seed, and the LR model it trains on):
    its SR shards and scores."""
    return method_dir(data_dir(results, dataset), scale, method, seed, degradation)


def tables_dir(results: Folder) -> Path:
    """Tables I-III and their companions (CSV, Markdown, LaTeX)."""
    return Path(results) / "tables"


def table_file(results: Folder, stem: str, ext: str) -> Path:
    """One table file, e.g. ``table_file(results, "table1_psnr_ssim", "csv")``."""
    return tables_dir(results) / f"{stem}.{ext}"


def figures_dir(results: Folder) -> Path:
    """Every figure, PNG and PDF (srda.report.figures names them)."""
    return Path(results) / "figures"


def provenance_json(results: Folder) -> Path:
    """What produced the results folder: code, packages, config, hosts and times of jobs."""
    return Path(results) / "provenance.json"


def leakage_results(results: Folder, mode: str) -> Path:
    """The leakage study's run under the other split ``mode``: a results folder of its own
    (the same layout inside), written by the workflow loaded again as a module."""
    return Path(results) / "leakage" / f"split_{mode}"


def log_file(results: Folder, stage: str, job: str | None = None) -> Path:
    """A job's log (its stderr): ``logs/{stage}/{job}.log``, or ``logs/{stage}.log`` for a
    stage that runs once."""
    return _per_job(logs_dir(results), stage, job, "log")


def benchmark_file(results: Folder, stage: str, job: str | None = None) -> Path:
    """A job's time and memory (Snakemake's ``benchmark:``), named like its log;
    srda.report.provenance sums them per stage."""
    return _per_job(benchmarks_dir(results), stage, job, "tsv")


def logs_dir(results: Folder) -> Path:
    return Path(results) / "logs"


def benchmarks_dir(results: Folder) -> Path:
    return Path(results) / "benchmarks"


def _per_job(base: Path, stage: str, job: str | None, ext: str) -> Path:
    return base / f"{stage}.{ext}" if job is None else base / stage / f"{job}.{ext}"


def job_name(
    dataset: str = "{dataset}",
    scale: int | str | None = None,
    source: str | None = None,
    seed: int | str | None = None,
) -> str:
    """A job's name in logs/ and benchmarks/: ``{dataset}_x{scale}_{source}_seed{seed}``,
    leaving out the parts a job does not have."""
    parts = [
        dataset,
        None if scale is None else f"x{scale}",
        source,
        None if seed is None else f"seed{seed}",
    ]
    return "_".join(p for p in parts if p is not None)


# --------------------------------------------------------------------------------------------
# Inside a data folder (results/{dataset}/, or a cross-fit fold)


def hr_shard(data: Folder, split: str = "{split}") -> Path:
    """HR images of a split: float32 (N, H, W) in [0, 1], memory-mapped (srda.shards)."""
    return Path(data) / f"{split}_hr.npy"


def meta_csv(data: Folder, split: str = "{split}") -> Path:
    """One row per image of a split, in shard order: index, subject, slice, label."""
    return Path(data) / f"{split}_meta.csv"


def roi_shard(data: Folder, split: str = "{split}") -> Path:
    """Region labels (uint8, the HR shape) of a split; all zero when the dataset has none."""
    return Path(data) / f"{split}_roi.npy"


def splits_csv(data: Folder) -> Path:
    """One row per unit that was split: subject, label, split (and slice in slice mode)."""
    return Path(data) / "splits.csv"


def split_report_csv(data: Folder) -> Path:
    """Counts per split and class, and the subject-overlap check."""
    return Path(data) / "split_report.csv"


def dataset_json(data: Folder) -> Path:
    """The data stage's summary: classes (their order is the label order), sizes, has_roi."""
    return Path(data) / "dataset.json"


def deg_suffix(degradation: str) -> str:
    """The value of ``DEG_WILDCARD`` for an LR model: "" for bicubic, "_{model}" for another."""
    return "" if degradation == BICUBIC else f"_{degradation}"


def deg_name(suffix: str) -> str:
    """The LR model a ``DEG_WILDCARD`` value names (``deg_suffix``'s inverse)."""
    return suffix.removeprefix("_") or BICUBIC


def lr_dir(data: Folder, scale: int | str = "{scale}", degradation: str = BICUBIC) -> Path:
    """The folder of one scale's LR images and of everything made from them: ``x{scale}`` for
    bicubic (the paper's), ``x{scale}_{degradation}`` for another degradation model
    (``DEG_WILDCARD`` in a pattern). The one place the LR folder is computed."""
    suffix = degradation if degradation == DEG_WILDCARD else deg_suffix(degradation)
    return Path(data) / f"x{scale}{suffix}"


def lr_shard(
    data: Folder,
    scale: int | str = "{scale}",
    split: str = "{split}",
    degradation: str = BICUBIC,
) -> Path:
    """LR images of a split: float32 (N, H // scale, W // scale) in [0, 1]."""
    return lr_split_shard(lr_dir(data, scale, degradation), split)


def lr_split_shard(lr_folder: Folder, split: str = "{split}") -> Path:
    """``lr_shard`` inside an LR folder (``lr_dir``) already known."""
    return Path(lr_folder) / f"{split}_lr.npy"


def degradation_json(lr_folder: Folder) -> Path:
    """What made a non-bicubic LR folder's images: kind, scale, seed, parameters."""
    return Path(lr_folder) / "degradation.json"


def data_files(data: Folder, scales: Iterable[int | str]) -> list[Path]:
    """Every file the data stage writes for one dataset (the prepare rule's outputs)."""
    files = [path(data, split) for split in SPLITS for path in (hr_shard, meta_csv, roi_shard)]
    files += [lr_shard(data, scale, split) for scale in scales for split in SPLITS]
    return files + [splits_csv(data), split_report_csv(data), dataset_json(data)]


def method_dir(
    data: Folder,
    scale: int | str = "{scale}",
    method: str = "{method}",
    seed: int | str = "{seed}",
    degradation: str = BICUBIC,
) -> Path:
    """``sr_dir`` from the data folder: where a method's SR images of this data live."""
    return lr_dir(data, scale, degradation) / "sr" / method / f"seed{seed}"


def lr_row_dir(
    data: Folder,
    scale: int | str = "{scale}",
    row: str = "{row}",
    seed: int | str = "{seed}",
    degradation: str = BICUBIC,
) -> Path:
    """The classifier folder of a Table III reference row that reads the LR images."""
    return lr_dir(data, scale, degradation) / f"diagnosis_{row}" / f"seed{seed}"


def hr_row_dir(data: Folder, row: str = "{row}", seed: int | str = "{seed}") -> Path:
    """The classifier folder of a reference row that reads the HR images (no scale)."""
    return Path(data) / f"diagnosis_{row}" / f"seed{seed}"


# --------------------------------------------------------------------------------------------
# Inside an SR folder (sr_dir)


def sr_shard(sr: Folder, split: str = "{split}") -> Path:
    """SR images of a split, the HR layout, clamped to [0, 1]: what an outside tool writes."""
    return Path(sr) / f"{split}.npy"


def sr_metrics_csv(sr: Folder) -> Path:
    """Per-image PSNR / SSIM of the test split (and inside each region where there are any)."""
    return Path(sr) / "test_metrics.csv"


def cross_metrics_csv(sr: Folder, test_degradation: str = "{test_degradation}") -> Path:
    """The method job's network scored on another LR model's test images (without retraining;
    srda.cross_degradation): a cell of the cross-degradation table, in test_metrics' columns."""
    return Path(sr) / f"test_metrics_on_{test_degradation}.csv"


def run_json(sr: Folder) -> Path:
    """The job's summary: training steps, host, device, threads, seconds."""
    return Path(sr) / "run.json"


def sr_model(sr: Folder) -> Path:
    """The trained network as a state dict with its settings (``srda-bench upscale`` reads it)."""
    return Path(sr) / "sr_model.pt"


def attention_npz(sr: Folder) -> Path:
    """Attention maps of the first test images (SRDA's variants with attention only)."""
    return Path(sr) / "attention.npz"


def train_dir(sr: Folder) -> Path:
    """The trainer's working folder: checkpoints and its log."""
    return Path(sr) / "train"


def train_log_csv(sr: Folder) -> Path:
    """The SR trainer's CSV log (loss per step, val_psnr on validation steps)."""
    return train_dir(sr) / "train_log.csv"


def train_settings_json(sr: Folder) -> Path:
    """The settings the SR network in ``train/`` was trained with (the resume rule reads it)."""
    return train_dir(sr) / "settings.json"


def checkpoint_dir(folder: Folder) -> Path:
    """A trainer's checkpoints: inside ``train/`` of an SR folder, or a classifier folder."""
    return Path(folder) / "checkpoints"


def checkpoint(folder: Folder, which: str) -> Path:
    """``last.pt`` (resume from it, RNG state included) or ``best.pt`` (the selected step)."""
    return checkpoint_dir(folder) / f"{which}.pt"


def classifier_dir(sr: Folder, cross_fit: int = 0) -> Path:
    """The Table III classifier of a method's SR images: ``diagnosis_crossfit{K}`` when its
    train images are cross-fitted (K >= 2), so both can stand side by side."""
    return Path(sr) / (f"diagnosis_crossfit{cross_fit}" if cross_fit >= 2 else "diagnosis")


# --------------------------------------------------------------------------------------------
# Inside a classifier folder (classifier_dir, lr_row_dir, hr_row_dir)


def classifier_files(folder: Folder) -> list[Path]:
    """Every file a classifier job writes (the diagnose rules' outputs)."""
    return [Path(folder) / name for name in CLASSIFIER_FILES]


def predictions_csv(folder: Folder) -> Path:
    """Test predictions: index, subject, label, pred and prob_<class> (Table III reads it)."""
    return Path(folder) / "predictions.csv"


def val_predictions_csv(folder: Folder) -> Path:
    """The same for the validation split (the selected step's)."""
    return Path(folder) / "val_predictions.csv"


def classifier_log_csv(folder: Folder) -> Path:
    """The classifier's CSV log (val scores on validation steps)."""
    return Path(folder) / "classifier_log.csv"


def classifier_summary_json(folder: Folder) -> Path:
    """The classifier's summary: steps, best_step, select_on, host, device, wall_seconds."""
    return Path(folder) / "summary.json"


# --------------------------------------------------------------------------------------------
# Cross-fitting (diagnosis.cross_fit = K >= 2; K is in every path so folds never mix)


def crossfit_data_dir(data: Folder, folds: int | str) -> Path:
    """Per dataset: folds.csv and one data folder per fold."""
    return Path(data) / f"crossfit{folds}"


def folds_csv(crossfit: Folder) -> Path:
    """Which fold each train subject is in."""
    return Path(crossfit) / "folds.csv"


def fold_dir(crossfit: Folder, fold: int | str = "{fold}") -> Path:
    """One fold: a data folder (crossfit_data_dir) or its network's folder (crossfit_sr_dir)."""
    return Path(crossfit) / f"fold{fold}"


def heldout_index_csv(fold: Folder) -> Path:
    """The fold's held-out rows: their indices in the dataset's train split."""
    return Path(fold) / "heldout_index.csv"


def fold_files(fold: Folder, scales: Iterable[int | str]) -> list[Path]:
    """Every file of a fold's data folder: the other folds as train, val as it is, and the
    held-out rows' LR images (``lr_shard(fold, scale, HELDOUT)``)."""
    files = [hr_shard(fold, "train"), meta_csv(fold, "train"), roi_shard(fold, "train")]
    files += [hr_shard(fold, "val"), meta_csv(fold, "val"), dataset_json(fold)]
    files.append(heldout_index_csv(fold))
    return files + [
        lr_shard(fold, scale, split) for scale in scales for split in ("train", "val", HELDOUT)
    ]


def crossfit_sr_dir(sr: Folder, folds: int | str) -> Path:
    """Per method job: one folder per fold network (``sr_shard(fold, HELDOUT)``, run.json)."""
    return Path(sr) / f"crossfit{folds}"


def crossfit_train_shard(sr: Folder, folds: int | str) -> Path:
    """The fold networks' SR images of the train split, in train row order."""
    return Path(sr) / f"train_crossfit{folds}.npy"
