"""Known answers for the paired tests and the Holm adjustment of ``srda.stats``."""

import math

import numpy as np
import pytest
from scipy import stats

from srda.stats import holm, mcnemar, wilcoxon_paired

# --------------------------------------------------------------------------------------------
# Holm


def test_holm_hand_computed():
    # sorted 0.01, 0.03, 0.04 -> x3, x2, x1 = 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06
    assert np.allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    assert np.allclose(holm([0.01, 0.02, 0.03, 0.04]), [0.04, 0.06, 0.06, 0.06])
    assert np.allclose(holm([0.04]), [0.04])


def test_holm_caps_at_one_and_is_monotone():
    assert np.allclose(holm([0.5, 0.6, 0.01]), [1.0, 1.0, 0.03])
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.2, size=12)
    adj = holm(p)
    order = np.argsort(p)
    assert np.all(np.diff(adj[order]) >= 0)
    assert np.all(adj >= p) and np.all(adj <= 1.0)


def test_holm_ignores_nan():
    out = holm([0.01, np.nan, 0.04, 0.03])
    assert np.isnan(out[1])
    assert np.allclose(out[[0, 2, 3]], [0.03, 0.06, 0.06])
    assert np.isnan(holm([np.nan, np.nan])).all()
    assert holm([]).shape == (0,)


def test_holm_rejects_values_outside_the_unit_interval():
    with pytest.raises(ValueError, match="p-values"):
        holm([0.1, 1.5])


# --------------------------------------------------------------------------------------------
# McNemar


def _pairs(n01: int, n10: int, n11: int = 3, n00: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Correctness vectors with n01 (a right, b wrong) and n10 (a wrong, b right) pairs."""
    a = [1] * n01 + [0] * n10 + [1] * n11 + [0] * n00
    b = [0] * n01 + [1] * n10 + [1] * n11 + [0] * n00
    return np.array(a, dtype=bool), np.array(b, dtype=bool)


def test_mcnemar_exact_small_tables_by_hand():
    # n = 6 discordant, min = 1: 2 * (C(6,0) + C(6,1)) / 2^6 = 14/64
    assert mcnemar(*_pairs(1, 5)) == pytest.approx(14 / 64)
    # n = 5, min = 0: 2 / 32
    assert mcnemar(*_pairs(0, 5)) == pytest.approx(2 / 32)
    # balanced: 2 * (1 + 6 + 15 + 20) / 64 > 1 -> capped at 1
    assert mcnemar(*_pairs(3, 3)) == 1.0
    a, b = _pairs(7, 2)
    assert mcnemar(a, b) == pytest.approx(stats.binomtest(7, 9, 0.5).pvalue)


def test_mcnemar_is_symmetric_and_needs_discordance():
    a, b = _pairs(2, 9)
    assert mcnemar(a, b) == mcnemar(b, a)
    same = np.array([1, 0, 1, 1], dtype=bool)
    assert mcnemar(same, same) == 1.0
    assert math.isnan(mcnemar([], []))
    with pytest.raises(ValueError, match="paired"):
        mcnemar([1, 0], [1])


def test_mcnemar_chi_square_with_continuity_correction():
    # n = 40 >= 25: chi2 = (|30 - 10| - 1)^2 / 40 = 9.025; 1-dof survival = erfc(sqrt(x / 2))
    expected = math.erfc(math.sqrt(9.025 / 2))
    assert mcnemar(*_pairs(30, 10)) == pytest.approx(expected, rel=1e-9)
    assert mcnemar(*_pairs(10, 30)) == pytest.approx(expected, rel=1e-9)
    # forcing exact on the same table gives the binomial test
    assert mcnemar(*_pairs(30, 10), exact=True) == pytest.approx(
        stats.binomtest(10, 40, 0.5).pvalue
    )


# --------------------------------------------------------------------------------------------
# Wilcoxon

# R's wilcox.test example (Hollander & Wolfe, depression scale): V = 40, p = 0.03906.
X = np.array([1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30])
Y = np.array([0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29])


def test_wilcoxon_known_vector():
    # negative differences rank 2 and 3: W- = 5; exact two-sided p = 2 * 10 / 512
    p = wilcoxon_paired(X, Y)
    assert p == pytest.approx(20 / 512)
    assert p == pytest.approx(stats.wilcoxon(X, Y).pvalue)


def test_wilcoxon_symmetric_zero_and_nan_handling():
    assert wilcoxon_paired(X, Y) == pytest.approx(wilcoxon_paired(Y, X))
    assert wilcoxon_paired([0.7, 0.8, 0.9], [0.7, 0.8, 0.9]) == 1.0
    assert math.isnan(wilcoxon_paired([], []))
    with_nan = wilcoxon_paired(np.append(X, np.nan), np.append(Y, 0.5))
    assert with_nan == pytest.approx(wilcoxon_paired(X, Y))
    with pytest.raises(ValueError, match="pairs"):
        wilcoxon_paired([1.0, 2.0], [1.0])
