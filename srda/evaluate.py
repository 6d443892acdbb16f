"""Score SR output against HR: per-image PSNR/SSIM with the border cropped by the scale, and
the same inside each labelled region of interest when the dataset has ROI masks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from srda import layout
from srda.errors import InputError
from srda.metrics import mask_psnr, mask_ssim, psnr, ssim
from srda.shards import read_meta, read_shard, write_csv


def region_slug(name: str) -> str:
    """Column-safe name of a region: 'lateral ventricles' -> 'lateral_ventricles'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def roi_columns(roi_labels: dict[str, str]) -> list[str]:
    return [f"{m}_{region_slug(n)}" for n in roi_labels.values() for m in ("psnr", "ssim")]


def score_images(
    sr: np.ndarray,
    hr: np.ndarray,
    meta: pd.DataFrame,
    scale: int,
    roi: np.ndarray | None = None,
    roi_labels: dict[str, str] | None = None,
) -> pd.DataFrame:
    """One row per image: the meta columns plus psnr and ssim (float64, data range 1), and
    ``psnr_<region>`` / ``ssim_<region>`` for each ``roi_labels`` entry (label value -> name)
    when ``roi`` (label images of the HR shape) is given; NaN where an image lacks the region."""
    if sr.shape != hr.shape:
        raise ValueError(f"SR shape {sr.shape} != HR shape {hr.shape}")
    if len(meta) != len(hr):
        raise ValueError(f"meta has {len(meta)} rows for {len(hr)} images")
    out = meta.copy()
    out["psnr"] = psnr(np.asarray(sr), np.asarray(hr), crop=scale)
    out["ssim"] = ssim(np.asarray(sr), np.asarray(hr), crop=scale)
    if roi is not None and roi_labels:
        labels = np.asarray(roi)
        if labels.shape != hr.shape:
            raise ValueError(f"ROI shape {labels.shape} != HR shape {hr.shape}")
        c = scale
        sr_c, hr_c = np.asarray(sr)[:, c:-c, c:-c], np.asarray(hr)[:, c:-c, c:-c]
        for value, name in roi_labels.items():
            mask = labels == int(value)
            slug = region_slug(name)
            out[f"psnr_{slug}"] = mask_psnr(sr_c, hr_c, mask[:, c:-c, c:-c])
            out[f"ssim_{slug}"] = mask_ssim(sr, hr, mask, crop=scale)
    return out


def dataset_roi(data_dir: Path, split: str = "test") -> tuple[np.ndarray | None, dict[str, str]]:
    """The split's ROI label images and the label names of ``dataset.json`` (None, {} when the
    dataset has no masks)."""
    info_path = layout.dataset_json(data_dir)
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    roi_path = layout.roi_shard(data_dir, split)
    if not info.get("has_roi") or not roi_path.exists():
        return None, {}
    return read_shard(roi_path), {str(k): v for k, v in info.get("roi_labels", {}).items()}


def score_method(data_dir: Path, scale: int, sr_dir: Path) -> pd.DataFrame:
    """Per-image PSNR/SSIM (and ROI scores) of ``sr_dir/test.npy`` against the HR test shard,
    written to ``sr_dir/test_metrics.csv`` (used for external methods too)."""
    hr = read_shard(layout.hr_shard(data_dir, "test"))
    sr_path = layout.sr_shard(sr_dir, "test")
    sr = read_shard(sr_path)
    if sr.shape != hr.shape:
        raise InputError(sr_path, f"SR shape {sr.shape} != HR shape {hr.shape}")
    if not np.isfinite(np.asarray(sr)).all():
        raise InputError(sr_path, "SR shard contains NaN or infinite values")
    roi, roi_labels = dataset_roi(data_dir)
    if roi is not None and roi.shape != hr.shape:
        roi_path = layout.roi_shard(data_dir, "test")
        raise InputError(roi_path, f"shape {roi.shape} != HR shape {hr.shape}")
    meta = read_meta(layout.meta_csv(data_dir, "test"))
    scores = score_images(np.clip(sr, 0.0, 1.0), hr, meta, scale, roi, roi_labels)
    write_csv(layout.sr_metrics_csv(sr_dir), scores)
    return scores
