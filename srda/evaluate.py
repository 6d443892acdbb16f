"""Score SR output against HR: per-image PSNR/SSIM with the border cropped by the scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from srda.errors import InputError
from srda.metrics import psnr, ssim
from srda.shards import read_meta, read_shard, write_csv


def score_images(sr: np.ndarray, hr: np.ndarray, meta: pd.DataFrame, scale: int) -> pd.DataFrame:
    """One row per image: the meta columns plus psnr and ssim (float64, data range 1)."""
    if sr.shape != hr.shape:
        raise ValueError(f"SR shape {sr.shape} != HR shape {hr.shape}")
    if len(meta) != len(hr):
        raise ValueError(f"meta has {len(meta)} rows for {len(hr)} images")
    out = meta.copy()
    out["psnr"] = psnr(np.asarray(sr), np.asarray(hr), crop=scale)
    out["ssim"] = ssim(np.asarray(sr), np.asarray(hr), crop=scale)
    return out


def score_method(data_dir: Path, scale: int, sr_dir: Path) -> pd.DataFrame:
    """Per-image PSNR/SSIM of ``sr_dir/test.npy`` against the HR test shard, written to
    ``sr_dir/test_metrics.csv`` (used for external methods too, which only write shards)."""
    hr = read_shard(data_dir / "test_hr.npy")
    sr = read_shard(sr_dir / "test.npy")
    if sr.shape != hr.shape:
        raise InputError(sr_dir / "test.npy", f"SR shape {sr.shape} != HR shape {hr.shape}")
    if not np.isfinite(np.asarray(sr)).all():
        raise InputError(sr_dir / "test.npy", "SR shard contains NaN or infinite values")
    scores = score_images(np.clip(sr, 0.0, 1.0), hr, read_meta(data_dir / "test_meta.csv"), scale)
    write_csv(sr_dir / "test_metrics.csv", scores)
    return scores
