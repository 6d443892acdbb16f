"""Evaluation speed: the suite's PSNR/SSIM against a per-image scikit-image loop.

Both score the same synthetic SR/HR pairs (float32 in [0, 1], border cropped by the scale):

- suite: ``srda.metrics.psnr`` and ``srda.metrics.ssim`` on the whole (N, H, W) stack;
- reference: a Python loop over the images calling ``skimage.metrics.peak_signal_noise_ratio``
  and ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=1.0)`` on float64 copies (BasicSR's SSIM settings, which the suite documents).

The values must agree to ``TOLERANCE``; the largest difference is reported and a larger one
raises (a wrong metric is not a benchmark result). Times are the median of the repeats.

``rescore_run`` re-times what a workflow run's evaluation did: the Table I scoring
(``srda.evaluate.score_images``, ROI metrics included) of every SR test shard the run wrote.
"""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import best_of

logger = logging.getLogger("bench")

TOLERANCE = 1e-6


def make_pairs(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(sr, hr): smooth HR images and a noisy, slightly blurred SR version, float32 in [0, 1]."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    coarse = rng.random((n, max(2, size // 8), max(2, size // 8)))
    hr = ndimage.zoom(coarse, (1, size / coarse.shape[1], size / coarse.shape[2]), order=3)
    hr = np.clip(hr[:, :size, :size], 0.0, 1.0)
    sr = ndimage.gaussian_filter(hr, sigma=(0, 0.7, 0.7)) + 0.02 * rng.standard_normal(hr.shape)
    return np.clip(sr, 0.0, 1.0).astype(np.float32), hr.astype(np.float32)


def skimage_loop(sr: np.ndarray, hr: np.ndarray, crop: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image PSNR and SSIM with scikit-image, one call per image."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    c = slice(crop, -crop) if crop else slice(None)
    psnr = np.empty(len(sr))
    ssim = np.empty(len(sr))
    for i in range(len(sr)):
        a = hr[i, c, c].astype(np.float64)
        b = sr[i, c, c].astype(np.float64)
        psnr[i] = peak_signal_noise_ratio(a, b, data_range=1.0)
        ssim[i] = structural_similarity(
            a,
            b,
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    return psnr, ssim


def suite(sr: np.ndarray, hr: np.ndarray, crop: int) -> tuple[np.ndarray, np.ndarray]:
    from srda.metrics import psnr, ssim

    return psnr(sr, hr, crop=crop), ssim(sr, hr, crop=crop)


def bench_metrics(
    n: int, size: int, crop: int, repeats: int, deadline: float | None
) -> dict[str, Any]:
    """Suite vs scikit-image on ``n`` images of ``size`` x ``size``; raises if values differ."""
    sr, hr = make_pairs(n, size)
    ours = suite(sr, hr, crop)
    ref = skimage_loop(sr, hr, crop)
    diff_psnr = float(np.max(np.abs(ours[0] - ref[0])))
    diff_ssim = float(np.max(np.abs(ours[1] - ref[1])))
    if not (diff_psnr <= TOLERANCE and diff_ssim <= TOLERANCE):
        raise AssertionError(
            f"suite and scikit-image disagree: max |dPSNR| {diff_psnr:.3g}, max |dSSIM| "
            f"{diff_ssim:.3g} (tolerance {TOLERANCE:g})"
        )
    # Time both within the deadline: half each, at least one repeat.
    now = time.perf_counter()
    mid = None if deadline is None else now + max(0.0, deadline - now) / 2
    t_suite = best_of(lambda: suite(sr, hr, crop), repeats, mid)
    t_ref = best_of(lambda: skimage_loop(sr, hr, crop), repeats, deadline)
    suite_s, ref_s = statistics.median(t_suite), statistics.median(t_ref)
    logger.info(
        "eval: suite %.4f s, scikit-image loop %.4f s on %d images of %dx%d (x%.1f)",
        suite_s,
        ref_s,
        n,
        size,
        size,
        ref_s / suite_s,
    )
    return {
        "images": n,
        "size": size,
        "crop": crop,
        "suite_s": suite_s,
        "skimage_s": ref_s,
        "suite_repeats": len(t_suite),
        "skimage_repeats": len(t_ref),
        "suite_images_per_s": n / suite_s,
        "skimage_images_per_s": n / ref_s,
        "speedup": ref_s / suite_s,
        "max_abs_diff_psnr": diff_psnr,
        "max_abs_diff_ssim": diff_ssim,
        "tolerance": TOLERANCE,
        "what": "PSNR + SSIM per image; suite: srda.metrics on the stack; reference: skimage loop",
    }


def sr_test_shards(results_dir: Path) -> list[tuple[Path, int, Path]]:
    """(dataset dir, scale, SR dir) of each method job's SR test shard (``srda.layout``:
    ``{dataset}/x{scale}/sr/{method}/seed{seed}/test.npy``) whose dataset folder has the HR
    test shard and its meta CSV."""
    from srda import layout

    pattern = layout.sr_shard(layout.sr_dir("", "*", "*", "*", "*"), "test")  # */x*/sr/...
    found = []
    for shard in sorted(results_dir.glob(str(pattern))):
        sr_dir = shard.parent
        scale_dir = sr_dir.parent.parent.parent  # x{scale}
        try:
            scale = int(scale_dir.name[1:])
        except ValueError:
            continue
        data_dir = scale_dir.parent
        test = (layout.hr_shard(data_dir, "test"), layout.meta_csv(data_dir, "test"))
        if all(p.is_file() for p in test):
            found.append((data_dir, scale, sr_dir))
    return found


def rescore_run(results_dir: Path, deadline: float | None = None) -> dict[str, Any] | None:
    """Seconds the Table I scoring of a run's SR test shards takes here (None: no shards).

    The same work ``srda.evaluate.score_method`` does in each job (clamp, PSNR/SSIM, ROI
    metrics), without writing the CSV, so the run's files are left untouched.
    """
    from srda import layout
    from srda.evaluate import dataset_roi, score_images
    from srda.shards import read_meta, read_shard

    shards = sr_test_shards(results_dir)
    if not shards:
        return None
    total, images, done = 0.0, 0, 0
    for data_dir, scale, sr_dir in shards:
        if done and deadline is not None and time.perf_counter() > deadline:
            break
        hr = np.asarray(read_shard(layout.hr_shard(data_dir, "test")))
        meta = read_meta(layout.meta_csv(data_dir, "test"))
        roi, labels = dataset_roi(data_dir)
        t0 = time.perf_counter()
        sr = np.clip(np.asarray(read_shard(layout.sr_shard(sr_dir, "test"))), 0.0, 1.0)
        score_images(sr, hr, meta, scale, roi, labels)
        total += time.perf_counter() - t0
        images += len(hr)
        done += 1
    return {
        "shards": len(shards),
        "shards_timed": done,
        # shards not timed (deadline) are counted at the mean time of those timed
        "seconds": total * len(shards) / done,
        "images": images,
        "what": "Table I scoring (srda.evaluate.score_images, ROI metrics included) of every SR "
        "test shard of the run, re-timed in this process",
    }
