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
    means = resampled_cluster_means(values[ok], np.asarray(clusters)[ok], n_boot, seed)
    return percentile_interval(means, level)


def resampled_cluster_means(
    values: np.ndarray, clusters: np.ndarray, n_boot: int, seed: int
) -> np.ndarray:
    """The pooled mean of ``values`` in each of ``n_boot`` resamples that draw whole clusters
    with replacement (every item of a drawn cluster, as often as it is drawn); empty when there
    are no resamples or fewer than two clusters."""
    _, inverse = np.unique(np.asarray(clusters), return_inverse=True)
    inverse = inverse.ravel()
    n_clusters = int(inverse.max()) + 1 if inverse.size else 0
    if n_boot <= 0 or n_clusters < 2:
        return np.empty(0)
    sums = np.bincount(inverse, weights=values, minlength=n_clusters)
    counts = np.bincount(inverse, minlength=n_clusters).astype(np.float64)
    draws = np.random.default_rng(seed).integers(0, n_clusters, size=(n_boot, n_clusters))
    return sums[draws].sum(axis=1) / counts[draws].sum(axis=1)


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap ``samples``; the non-finite ones
    (resamples where a statistic is undefined) are skipped; (nan, nan) when none is left."""
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(samples, [tail, 1.0 - tail])
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


# --------------------------------------------------------------------------------------------
# Subject-level inference (diagnosis table: several slices per subject, two methods compared)
#
# Slices of one subject share its anatomy and its label, so they are not independent draws:
# every test and interval below treats the subject as the unit.

#: Relative tolerance when comparing permutation statistics with the observed one: sums of
#: the same numbers in another order differ by round-off, and a tie must not be lost to it.
_TIE_RTOL = 1e-12

#: Rows of sign vectors drawn at once in the Monte Carlo sign-flip test (bounds memory).
_SIGN_FLIP_CHUNK = 1 << 20


def per_subject_means(values: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` within each cluster (subject): one number per independent unit.

    Turns per-slice scores into per-subject scores so that a paired test over subjects
    (``sign_flip_test``) does not count the slices of one subject as separate evidence.
    Returns ``(ids, means)`` with ``ids`` sorted as ``np.unique`` sorts them. Non-finite values
    (NaN) are dropped first, so a cluster without any finite value is left out altogether
    rather than given a NaN mean.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    clusters = np.asarray(clusters).ravel()
    if values.shape != clusters.shape:
        raise ValueError(
            f"per_subject_means: {values.size} values against {clusters.size} cluster ids"
        )
    ok = np.isfinite(values)
    ids, inverse = np.unique(clusters[ok], return_inverse=True)
    inverse = inverse.ravel()
    sums = np.bincount(inverse, weights=values[ok], minlength=ids.size)
    counts = np.bincount(inverse, minlength=ids.size)
    return ids, sums / np.maximum(counts, 1)


def _exact_abs_sums(d: np.ndarray) -> np.ndarray:
    """|sum(s_i d_i)| over the 2^(k-1) sign vectors with s_0 = +1.

    The null distribution of |sum| is symmetric under flipping every sign, so fixing the first
    sign halves the work and leaves every proportion unchanged. Built by doubling (each new
    difference enters with + and -), which costs 2^(k-1) doubles of memory.
    """
    sums = np.array([d[0]])
    for value in d[1:]:
        sums = np.concatenate([sums + value, sums - value])
    return np.abs(sums)


def sign_flip_test(
    differences: np.ndarray, n_perm: int = 10000, seed: int = 0, exact_below: int = 16
) -> float:
    """Two-sided paired permutation (sign-flip) p-value of mean(d) == 0, one d per subject.

    Under the null hypothesis that methods A and B are exchangeable on every subject, the sign
    of each per-subject difference ``d_i = score_A - score_B`` is equally likely to be + or -,
    independently across subjects. The statistic is ``|sum d|`` (equivalent to ``|mean d|``
    for a fixed number of subjects). Unlike the t-test it needs no normality, and unlike
    Wilcoxon it tests the mean, the quantity the accuracy table reports.

    * Zero differences do not change the statistic under any sign, so only the ``k`` non-zero
      ones are flipped. With ``k <= exact_below`` all ``2^k`` sign vectors are enumerated and
      ``p = #{stat_perm >= stat_obs} / 2^k`` (memory ~ ``2^(k-1)`` doubles: keep
      ``exact_below`` at about 24 or less).
    * Otherwise ``n_perm`` random sign vectors from ``np.random.default_rng(seed)`` give the
      Monte Carlo p ``(1 + #{stat_perm >= stat_obs}) / (1 + n_perm)``, which never reaches 0
      (it is at least ``1 / (1 + n_perm)``); ``n_perm <= 0`` then gives NaN.

    Statistics are compared with a relative tolerance so that round-off cannot break ties.
    The exact p is at least ``2 / 2^k`` (see ``smallest_attainable_p``). With 0/1 correctness,
    one image per subject, the exact result is the exact sign test, i.e. exact McNemar.
    Non-finite entries (NaN) are dropped; nothing left gives NaN; all differences zero
    (identical predictions) give 1.0.
    """
    d = np.asarray(differences, dtype=np.float64).ravel()
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan")
    d = d[d != 0]
    k = d.size
    if k == 0:
        return 1.0
    observed = abs(float(d.sum()))
    threshold = observed - _TIE_RTOL * float(np.abs(d).sum())
    if k <= exact_below:
        stats_perm = _exact_abs_sums(d)
        return float(np.count_nonzero(stats_perm >= threshold) / stats_perm.size)
    if n_perm <= 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    rows = max(1, _SIGN_FLIP_CHUNK // k)
    hits = 0
    done = 0
    while done < n_perm:
        m = min(rows, n_perm - done)
        signs = rng.integers(0, 2, size=(m, k), dtype=np.int8) * 2 - 1
        hits += int(np.count_nonzero(np.abs(signs @ d) >= threshold))
        done += m
    return float((1 + hits) / (1 + n_perm))


def paired_cluster_bootstrap_diff(
    values_a: np.ndarray,
    values_b: np.ndarray,
    clusters: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """Pooled mean(a) - mean(b) with a paired cluster-bootstrap percentile interval.

    ``values_a`` and ``values_b`` are the two methods' scores on the same items (e.g. per-slice
    correctness 0/1), aligned item by item; ``clusters`` gives each item's subject. Each
    resample draws subjects with replacement and takes all of their items for BOTH methods
    (the same draw: paired), so the subject-to-subject variation common to A and B cancels in
    the difference. Two separate intervals for A and B would keep it and be far too wide when
    the methods agree on most subjects; resampling slices instead of subjects would be too
    narrow.

    Returns ``(estimate, lo, hi)``. Pairs with a non-finite value on either side are dropped;
    nothing left gives NaN throughout; fewer than two subjects or ``n_boot <= 0`` give
    ``(estimate, nan, nan)``.
    """
    a = np.asarray(values_a, dtype=np.float64).ravel()
    b = np.asarray(values_b, dtype=np.float64).ravel()
    clusters = np.asarray(clusters).ravel()
    if not (a.shape == b.shape == clusters.shape):
        raise ValueError(
            f"paired_cluster_bootstrap_diff: {a.size} values of a, {b.size} of b and "
            f"{clusters.size} cluster ids; items must be aligned"
        )
    ok = np.isfinite(a) & np.isfinite(b)
    # The pooled means are over the same items, so their difference is the mean difference.
    d, clusters = a[ok] - b[ok], clusters[ok]
    if d.size == 0:
        return float("nan"), float("nan"), float("nan")
    lo, hi = percentile_interval(resampled_cluster_means(d, clusters, n_boot, seed), level)
    return float(d.mean()), lo, hi


def minimal_detectable_difference(
    sd_difference: float,
    n_subjects: int,
    alpha: float = 0.05,
    power: float = 0.8,
    n_comparisons: int = 1,
    distribution: str = "t",
) -> float:
    """Smallest mean per-subject difference a two-sided paired test detects with ``power``.

    Says before (or beside) a comparison how large a gain the test set can show at all: a
    true difference below this is missed more often than ``1 - power`` of the time.
    ``sd_difference`` is the standard deviation of the per-subject differences ``d_i`` over
    ``n_subjects`` independent subjects. The level is ``alpha / n_comparisons``: after Holm no
    comparison is rejected unless its raw p is below ``alpha / m`` (Holm's first step), so the
    best of the ``m`` comparisons must reach that level. The paired t approximation::

        mde = (t_{1 - alpha / (2 m), n - 1} + t_{power, n - 1}) * sd / sqrt(n)

    whose exact (noncentral t) power is 0.77-0.80 for n from 9 to 100 at m = 12; the normal
    version (z quantiles, ``distribution="normal"``) is optimistic for small n (0.47 at n = 9,
    0.76 at n = 40 with m = 4).

    It also ignores that an exact sign-flip / sign test over n subjects cannot give p below
    ``smallest_attainable_p(n) = 2 / 2^n``: when that exceeds ``alpha / m``, no difference can
    be declared at all, whatever its size (``min_subjects_for_significance`` gives the least
    n that can). Returns inf with fewer than two subjects or a non-finite sd, 0 when sd is 0.
    """
    from scipy import stats

    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError(f"minimal_detectable_difference: alpha {alpha} and power {power}")
    if n_comparisons < 1:
        raise ValueError(f"minimal_detectable_difference: n_comparisons {n_comparisons} < 1")
    sd = float(sd_difference)
    if n_subjects < 2 or not np.isfinite(sd):
        return float("inf")
    if sd < 0:
        raise ValueError(f"minimal_detectable_difference: negative sd {sd}")
    if sd == 0:
        return 0.0
    if distribution == "t":
        quantile = lambda q: stats.t.ppf(q, n_subjects - 1)  # noqa: E731
    elif distribution == "normal":
        quantile = stats.norm.ppf
    else:
        raise ValueError(f"minimal_detectable_difference: distribution {distribution!r}")
    level = quantile(1.0 - alpha / (2.0 * n_comparisons))
    return float((level + quantile(power)) * sd / np.sqrt(n_subjects))


def smallest_attainable_p(n_nonzero: int) -> float:
    """Smallest two-sided p an exact sign-flip or sign test gives on ``n_nonzero`` subjects.

    Reached when every non-zero per-subject difference has the same sign: only that sign
    vector and its negation are as extreme, so ``p = 2 / 2^n`` (1.0 for n = 0 or 1). With few
    subjects this floor can exceed a Bonferroni/Holm level, and then no result is significant.
    """
    n = int(n_nonzero)
    if n < 0:
        raise ValueError(f"smallest_attainable_p: negative count {n}")
    if n == 0:
        return 1.0
    return float(np.ldexp(1.0, 1 - n))


def min_subjects_for_significance(alpha: float = 0.05, n_comparisons: int = 1) -> int:
    """Least number of (non-zero) subjects whose exact sign test can reach ``alpha / m``.

    The smallest n with ``smallest_attainable_p(n) = 2 / 2^n <= alpha / n_comparisons``; a
    test set with fewer subjects cannot show any difference at that level, however large.
    """
    if not 0.0 < alpha < 1.0 or n_comparisons < 1:
        raise ValueError(
            f"min_subjects_for_significance: alpha {alpha}, n_comparisons {n_comparisons}"
        )
    level = alpha / n_comparisons
    n = 1
    while smallest_attainable_p(n) > level:
        n += 1
    return n
