"""Statistics for the tables: bootstrap intervals that resample subjects, not slices.

Slices of one subject are not independent, so intervals come from a cluster bootstrap: draw
subjects with replacement and pool all of their images.
"""

from __future__ import annotations

import numpy as np


def cluster_bootstrap_ci(
    values: np.ndarray, clusters: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the pooled mean of ``values`` under resampling of ``clusters``.

    Returns (nan, nan) when there are no resamples or fewer than two clusters.
    """
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    values, clusters = values[ok], np.asarray(clusters)[ok]
    _, inverse = np.unique(clusters, return_inverse=True)
    n_clusters = inverse.max() + 1 if len(inverse) else 0
    if n_boot <= 0 or n_clusters < 2:
        return float("nan"), float("nan")
    sums = np.bincount(inverse, weights=values, minlength=n_clusters)
    counts = np.bincount(inverse, minlength=n_clusters).astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_clusters, size=(n_boot, n_clusters))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)
