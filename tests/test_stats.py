import numpy as np

from srda.stats import cluster_bootstrap_ci


def test_interval_contains_the_mean_and_is_seeded():
    rng = np.random.default_rng(0)
    clusters = np.repeat(np.arange(40), 5)
    values = rng.normal(30, 1, size=40)[clusters] + rng.normal(0, 0.1, size=200)
    lo, hi = cluster_bootstrap_ci(values, clusters, n_boot=500, seed=1)
    assert lo < values.mean() < hi
    assert (lo, hi) == cluster_bootstrap_ci(values, clusters, n_boot=500, seed=1)


def test_resampling_subjects_widens_the_interval_for_correlated_slices():
    # Slices of a subject share its value: 10 subjects, not 200 independent images.
    rng = np.random.default_rng(1)
    clusters = np.repeat(np.arange(10), 20)
    values = rng.normal(0, 1, size=10)[clusters]
    lo_c, hi_c = cluster_bootstrap_ci(values, clusters, n_boot=2000, seed=0)
    lo_i, hi_i = cluster_bootstrap_ci(values, np.arange(200), n_boot=2000, seed=0)
    assert (hi_c - lo_c) > 3 * (hi_i - lo_i)


def test_known_answer_for_identical_clusters():
    lo, hi = cluster_bootstrap_ci(np.full(30, 2.5), np.repeat(np.arange(10), 3), n_boot=100)
    assert lo == hi == 2.5


def test_degenerate_inputs_give_nan():
    assert np.isnan(cluster_bootstrap_ci(np.ones(5), np.zeros(5), n_boot=100)).all()
    assert np.isnan(cluster_bootstrap_ci(np.ones(5), np.arange(5), n_boot=0)).all()
