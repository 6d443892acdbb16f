"""Known answers for the subject-level inference primitives of ``srda.stats``."""

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from srda.stats import (
    cluster_bootstrap_ci,
    mcnemar,
    min_subjects_for_significance,
    minimal_detectable_difference,
    paired_cluster_bootstrap_diff,
    per_subject_means,
    sign_flip_test,
    smallest_attainable_p,
)

# --------------------------------------------------------------------------------------------
# per_subject_means


def test_per_subject_means_known_answer_in_unique_order():
    values = np.array([1.0, 3.0, 10.0, 0.0, 1.0, 20.0])
    clusters = np.array(["s2", "s2", "s1", "s3", "s3", "s1"])
    ids, means = per_subject_means(values, clusters)
    assert ids.tolist() == ["s1", "s2", "s3"]
    assert np.allclose(means, [15.0, 2.0, 0.5])


def test_per_subject_means_drops_nan_and_empty_clusters():
    values = np.array([np.nan, 4.0, 2.0, np.nan, np.nan])
    clusters = np.array([0, 0, 1, 2, 2])
    ids, means = per_subject_means(values, clusters)
    assert ids.tolist() == [0, 1]  # subject 2 has no finite value
    assert np.allclose(means, [4.0, 2.0])
    ids, means = per_subject_means(np.array([]), np.array([]))
    assert ids.size == 0 and means.size == 0
    with pytest.raises(ValueError, match="cluster"):
        per_subject_means(np.ones(3), np.zeros(2))


# --------------------------------------------------------------------------------------------
# sign_flip_test


def _brute_force_p(d: list[Fraction]) -> Fraction:
    """Exact two-sided sign-flip p in rational arithmetic (no round-off, ties exact)."""
    observed = abs(sum(d))
    perms = [abs(sum(s * x for s, x in zip(signs, d, strict=True))) for signs in _signs(len(d))]
    return Fraction(sum(p >= observed for p in perms), len(perms))


def _signs(k: int):
    return itertools.product((1, -1), repeat=k)


def test_sign_flip_exact_known_answers():
    # all five the same sign: only the observed vector and its negation are as extreme
    assert sign_flip_test(np.ones(5)) == 2 / 32
    # S = 2X - 4 with X ~ Bin(4, 1/2): |S| >= 2 for X in {0, 1, 3, 4}: 1 + 4 + 4 + 1 = 10
    assert sign_flip_test(np.array([1.0, 1.0, 1.0, -1.0])) == 10 / 16
    assert sign_flip_test(-np.ones(5)) == 2 / 32


def test_sign_flip_zero_nan_and_empty():
    assert sign_flip_test(np.zeros(7)) == 1.0
    assert math.isnan(sign_flip_test(np.array([])))
    assert math.isnan(sign_flip_test(np.array([np.nan, np.nan])))
    assert math.isnan(sign_flip_test(np.array([np.nan, np.inf])))
    d = np.array([0.3, -0.1, 0.5, 0.2, 0.4])
    with_zeros = np.array([0.0, 0.3, 0.0, -0.1, 0.5, 0.2, 0.0, 0.4, np.nan])
    assert sign_flip_test(with_zeros) == sign_flip_test(d)
    # zeros do not count towards the exact/Monte Carlo switch either
    assert sign_flip_test(with_zeros, exact_below=5) == sign_flip_test(d, exact_below=5)


def test_sign_flip_exact_matches_rational_brute_force_with_ties():
    # tenths in floating point: many sign vectors tie with the observed |sum| mathematically
    # but differ from it by round-off; the tolerance must keep every tie
    for tenths in ([1, 2, -3], [1, 2, 3, -6], [1, 2, 3, 4, -5, 6, -7], [3, 1, 1, 1, 2, -2, 4]):
        exact = _brute_force_p([Fraction(t, 10) for t in tenths])
        assert sign_flip_test(np.array(tenths) / 10.0) == pytest.approx(float(exact), abs=1e-15)
    assert sign_flip_test(np.array([0.1, 0.2, -0.3])) == 1.0


def test_sign_flip_equals_exact_mcnemar_for_one_image_per_subject():
    rng = np.random.default_rng(3)
    for n01, n10, n_same in [(0, 5, 4), (1, 5, 3), (7, 2, 6), (9, 3, 0), (2, 12, 5)]:
        a = np.r_[np.ones(n01), np.zeros(n10), rng.integers(0, 2, n_same)]
        b = np.r_[np.zeros(n01), np.ones(n10), a[n01 + n10 :]]
        expected = min(1.0, 2.0 * stats.binom.cdf(min(n01, n10), n01 + n10, 0.5))
        p = sign_flip_test(a - b)
        assert p == pytest.approx(expected, rel=1e-12)
        assert p == pytest.approx(mcnemar(a, b, exact=True), rel=1e-12)


def test_sign_flip_monte_carlo_approximates_exact():
    rng = np.random.default_rng(0)
    d = rng.normal(0.25, 0.6, size=12)
    exact = sign_flip_test(d)
    assert 0.01 < exact < 0.5  # a p in the range where the approximation matters
    mc = sign_flip_test(d, n_perm=20000, seed=1, exact_below=4)
    assert mc == pytest.approx(exact, abs=0.01)
    assert mc == sign_flip_test(d, n_perm=20000, seed=1, exact_below=4)  # seeded


def test_sign_flip_monte_carlo_floor_and_degenerate_n_perm():
    d = np.ones(30)  # exact p would be 2 / 2^30; Monte Carlo cannot go below 1 / (1 + n_perm)
    assert sign_flip_test(d, n_perm=999) == pytest.approx(1 / 1000)
    assert math.isnan(sign_flip_test(d, n_perm=0))


# --------------------------------------------------------------------------------------------
# paired_cluster_bootstrap_diff


def _two_methods(
    n_subjects: int, per_subject: int, seed: int, noise: float = 0.05
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores of two methods that share a strong subject effect; A is 0.02 better."""
    rng = np.random.default_rng(seed)
    clusters = np.repeat(np.arange(n_subjects), per_subject)
    shared = rng.normal(0.7, 0.15, size=n_subjects)[clusters]
    b = shared + rng.normal(0, noise, size=clusters.size)
    a = shared + 0.02 + rng.normal(0, noise, size=clusters.size)
    return a, b, clusters


def test_paired_bootstrap_identical_and_shifted():
    rng = np.random.default_rng(0)
    clusters = np.repeat(np.arange(15), 4)
    b = rng.integers(0, 2, size=60).astype(float)
    assert paired_cluster_bootstrap_diff(b, b.copy(), clusters, n_boot=200) == (0.0, 0.0, 0.0)
    b = rng.normal(0.6, 0.2, size=60)
    est, lo, hi = paired_cluster_bootstrap_diff(b + 0.1, b, clusters, n_boot=200)
    assert est == pytest.approx(0.1) and lo == pytest.approx(0.1) and hi == pytest.approx(0.1)


def test_paired_bootstrap_estimate_is_the_accuracy_difference():
    rng = np.random.default_rng(1)
    clusters = np.repeat(np.arange(20), 5)
    a = rng.integers(0, 2, size=100).astype(float)
    b = rng.integers(0, 2, size=100).astype(float)
    est, lo, hi = paired_cluster_bootstrap_diff(a, b, clusters, n_boot=500, seed=2)
    assert est == pytest.approx(a.mean() - b.mean())
    assert lo < est < hi
    assert (est, lo, hi) == paired_cluster_bootstrap_diff(a, b, clusters, n_boot=500, seed=2)


def test_paired_bootstrap_narrows_as_subjects_grow():
    widths = []
    for n_subjects in (10, 40, 160):
        a, b, clusters = _two_methods(n_subjects, 5, seed=n_subjects, noise=0.2)
        _, lo, hi = paired_cluster_bootstrap_diff(a, b, clusters, n_boot=1000)
        widths.append(hi - lo)
    # width ~ 1 / sqrt(n): each fourfold increase roughly halves it
    assert widths[0] > 1.4 * widths[1] > 1.4**2 * widths[2]


def test_paired_bootstrap_one_item_per_subject_matches_normal_theory():
    rng = np.random.default_rng(4)
    n = 1000
    b = rng.normal(0.5, 0.3, size=n)
    a = b + rng.normal(0.05, 0.2, size=n)
    est, lo, hi = paired_cluster_bootstrap_diff(a, b, np.arange(n), n_boot=4000, seed=5)
    d = a - b
    half = stats.norm.ppf(0.975) * d.std(ddof=1) / np.sqrt(n)
    assert est == pytest.approx(d.mean())
    assert lo == pytest.approx(d.mean() - half, abs=0.1 * half)
    assert hi == pytest.approx(d.mean() + half, abs=0.1 * half)


def test_paired_interval_is_much_narrower_than_two_separate_ones():
    a, b, clusters = _two_methods(30, 6, seed=7)
    _, lo, hi = paired_cluster_bootstrap_diff(a, b, clusters, n_boot=2000)
    lo_a, hi_a = cluster_bootstrap_ci(a, clusters, n_boot=2000, seed=1)
    lo_b, hi_b = cluster_bootstrap_ci(b, clusters, n_boot=2000, seed=2)
    # independent intervals combined in quadrature (the unpaired width of a - b)
    unpaired = math.hypot(hi_a - lo_a, hi_b - lo_b)
    assert hi - lo < 0.25 * unpaired
    assert lo < 0.02 < hi


def test_paired_bootstrap_drops_nan_pairs_and_degenerate_inputs():
    a, b, clusters = _two_methods(12, 3, seed=8)
    a_nan, b_nan = a.copy(), b.copy()
    a_nan[[0, 5]] = np.nan
    b_nan[[9]] = np.nan
    keep = np.ones(a.size, dtype=bool)
    keep[[0, 5, 9]] = False
    assert paired_cluster_bootstrap_diff(
        a_nan, b_nan, clusters, n_boot=300
    ) == paired_cluster_bootstrap_diff(a[keep], b[keep], clusters[keep], n_boot=300)
    est, lo, hi = paired_cluster_bootstrap_diff(a, b, np.zeros(a.size), n_boot=300)
    assert est == pytest.approx(np.mean(a - b)) and math.isnan(lo) and math.isnan(hi)
    est, lo, hi = paired_cluster_bootstrap_diff(a, b, clusters, n_boot=0)
    assert np.isfinite(est) and math.isnan(lo) and math.isnan(hi)
    assert np.isnan(paired_cluster_bootstrap_diff([np.nan], [1.0], [0])).all()
    with pytest.raises(ValueError, match="aligned"):
        paired_cluster_bootstrap_diff(a, b[:-1], clusters)


# --------------------------------------------------------------------------------------------
# minimal_detectable_difference, smallest_attainable_p, min_subjects_for_significance


def test_mde_known_number_and_monotonicity():
    expected = (1.959964 + 0.841621) * 0.3 / math.sqrt(30)
    normal = minimal_detectable_difference(0.3, 30, distribution="normal")
    assert normal == pytest.approx(expected, rel=1e-6)
    assert normal == pytest.approx(0.153449, abs=1e-6)
    # t quantiles on 29 degrees of freedom: 2.045230 and 0.854192
    expected_t = (2.045230 + 0.854192) * 0.3 / math.sqrt(30)
    assert minimal_detectable_difference(0.3, 30) == pytest.approx(expected_t, rel=1e-5)
    with pytest.raises(ValueError):
        minimal_detectable_difference(0.3, 30, distribution="cauchy")
    assert minimal_detectable_difference(0.3, 30, n_comparisons=12) > (
        minimal_detectable_difference(0.3, 30)
    )
    mdes = [minimal_detectable_difference(0.3, n) for n in range(2, 200)]
    assert np.all(np.diff(mdes) < 0)


def test_mde_degenerate_inputs():
    assert minimal_detectable_difference(0.3, 1) == math.inf
    assert minimal_detectable_difference(float("nan"), 30) == math.inf
    assert minimal_detectable_difference(math.inf, 30) == math.inf
    assert minimal_detectable_difference(0.0, 30) == 0.0
    with pytest.raises(ValueError):
        minimal_detectable_difference(0.3, 30, n_comparisons=0)
    with pytest.raises(ValueError):
        minimal_detectable_difference(0.3, 30, alpha=1.5)


def test_mde_has_the_stated_power_in_simulation():
    n, sd, m, alpha = 40, 0.25, 4, 0.05
    level = alpha / m
    mde = minimal_detectable_difference(sd, n, alpha=alpha, n_comparisons=m)
    rng = np.random.default_rng(11)

    def power(shift: float, n_sets: int, with_sign_flip: bool) -> tuple[float, float]:
        d = rng.normal(shift, sd, size=(n_sets, n))
        t_reject = np.mean(stats.ttest_1samp(d, 0.0, axis=1).pvalue < level)
        if not with_sign_flip:
            return float(t_reject), float("nan")
        flips = [sign_flip_test(row, n_perm=2000, seed=i) for i, row in enumerate(d)]
        return float(t_reject), float(np.mean(np.array(flips) < level))

    t_power, flip_power = power(mde, 300, with_sign_flip=True)
    # the t approximation's exact power at its mde (noncentral t, 39 df) is 0.797; the normal
    # approximation's would be 0.760
    t_crit = stats.t.ppf(1 - level / 2, n - 1)

    def exact(shift: float) -> float:
        return float(stats.nct.sf(t_crit, n - 1, shift / (sd / math.sqrt(n))))

    assert exact(mde) == pytest.approx(0.797, abs=0.005)
    normal = minimal_detectable_difference(sd, n, alpha, n_comparisons=m, distribution="normal")
    assert exact(normal) == pytest.approx(0.760, abs=0.005)
    assert t_power == pytest.approx(exact(mde), abs=3 * math.sqrt(0.8 * 0.2 / 300))
    assert flip_power == pytest.approx(0.80, abs=0.10)
    t_half, flip_half = power(mde / 2, 150, with_sign_flip=True)
    assert t_half < 0.4 and flip_half < 0.4


def test_smallest_attainable_p_and_min_subjects():
    assert smallest_attainable_p(0) == 1.0
    assert smallest_attainable_p(1) == 1.0
    assert smallest_attainable_p(5) == 2 / 32
    assert smallest_attainable_p(9) == 2 / 512
    # the floor is what the exact sign-flip test gives when every subject favours one method
    for k in (3, 6, 10):
        assert sign_flip_test(np.full(k, 0.2)) == smallest_attainable_p(k)
    # 2 / 512 = 0.0039 <= 0.05 / 12 = 0.00417 < 2 / 256
    assert min_subjects_for_significance(0.05, 12) == 9
    assert min_subjects_for_significance(0.05, 1) == 6
    for alpha, m in [(0.05, 1), (0.05, 4), (0.01, 12), (0.1, 3)]:
        n = min_subjects_for_significance(alpha, m)
        assert smallest_attainable_p(n) <= alpha / m < smallest_attainable_p(n - 1)
    with pytest.raises(ValueError):
        smallest_attainable_p(-1)
    with pytest.raises(ValueError):
        min_subjects_for_significance(0.05, 0)
