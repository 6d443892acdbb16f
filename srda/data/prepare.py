"""The data stage of one dataset: ingest -> slice -> split -> LR shards, written atomically.

Outputs under ``out_dir``: a data folder of ``srda.layout`` (``layout.data_files``: HR, meta
and ROI per split, the LR shards of each scale, splits.csv, split_report.csv, dataset.json).
Everything is staged in a hidden folder and moved into place only when all of it succeeded.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from srda import layout
from srda.data import ingest
from srda.data.degrade import downscale
from srda.data.slicing import image_to_hr, volume_to_slices
from srda.data.split import SplitError, SplitResult, split_rows
from srda.data.synthetic import SLICE_PIXEL_MM
from srda.errors import InputError
from srda.shards import ShardWriter, read_shard, write_csv

logger = logging.getLogger(__name__)
#: Every kept slice, staged before the split deals them out (a "split" of the staging folder).
ALL = "all"
CHUNK = 256


def source_paths(settings: dict[str, Any], cohort_dir: Path | None) -> dict[str, Any]:
    """Where a dataset's files are: the embedded cohort's folder, or the user's paths."""
    if settings["source"] == "synthetic":
        if cohort_dir is None:
            raise InputError(settings["name"], "a synthetic dataset needs --cohort")
        kind = settings["synthetic"]["kind"]
        if kind == "volumes":
            return {
                "layout": "nifti",
                "path": cohort_dir / "volumes",
                "labels": cohort_dir / "labels.csv",
                "masks": cohort_dir / "masks",
            }
        return {
            "layout": "folders",
            "path": cohort_dir / "images",
            "masks": cohort_dir / "masks",
            "subjects": None,
            "pixel_mm": SLICE_PIXEL_MM,
        }
    opt = lambda key: Path(settings[key]) if settings.get(key) else None  # noqa: E731
    return {
        "layout": settings["source"],
        "path": Path(settings["path"]),
        "labels": opt("labels"),
        "masks": opt("masks"),
        "subjects": opt("subjects"),
        "pixel_mm": settings.get("pixel_mm"),
    }


def _slice_all(
    settings: dict[str, Any], src: dict[str, Any], stage: Path
) -> tuple[pd.DataFrame, list[str], bool]:
    """Slice every unit into staged all_hr / all_roi shards; return the row metadata."""
    rows: list[dict[str, Any]] = []
    hr_size = settings["hr_size"]
    has_roi = True
    with (
        ShardWriter(layout.hr_shard(stage, ALL)) as hr_out,
        ShardWriter(layout.roi_shard(stage, ALL), "uint8") as roi_out,
    ):
        if src["layout"] == "nifti":
            refs = ingest.find_volumes(
                src["path"],
                labels=src["labels"],
                masks=src["masks"],
                classes=settings["classes"],
                label_map=settings["label_map"] or None,
                modality=settings["modality"],
                label_column=settings["label_column"],
            )
            classes = list(settings["classes"])
            for ref in tqdm(refs, desc=f"{settings['name']}: slicing volumes", unit="vol"):
                vol = ingest.load_volume(ref)
                try:
                    sl = volume_to_slices(
                        vol.data,
                        vol.zooms,
                        settings["plane"],
                        hr_size,
                        settings["min_brain_fraction"],
                        settings["slices_per_volume"],
                        tuple(settings["clip_percentiles"]),
                        vol.mask,
                    )
                except ValueError as exc:
                    raise InputError(ref.path, str(exc)) from exc
                hr_out.append(sl.images)
                has_roi &= sl.roi is not None
                roi_out.append(sl.roi if sl.roi is not None else np.zeros_like(sl.images, np.uint8))
                rows += [
                    {
                        "subject": ref.subject,
                        "image": ref.image_id,
                        "slice": int(k),
                        "label": ref.label,
                        "pixel_mm": round(sl.pixel_mm, 6),
                    }
                    for k in sl.slice_index
                ]
        else:
            refs, classes = ingest.find_images(
                src["path"], masks=src.get("masks"), subjects=src.get("subjects")
            )
            for ref in tqdm(refs, desc=f"{settings['name']}: resizing images", unit="img"):
                image, mask = ingest.load_image(ref)
                sl = image_to_hr(image, hr_size, mask, src.get("pixel_mm"))
                hr_out.append(sl.images)
                has_roi &= sl.roi is not None
                roi_out.append(sl.roi if sl.roi is not None else np.zeros_like(sl.images, np.uint8))
                rows.append(
                    {
                        "subject": ref.subject,
                        "image": ref.image_id,
                        "slice": 0,
                        "label": ref.label,
                        "pixel_mm": round(sl.pixel_mm, 6),
                    }
                )
    return pd.DataFrame(rows), classes, has_roi


def _labels_source(src: dict[str, Any]) -> Path:
    """What gave the images their classes: the labels table, or the class folders (and the
    subjects CSV, when it groups them)."""
    if src["layout"] == "nifti":
        return src["labels"] or src["path"] / "participants.tsv"
    return src.get("subjects") or src["path"]


def _split(
    settings: dict[str, Any], src: dict[str, Any], meta: pd.DataFrame, classes: list[str]
) -> SplitResult:
    """The split, after refusing a configured class with no images and a cohort too small."""
    name, where = settings["name"], _labels_source(src)
    empty = [c for c in classes if c not in set(meta["label"])]
    if empty:
        kept = ", ".join(c for c in classes if c not in empty)
        drop = f", or leave it out with classes: [{kept}]" if settings["source"] == "nifti" else ""
        raise InputError(
            where,
            f"dataset {name}: no images of class {', '.join(empty)} "
            f"(classes: {', '.join(classes)}); add its subjects{drop}",
        )
    try:
        return split_rows(
            meta, settings["split"], settings["split_fractions"], settings["split_seed"], classes
        )
    except SplitError as exc:
        raise InputError(where, f"dataset {name}: {exc}") from None


def _gather(src: np.ndarray, index: np.ndarray, path: Path, dtype: str) -> None:
    with ShardWriter(path, dtype) as out:
        for start in range(0, len(index), CHUNK):
            out.append(np.asarray(src[index[start : start + CHUNK]]))


def _write_lr(hr_path: Path, lr_path: Path, scale: int) -> None:
    hr = read_shard(hr_path)
    with ShardWriter(lr_path) as out:
        for start in range(0, len(hr), CHUNK):
            out.append(downscale(np.asarray(hr[start : start + CHUNK]), scale))


def prepare_dataset(
    settings: dict[str, Any], out_dir: Path | str, cohort_dir: Path | None = None
) -> dict[str, Any]:
    """Run the data stage for one dataset; returns the summary also written to dataset.json."""
    out_dir = Path(out_dir)
    src = source_paths(settings, Path(cohort_dir) if cohort_dir else None)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-", dir=out_dir.parent))
    try:
        meta, classes, has_roi = _slice_all(settings, src, stage)
        if meta.empty:
            raise InputError(src["path"], "no slices kept (check min_brain_fraction)")
        split = _split(settings, src, meta, classes)
        all_hr = read_shard(layout.hr_shard(stage, ALL))
        all_roi = read_shard(layout.roi_shard(stage, ALL))
        counts = {}
        for name in layout.SPLITS:
            index = np.flatnonzero((split.row_split == name).to_numpy())
            counts[name] = int(len(index))
            hr_path = layout.hr_shard(stage, name)
            _gather(all_hr, index, hr_path, "float32")
            _gather(all_roi, index, layout.roi_shard(stage, name), "uint8")
            part = meta.iloc[index].reset_index(drop=True)
            part.insert(0, "index", np.arange(len(part)))
            write_csv(layout.meta_csv(stage, name), part)
            for scale in settings["scales"]:
                _write_lr(hr_path, layout.lr_shard(stage, scale, name), scale)
        del all_hr, all_roi
        layout.hr_shard(stage, ALL).unlink()
        layout.roi_shard(stage, ALL).unlink()
        write_csv(layout.splits_csv(stage), split.table)
        write_csv(layout.split_report_csv(stage), split.report)
        summary = {
            "name": settings["name"],
            "source": settings["source"],
            "modality": settings["modality"],
            "classes": classes,
            "hr_size": settings["hr_size"],
            "scales": settings["scales"],
            "split": settings["split"],
            "split_seed": settings["split_seed"],
            "counts": counts,
            "subjects": int(meta["subject"].nunique()),
            "subjects_in_multiple_splits": split.shared_subjects,
            "leaks_subjects": split.shared_subjects > 0,
            "has_roi": bool(has_roi),
            "roi_labels": {
                "1": "hippocampus",
                "2": "lateral ventricles",
                "3": "cortical AD regions",
            }
            if settings["source"] == "synthetic"
            else {},
        }
        layout.dataset_json(stage).write_text(json.dumps(summary, indent=2))
        _publish(stage, out_dir)
        logger.info(
            "%s: %s slices (train/val/test), %d subjects, %d shared between splits",
            settings["name"],
            counts,
            summary["subjects"],
            split.shared_subjects,
        )
        return summary
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _publish(stage: Path, out_dir: Path) -> None:
    """Move every staged file into out_dir (other files there, e.g. SR outputs, stay)."""
    for path in sorted(stage.rglob("*")):
        if path.is_file():
            target = out_dir / path.relative_to(stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            path.replace(target)
