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


# --------------------------------------------------------------------------------------------
# Paired tests and multiple-comparison adjustment (Table III: each method against SRDA)

#: Discordant pairs below which ``mcnemar`` uses the exact binomial test (a common rule).
MCNEMAR_EXACT_BELOW = 25


def wilcoxon_paired(a: np.ndarray, b: np.ndarray, zero_method: str = "wilcox") -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired samples ``a`` and ``b``.

    Pairs with a NaN on either side are dropped. ``zero_method`` goes to
    ``scipy.stats.wilcoxon`` (default ``"wilcox"``: zero differences are discarded); scipy's
    default ``method="auto"`` picks the exact null distribution for small samples without ties
    or zeros and the normal approximation otherwise. When every difference is zero the two
    samples are indistinguishable and the p-value is 1.0 (scipy would fail or return NaN);
    with no pairs left it is NaN. The test assumes the pairs are independent of one another
    (e.g. one pair per seed, or per subject, never per slice of the same subjects).
    """
    from scipy import stats

    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"wilcoxon_paired: {a.size} values against {b.size}; pairs must match")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size == 0:
        return float("nan")
    d = a - b
    if np.all(d == 0):
        return 1.0
    return float(stats.wilcoxon(a, b, zero_method=zero_method, alternative="two-sided").pvalue)


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray, exact: bool | None = None) -> float:
    """Two-sided McNemar p-value for two classifiers scored on the same items.

    ``correct_a`` / ``correct_b``: booleans (or 0/1), one per item, aligned. Only the
    discordant pairs matter: ``n01`` (a right, b wrong) and ``n10`` (a wrong, b right),
    ``n = n01 + n10``.

    * ``exact`` (default when ``n < 25``): exact binomial test of ``n01`` ~ Bin(n, 1/2),
      ``p = min(1, 2 * P[X <= min(n01, n10)])``.
    * otherwise: chi-square with Edwards' continuity correction,
      ``(|n01 - n10| - 1)^2 / n`` on 1 degree of freedom.

    No discordant pair gives p = 1.0; no item at all gives NaN. Items must be independent
    (compare per subject, not per slice, when slices share a subject).
    """
    from scipy import stats

    a = np.asarray(correct_a).astype(bool).ravel()
    b = np.asarray(correct_b).astype(bool).ravel()
    if a.shape != b.shape:
        raise ValueError(f"mcnemar: {a.size} items against {b.size}; items must be paired")
    if a.size == 0:
        return float("nan")
    n01 = int(np.sum(a & ~b))
    n10 = int(np.sum(~a & b))
    n = n01 + n10
    if n == 0:
        return 1.0
    if exact is None:
        exact = n < MCNEMAR_EXACT_BELOW
    if exact:
        return float(min(1.0, 2.0 * stats.binom.cdf(min(n01, n10), n, 0.5)))
    chi2 = (abs(n01 - n10) - 1.0) ** 2 / n
    return float(stats.chi2.sf(chi2, df=1))


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values, in the input order.

    With the m finite p-values sorted ascending, ``p_(i)`` becomes
    ``max_{j <= i} min(1, (m - j + 1) p_(j))`` (1-based): monotone in the raw p-values and
    capped at 1. NaN entries stay NaN and do not count in m. Controls the family-wise error
    rate under any dependence between the tests.
    """
    p = np.asarray(p_values, dtype=np.float64)
    shape = p.shape
    p = p.ravel()
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out.reshape(shape)
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ValueError(f"holm: p-values must lie in [0, 1], got {p[ok].tolist()}")
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = p[order] * (m - np.arange(m))
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out.reshape(shape)
