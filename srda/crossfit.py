"""Cross-fitting of the train-split SR images Table III's classifiers learn from.

A method's SR network super-resolves the very train images it was trained on, so the
classifier would learn from in-sample SR images and be tested on out-of-sample ones (and SRDA's
network also saw the train labels through its cross-entropy term); Bicubic and HR have no such
shift. With ``diagnosis.cross_fit: K`` the train subjects are dealt into K folds (stratified by
class, seeded); fold k's train images are super-resolved by a network trained, with the main
job's settings, steps and seed, on the other folds' subjects. The classifier then learns from
the out-of-fold images, reassembled in the original train row order; val and test images stay
those of the main network.

Layout: ``write_fold_data`` makes ``results/{dataset}/crossfit{K}/`` (``folds.csv`` and one
data folder per fold that the trainer reads like the dataset's own), ``run_fold`` trains one
fold into ``{sr_dir}/crossfit{K}/fold{f}/`` and ``write_assembled`` writes
``{sr_dir}/train_crossfit{K}.npy``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from srda import layout
from srda.errors import InputError
from srda.shards import ShardWriter, atomic_path, read_meta, read_shard, write_csv, write_shard

logger = logging.getLogger(__name__)

#: File names inside the folders (srda.layout spells the paths).
FOLDS_FILE = layout.folds_csv("").name
HELDOUT_INDEX = layout.heldout_index_csv("").name
HELDOUT_LR = layout.lr_shard("", 4, layout.HELDOUT).name
HELDOUT_SR = layout.sr_shard("", layout.HELDOUT).name
#: What a fold's data folder copies of the dataset's as it is (besides the val LR shards).
_val_files = (
    lambda d: layout.hr_shard(d, "val"),
    lambda d: layout.meta_csv(d, "val"),
    layout.dataset_json,
)
_CHUNK = 256  # rows copied at a time: a train split never has to sit in memory


def fold_name(fold: int) -> str:
    return layout.fold_dir("", fold).name


# --------------------------------------------------------------------------------------------
# Folds


def assign_folds(
    meta: pd.DataFrame, k: int, seed: int, where: str | Path = "train meta"
) -> pd.DataFrame:
    """One row per train subject (subject, label, fold), stratified by label and seeded.

    A subject's class is its most frequent label (as the split does). Each class's subjects,
    sorted then shuffled by ``default_rng(seed)``, are dealt round-robin over the folds, the
    deal continuing where the previous class stopped, so fold sizes differ by at most one and
    every fold gets a subject as soon as there are ``k`` of them.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise InputError("diagnosis.cross_fit", f"needs at least 2 folds, got {k!r}")
    missing = {"subject", "label"} - set(meta.columns)
    if missing:
        raise InputError(where, f"lacks columns {sorted(missing)}")
    subjects = (
        meta.assign(subject=meta["subject"].astype(str), label=meta["label"].astype(str))
        .groupby("subject")["label"]
        .agg(lambda s: s.value_counts().index[0])
        .sort_index()
    )
    if len(subjects) < k:
        raise InputError(where, f"{len(subjects)} train subjects cannot fill {k} folds")
    rng = np.random.default_rng(seed)
    fold = pd.Series(-1, index=subjects.index, dtype=np.int64)
    dealt = 0
    for label in sorted(subjects.unique()):
        names = subjects.index[subjects == label].to_numpy()
        names = names[rng.permutation(len(names))]
        fold[names] = (dealt + np.arange(len(names))) % k
        dealt += len(names)
    frame = pd.DataFrame(
        {"subject": subjects.index, "label": subjects.to_numpy(), "fold": fold.to_numpy()}
    )
    logger.info(
        "%d train subjects in %d folds of %s subjects",
        len(frame),
        k,
        "/".join(str(n) for n in frame["fold"].value_counts().sort_index()),
    )
    return frame


def _copy_rows(src: Path, rows: np.ndarray, dst: Path) -> None:
    """Rows ``rows`` of shard ``src`` into shard ``dst``, a chunk at a time."""
    array = read_shard(src)
    if not len(rows):
        write_shard(dst, np.empty((0, *array.shape[1:]), dtype=array.dtype))
        return
    with ShardWriter(dst, dtype=str(array.dtype)) as out:
        for start in range(0, len(rows), _CHUNK):
            out.append(np.asarray(array[rows[start : start + _CHUNK]]))


def _check_rows(path: Path, n: int, n_meta: int, meta_path: Path) -> None:
    if n != n_meta:
        raise InputError(path, f"{n} images for the {n_meta} rows of {meta_path}")


def _write_fold(
    data_dir: Path,
    scales: Sequence[int],
    meta: pd.DataFrame,
    held: np.ndarray,
    fold: int,
    out: Path,
) -> None:
    """One fold's data folder: the trainer's files without fold ``fold``, and that fold."""
    out.mkdir(parents=True)
    keep = np.flatnonzero(~held)
    heldout = np.flatnonzero(held)
    train_meta = meta.iloc[keep].rename(columns={"index": "orig_index"})
    train_meta.insert(0, "index", np.arange(len(train_meta)))
    write_csv(layout.meta_csv(out, "train"), train_meta)
    write_csv(
        layout.heldout_index_csv(out),
        pd.DataFrame(
            {
                "index": meta["index"].to_numpy()[heldout],
                "subject": meta["subject"].to_numpy()[heldout],
            }
        ).assign(fold=fold),
    )
    _copy_rows(layout.hr_shard(data_dir, "train"), keep, layout.hr_shard(out, "train"))
    if layout.roi_shard(data_dir, "train").exists():
        _copy_rows(layout.roi_shard(data_dir, "train"), keep, layout.roi_shard(out, "train"))
    for scale in scales:
        lr = layout.lr_shard(data_dir, scale, "train")
        layout.lr_dir(out, scale).mkdir()
        _copy_rows(lr, keep, layout.lr_shard(out, scale, "train"))
        _copy_rows(lr, heldout, layout.lr_shard(out, scale, layout.HELDOUT))
        shutil.copyfile(layout.lr_shard(data_dir, scale, "val"), layout.lr_shard(out, scale, "val"))
    for path in _val_files:
        shutil.copyfile(path(data_dir), path(out))


def write_fold_data(data_dir: Path, scales: list[int], k: int, seed: int, out_dir: Path) -> None:
    """``out_dir/folds.csv`` and ``out_dir/fold{f}/`` for every fold (see the module doc).

    Everything is staged in a hidden folder inside ``out_dir`` and moved into place at the end
    (``folds.csv`` last), so a failure leaves the previous outputs or none, never half of them.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if out_dir.resolve() == data_dir.resolve():
        raise InputError(out_dir, "the fold folder must not be the data folder itself")
    if not scales:
        raise InputError("--scales", "no scale given")
    meta_path = layout.meta_csv(data_dir, "train")
    meta = read_meta(meta_path)
    if not np.array_equal(meta["index"].to_numpy(), np.arange(len(meta))):
        raise InputError(meta_path, "column index is not 0..n-1 in row order")
    hr = layout.hr_shard(data_dir, "train")
    _check_rows(hr, len(read_shard(hr)), len(meta), meta_path)
    for scale in scales:
        lr = layout.lr_shard(data_dir, scale, "train")
        _check_rows(lr, len(read_shard(lr)), len(meta), meta_path)
        if not layout.lr_shard(data_dir, scale, "val").exists():
            raise InputError(layout.lr_shard(data_dir, scale, "val"), "shard not found")
    for path in _val_files:
        if not path(data_dir).exists():
            raise InputError(path(data_dir), "not found (run the prepare stage first)")
    folds = assign_folds(meta, k, seed, where=meta_path)
    row_fold = meta["subject"].astype(str).map(folds.set_index("subject")["fold"]).to_numpy()

    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        for f in range(k):
            _write_fold(data_dir, scales, meta, row_fold == f, f, stage / fold_name(f))
            kept, held = int((row_fold != f).sum()), int((row_fold == f).sum())
            logger.info("fold %d: %d train images kept, %d held out", f, kept, held)
        write_csv(stage / FOLDS_FILE, folds)
        for f in range(k):
            target = out_dir / fold_name(f)
            if target.exists():  # an older run's fold: moved aside, deleted with the stage
                os.replace(target, stage / f".old-{fold_name(f)}")
            os.replace(stage / fold_name(f), target)
        os.replace(stage / FOLDS_FILE, out_dir / FOLDS_FILE)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def read_heldout_index(fold_dir: Path) -> np.ndarray:
    """The original train rows a fold holds out (``heldout_index.csv``), as integers."""
    path = layout.heldout_index_csv(fold_dir)
    if not path.exists():
        raise InputError(path, "held-out index not found (run cross-fit-data first)")
    frame = pd.read_csv(path)
    if "index" not in frame.columns:
        raise InputError(path, "lacks an index column")
    return frame["index"].to_numpy(dtype=np.int64)


# --------------------------------------------------------------------------------------------
# One fold's SR network


def _fold_number(fold_dir: Path) -> int | None:
    match = re.fullmatch(r"fold(\d+)", Path(fold_dir).name)
    return int(match.group(1)) if match else None


def run_fold(
    settings: dict[str, Any],
    fold_dir: Path | str,
    scale: int,
    seed: int,
    out_dir: Path | str,
    gpus: int | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Train the method on ``fold_dir``'s train images as its main job would (same settings,
    seed and number of steps, even when the preset counts epochs) and super-resolve the
    fold's held-out LR images into ``out_dir/heldout.npy``."""
    from srda.run import (
        _dataset_info,
        build_model,
        end_training_job,
        fit,
        sr_network,
        start_training_job,
        train_steps,
    )
    from srda.train.infer import super_resolve

    start = time.perf_counter()
    fold_dir, out_dir = Path(fold_dir), Path(out_dir)
    name = settings.get("name", "method")
    if settings.get("external"):
        raise InputError(
            f"methods.{name}", "an outside tool cannot be cross-fitted (it sees no training data)"
        )
    device, ctx = start_training_job(seed, gpus, threads)
    info = _dataset_info(fold_dir)
    model = build_model(settings, scale, num_classes=len(info["classes"]))
    if not sum(p.numel() for p in sr_network(model).parameters()):
        raise InputError(
            f"methods.{name}",
            "has no parameters to train: cross-fitting changes nothing (use its train.npy)",
        )
    heldout = read_heldout_index(fold_dir)
    heldout_lr = layout.lr_shard(fold_dir, scale, layout.HELDOUT)
    n_train = len(read_meta(layout.meta_csv(fold_dir, "train")))
    # The main job's number of steps: counted over all train images, not this fold's share.
    steps = train_steps(settings["train"], n_train + len(heldout), settings["batch_size"])
    fold_settings = {**settings, "train": {**settings["train"], "steps": steps, "epochs": None}}
    out_dir.mkdir(parents=True, exist_ok=True)
    fold = _fold_number(fold_dir)
    logger.info(
        "%s fold %s: training %d steps on %d images, %d held out",
        name,
        fold,
        steps,
        n_train,
        len(heldout),
    )
    training = fit(model, fold_settings, fold_dir, scale, seed, out_dir, device)
    if not end_training_job(ctx):  # rank 0 alone super-resolves with the trained weights
        return {"method": name, "fold": fold, "rank": ctx.rank, "training": training}
    super_resolve(
        sr_network(model),
        heldout_lr,
        layout.sr_shard(out_dir, layout.HELDOUT),
        device,
        batch_size=settings["batch_size"],
        desc=f"{name} fold {fold} held out",
    )
    n_sr = len(read_shard(layout.sr_shard(out_dir, layout.HELDOUT)))
    if n_sr != len(heldout):
        raise InputError(heldout_lr, f"{n_sr} LR images for {len(heldout)} held-out rows")
    summary = {
        "method": name,
        "fold": fold,
        "scale": scale,
        "seed": seed,
        "n_train": n_train,
        "n_heldout": len(heldout),
        "steps": steps,
        "device": str(device),
        "host": socket.gethostname(),
        "training": training,
        "seconds": round(time.perf_counter() - start, 2),
        "settings": settings,
    }
    with atomic_path(layout.run_json(out_dir)) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=str))
    logger.info("%s fold %s done in %.1f s", name, fold, summary["seconds"])
    return summary


# --------------------------------------------------------------------------------------------
# Reassembly


def _fold_count(folds_dir: Path) -> int | None:
    path = layout.folds_csv(folds_dir)
    if not path.exists():
        return None
    folds = pd.read_csv(path, dtype={"subject": str, "label": str})
    if "fold" not in folds.columns:
        raise InputError(path, "lacks a fold column")
    return int(folds["fold"].nunique())


def _fill(out: np.ndarray, folds_dir: Path, method_folds: Sequence[Path], n_train: int) -> None:
    """Write each fold's held-out SR images into their original rows of ``out``."""
    folds_dir = Path(folds_dir)
    k = _fold_count(folds_dir)
    if k is not None and k != len(method_folds):
        raise InputError(
            layout.folds_csv(folds_dir), f"has {k} folds, {len(method_folds)} were given"
        )
    covered = np.zeros(n_train, dtype=np.int64)
    for f, method_dir in enumerate(method_folds):
        index = read_heldout_index(layout.fold_dir(folds_dir, f))
        sr_path = layout.sr_shard(method_dir, layout.HELDOUT)
        sr = read_shard(sr_path)
        if len(sr) != len(index):
            raise InputError(sr_path, f"{len(sr)} images for {len(index)} held-out rows")
        if sr.shape[1:] != out.shape[1:]:
            raise InputError(sr_path, f"images of shape {sr.shape[1:]}, expected {out.shape[1:]}")
        bad = index[(index < 0) | (index >= n_train)]
        if len(bad):
            raise InputError(
                layout.heldout_index_csv(layout.fold_dir(folds_dir, f)),
                f"rows {bad[:5].tolist()} outside the {n_train} train rows",
            )
        covered[index] += 1
        for start in range(0, len(index), _CHUNK):
            out[index[start : start + _CHUNK]] = sr[start : start + _CHUNK]
    for problem, rows in (
        ("held out by no fold", np.flatnonzero(covered == 0)),
        ("held out by several folds", np.flatnonzero(covered > 1)),
    ):
        if len(rows):
            raise InputError(folds_dir, f"{len(rows)} train rows {problem}: {rows[:5].tolist()}")


def _image_shape(method_folds: Sequence[Path]) -> tuple[int, ...]:
    if not method_folds:
        raise InputError("--folds", "no fold given")
    return tuple(read_shard(layout.sr_shard(method_folds[0], layout.HELDOUT)).shape[1:])


def assemble_train(folds_dir: Path, method_folds: list[Path], n_train: int) -> np.ndarray:
    """The (N, H, W) float32 out-of-fold train SR images in the original train row order;
    every row must come from exactly one fold (an InputError otherwise)."""
    out = np.zeros((n_train, *_image_shape(method_folds)), dtype=np.float32)
    _fill(out, folds_dir, method_folds, n_train)
    return out


def write_assembled(
    folds_dir: Path, method_folds: list[Path], n_train: int, out_path: Path
) -> None:
    """``assemble_train`` written straight into a shard at ``out_path`` (memory-mapped, atomic)."""
    shape = (n_train, *_image_shape(method_folds))
    with atomic_path(out_path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        _fill(out, folds_dir, method_folds, n_train)
        out.flush()
        del out
    logger.info("assembled %d out-of-fold train images from %d folds", n_train, len(method_folds))
