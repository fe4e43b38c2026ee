"""analyze/significance.py against scipy on fixed data (scipy is a test-only dependency)."""
import math

import numpy as np
import pytest
from scipy import stats as sps

from cruijff_kit.analyze import significance as sig

A = {f"q{i}": v for i, v in enumerate([1, 1, 0, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1])}
B = {f"q{i}": v for i, v in enumerate([1, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0, 1, 1])}
REAL_A = [0.9, 0.4, 0.75, 0.3, 0.66, 0.2, 0.95, 0.5, 0.1, 0.8, 0.45, 0.7]
REAL_B = [0.7, 0.5, 0.55, 0.1, 0.61, 0.3, 0.65, 0.2, 0.15, 0.5, 0.4, 0.6]


@pytest.mark.parametrize("b,c", [(6, 0), (5, 1), (3, 3), (0, 0), (12, 4), (1, 9), (40, 25)])
def test_mcnemar_exact_is_the_binomial_test_of_discordant_pairs(b, c):
    expected = 1.0 if b + c == 0 else sps.binomtest(min(b, c), b + c, 0.5).pvalue
    assert sig.mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


def test_paired_01_scores_use_mcnemar_and_the_paired_se():
    p = sig.paired(A, B)
    d = np.array([A[k] - B[k] for k in A], dtype=float)
    assert p.test == "McNemar exact" and p.n == 20
    assert (p.only_a, p.only_b) == (6, 0)
    assert p.diff == pytest.approx(d.mean())
    assert p.se == pytest.approx(sps.sem(d))
    assert p.p == pytest.approx(sps.binomtest(0, 6, 0.5).pvalue)
    # only shared ids are paired
    p2 = sig.paired({**A, "extra": 1.0}, {"q0": 1.0, "q1": 0.0})
    assert p2.n == 2 and p2.diff == pytest.approx(0.5)
    assert sig.paired({"a": 1.0}, {"b": 1.0}) is None


def test_paired_permutation_matches_scipy_exact():
    a = {str(i): v for i, v in enumerate(REAL_A)}
    b = {str(i): v for i, v in enumerate(REAL_B)}
    p = sig.paired(a, b)
    x, y = np.array(REAL_A), np.array(REAL_B)
    ref = sps.permutation_test((x, y), lambda u, v, axis: np.mean(u - v, axis=axis), permutation_type="samples",
                               n_resamples=np.inf, alternative="two-sided", vectorized=True)
    assert p.test == "paired permutation"
    assert p.p == pytest.approx(ref.pvalue, rel=1e-9)
    assert p.se == pytest.approx(sps.sem(x - y))


def test_monte_carlo_permutation_is_seeded_and_close_to_exact():
    rng = np.random.default_rng(3)
    x = rng.normal(0.6, 0.2, 40)
    y = x - rng.normal(0.05, 0.15, 40)
    d = list(x - y)
    p1 = sig.sign_flip_pvalue(d, resamples=4000, seed=7)
    assert p1 == sig.sign_flip_pvalue(d, resamples=4000, seed=7)  # seeded: reproducible
    ref = sps.permutation_test((x, y), lambda u, v, axis: np.mean(u - v, axis=axis), permutation_type="samples",
                               n_resamples=200000, alternative="two-sided", vectorized=True, rng=1).pvalue
    assert abs(p1 - ref) < 0.02


def test_holm_adjusted_pvalues():
    # Holm by hand: sorted 0.01, 0.02, 0.03, 0.04, 0.5 -> x5, x4, x3, x2, x1 = 0.05, 0.08, 0.09, 0.08, 0.5;
    # running maximum 0.05, 0.08, 0.09, 0.09, 0.5
    p = [0.04, 0.01, 0.5, 0.03, 0.02]
    assert sig.holm(p) == pytest.approx([0.09, 0.05, 0.5, 0.09, 0.08])
    assert sig.holm([0.3, 0.6]) == pytest.approx([0.6, 0.6])
    assert sig.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert sig.holm([]) == []
    # never above Bonferroni
    assert all(h <= min(1.0, len(p) * q) + 1e-15 for h, q in zip(sig.holm(p), p))


@pytest.mark.parametrize("k,n", [(0, 8), (8, 8), (3, 8), (1, 20), (50, 100)])
def test_wilson_interval_matches_scipy_and_never_collapses(k, n):
    lo, hi = sig.wilson_interval(k, n)
    ref = sps.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert (lo, hi) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert hi - lo > 0.05  # 0/8 and 8/8 keep a real width
    assert sig.wilson_interval(0, 0) is None


def test_seed_item_se_formula():
    rng = np.random.default_rng(0)
    seeds, items = 3, 25
    y = (rng.random((seeds, items)) < 0.6 + rng.normal(0, 0.1, (seeds, 1))).astype(float)
    per_seed = [{f"i{j}": y[s, j] for j in range(items)} for s in range(seeds)]
    avg = sig.average_items(per_seed)
    assert [avg[f"i{j}"] for j in range(items)] == pytest.approx(list(y.mean(axis=0)))
    se_items = sps.sem(y.mean(axis=0))
    seed_means = list(y.mean(axis=1))
    got = sig.seed_item_se(seed_means, se_items)
    assert got == pytest.approx(math.sqrt(se_items ** 2 + np.var(seed_means, ddof=1) / seeds))
    # = the two-way ANOVA estimate of Var(grand mean) plus MS_res / (nS): the stated conservatism
    grand = y.mean()
    ms_item = seeds * ((y.mean(axis=0) - grand) ** 2).sum() / (items - 1)
    ms_seed = items * ((y.mean(axis=1) - grand) ** 2).sum() / (seeds - 1)
    resid = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + grand
    ms_res = (resid ** 2).sum() / ((seeds - 1) * (items - 1))
    unbiased = (ms_item + ms_seed - ms_res) / (items * seeds)
    assert got ** 2 == pytest.approx(unbiased + ms_res / (items * seeds))
    assert sig.seed_item_se([0.5], 0.1) == 0.1  # one seed: items only
    assert sig.seed_item_se([0.4, 0.6], None) == pytest.approx(sps.sem([0.4, 0.6]))


def test_normal_two_sided():
    for z in (0.0, 1.0, 1.96, 3.5):
        assert sig.normal_two_sided(z) == pytest.approx(2 * sps.norm.sf(z), rel=1e-12)


def test_permutation_is_fast_on_a_thousand_items():
    import time

    rng = np.random.default_rng(5)
    d = list(rng.normal(0.02, 0.3, 1000))
    t0 = time.perf_counter()
    p = sig.sign_flip_pvalue(d)
    assert time.perf_counter() - t0 < 5.0
    ref = sps.permutation_test((np.array(d),), lambda x, axis: np.mean(x, axis=axis), permutation_type="samples",
                               n_resamples=20000, vectorized=True, rng=2).pvalue
    assert abs(p - ref) < 0.03
    # zeros change nothing: dropped before the exact enumeration
    assert sig.sign_flip_pvalue([0.5, 0.0, 0.25, 0.0] + [0.0] * 30) == pytest.approx(
        sig.sign_flip_pvalue([0.5, 0.25]))
