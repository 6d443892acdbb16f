"""Score SR output against HR: per-image PSNR/SSIM with the border cropped by the scale."""

from __future__ import annotations

import numpy as np
import pandas as pd

from srda.metrics import psnr, ssim


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
