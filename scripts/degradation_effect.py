#!/usr/bin/env python3
"""Bicubic's PSNR under each degradation model, on slices of the embedded synthetic cohort.

    python scripts/degradation_effect.py                 # defaults below, Markdown table
    python scripts/degradation_effect.py --subjects 12 --scale 4 --json effect.json

No workflow run is needed: subjects are drawn with ``srda.data.synthetic`` (the cohort's own
code, seed 0), HR slices are made without the data stage's crop-and-resample step, each is
degraded with ``srda.data.degrade.degrade`` (noise seed 0), brought back with the Bicubic method
(``upscale``, clipped to [0, 1]) and scored against its HR with ``srda.metrics.psnr`` (border
crop = scale, as Table I). One row per (modality, degradation): mean and sd over slices.

- MRI: the 2D cohort's axial T1 slices (208 x 176 at 1 mm, uint8 / 255), one per subject.
- PET: FDG-like volumes at ``--pet-voxel-mm`` (default 2 mm: a 120 x 120 x 72 grid), the
  ``--pet-slices`` axial slices around the centre of each, scaled so the volume's 99.5th
  percentile is 1 and clipped to [0, 1]. ``pet`` gets ``voxel_mm`` from the grid.

This is not the benchmark's protocol (its HR slices are cropped to the head and resampled to
``hr_size``); it shows how much harder each model's LR is for the same interpolator.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pandas as pd

from srda.data import synthetic
from srda.data.degrade import check_fits, degrade, upscale
from srda.metrics import psnr
from srda.report.tables import to_markdown

MODELS = {
    "mri": [
        ("bicubic", {}),
        ("kspace", {}),
        ("kspace", {"window": "hamming"}),
        ("kspace", {"snr": 50.0}),
        ("kspace", {"snr": 20.0}),
    ],
    "pet": [
        ("bicubic", {}),
        ("pet", {"full_dose_counts": None}),
        ("pet", {"dose": 1.0}),
        ("pet", {"dose": 0.25}),
        ("pet", {"dose": 0.1}),
    ],
}


def mri_slices(n: int, seed: int) -> np.ndarray:
    images = []
    for i in range(1, n + 1):
        subj = synthetic.draw_subject(seed, "slices", i, (i - 1) % 3, 1.0)
        img, _ = synthetic.make_slice(subj, seed)
        images.append(img.astype(np.float64) / 255.0)
    return np.stack(images)


def pet_slices(n: int, seed: int, voxel_mm: float, per_volume: int) -> np.ndarray:
    images = []
    for i in range(1, n + 1):
        subj = synthetic.draw_subject(seed, "pet", i, (i - 1) % 3, 1.0)
        vol, _, _ = synthetic.make_volume(subj, "pet", voxel_mm, seed)
        vol = np.clip(vol / np.percentile(vol, 99.5), 0.0, 1.0)
        mid = vol.shape[2] // 2
        step = max(1, vol.shape[2] // (4 * per_volume))
        ks = mid + step * (np.arange(per_volume) - per_volume // 2)
        images += [vol[:, :, k].T[::-1] for k in ks]
    return np.stack(images)


def effect(hr: dict[str, np.ndarray], scale: int, pet_voxel_mm: float) -> pd.DataFrame:
    rows = []
    for modality, models in MODELS.items():
        images = hr[modality]
        h, w = images.shape[1:]
        images = images[:, : h - h % scale, : w - w % scale]
        for kind, params in models:
            check_fits(kind, modality)
            extra = {"voxel_mm": pet_voxel_mm} if kind == "pet" else {}
            lr = degrade(images, scale, kind, seed=0, **params, **extra)
            sr = upscale(lr, scale, clip=True)
            values = psnr(sr, images, crop=scale)
            label = ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"
            rows.append(
                {
                    "modality": modality,
                    "degradation": kind,
                    "params": label,
                    "n_slices": len(images),
                    "psnr_mean": round(float(values.mean()), 2),
                    "psnr_sd": round(float(values.std(ddof=1)), 2),
                }
            )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=12, help="subjects per modality")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0, help="cohort seed")
    parser.add_argument("--pet-voxel-mm", type=float, default=2.0)
    parser.add_argument("--pet-slices", type=int, default=4, help="axial slices per PET volume")
    parser.add_argument("--json", help="also write the table as JSON records here")
    args = parser.parse_args(argv)
    hr = {
        "mri": mri_slices(args.subjects, args.seed),
        "pet": pet_slices(args.subjects, args.seed, args.pet_voxel_mm, args.pet_slices),
    }
    table = effect(hr, args.scale, args.pet_voxel_mm)
    print(to_markdown([list(table.columns)] + table.astype(str).values.tolist()), end="")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(table.to_dict(orient="records"), fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
