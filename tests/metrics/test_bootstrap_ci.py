"""The percentile bootstrap: its level (95 %), that it resamples, and agreement with known values.

"The CI contains the point" holds for a 90 % interval and for a zero-width one as well, so these
tests compare the interval with values known independently: the exact binomial distribution of a
resampled proportion, and a bootstrap written here with numpy and scipy's ranks.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from cxr_model.metrics import classification as M


def _mean_label(y, s):
    return float(np.mean(y)) if len(y) else float("nan")


@pytest.fixture(scope="module")
def proportion():
    n, k = 1000, 300
    y = np.r_[np.ones(k, int), np.zeros(n - k, int)]
    return y, np.zeros(n), k / n


@pytest.mark.parametrize("alpha", [0.05, 0.10])
def test_interval_of_a_proportion_matches_the_exact_binomial_quantiles(proportion, alpha):
    # Resampling n cases of which a fraction p is positive: the resampled mean is Binomial(n, p) / n,
    # so the percentile interval's ends are its alpha/2 and 1 - alpha/2 quantiles.
    y, s, p = proportion
    n = y.size
    lo, hi = M.bootstrap_ci(_mean_label, y, s, n_resamples=4000, seed=11, alpha=alpha)
    assert lo == pytest.approx(stats.binom.ppf(alpha / 2, n, p) / n, abs=2.5 / n)
    assert hi == pytest.approx(stats.binom.ppf(1 - alpha / 2, n, p) / n, abs=2.5 / n)


def test_default_level_is_95_percent(proportion):
    y, s, p = proportion
    n = y.size
    lo, hi = M.bootstrap_ci(_mean_label, y, s, n_resamples=4000, seed=3)
    exact95 = (stats.binom.ppf(0.975, n, p) - stats.binom.ppf(0.025, n, p)) / n
    exact90 = (stats.binom.ppf(0.95, n, p) - stats.binom.ppf(0.05, n, p)) / n
    assert abs((hi - lo) - exact95) < abs((hi - lo) - exact90)
    assert hi - lo == pytest.approx(exact95, rel=0.1)
    # and the normal approximation of the same width, 2 * 1.96 * sqrt(p (1 - p) / n)
    assert hi - lo == pytest.approx(2 * 1.96 * math.sqrt(p * (1 - p) / n), rel=0.1)


def _numpy_bootstrap_auroc(y, s, n_resamples, seed):
    """All resamples at once: AUROC as the Mann-Whitney U of scipy's mid-ranks, per row."""
    idx = np.random.default_rng(seed).integers(0, y.size, (n_resamples, y.size))
    yy, ss = y[idx], s[idx]
    n_pos = yy.sum(axis=1)
    ok = (n_pos > 0) & (n_pos < y.size)
    ranks = stats.rankdata(ss, axis=1)
    n_neg = y.size - n_pos
    auc = ((ranks * yy).sum(axis=1) - n_pos * (n_pos + 1) / 2) / np.maximum(n_pos * n_neg, 1)
    return np.percentile(auc[ok], [2.5, 97.5])


def test_auroc_interval_agrees_with_an_independent_vectorised_bootstrap():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 240)
    s = rng.normal(0.9 * y, 1.0)
    ci = M.bootstrap_ci(M.compute_auroc, y, s, n_resamples=2000, seed=0)
    ref = _numpy_bootstrap_auroc(y, s, 2000, seed=99)  # another seed: only Monte Carlo error apart
    assert ci == pytest.approx(ref.tolist(), abs=0.01)
    assert ci[1] - ci[0] > 0.08  # about 2 x 1.96 x 0.03 at n = 240 and AUROC ~0.74


def test_it_draws_resamples_a_constant_metric_gives_a_zero_width_interval_and_data_do_not():
    y = np.array([0, 1] * 50)
    s = np.linspace(0, 1, 100)
    assert M.bootstrap_ci(lambda yy, ss: 0.5, y, s, n_resamples=50) == [0.5, 0.5]
    lo, hi = M.bootstrap_ci(lambda yy, ss: float(np.mean(ss)), y, s, n_resamples=200)
    assert lo < float(np.mean(s)) < hi and hi - lo > 0.05


def test_each_resample_has_n_cases_drawn_with_replacement_and_n_resamples_are_drawn():
    calls = []

    def spy(yy, ss):
        calls.append(ss.copy())
        return float(ss.mean())

    s = np.arange(50, dtype=float)
    M.bootstrap_ci(spy, np.zeros(50, int), s, n_resamples=120, seed=5)
    assert len(calls) == 120
    assert all(c.size == 50 for c in calls)
    assert any(np.unique(c).size < 50 for c in calls)  # with replacement: repeats happen
    assert len({tuple(c) for c in calls}) == 120        # every resample differs


def test_seed_makes_it_reproducible_and_another_seed_changes_it(proportion):
    y, s, _ = proportion
    a = M.bootstrap_ci(_mean_label, y, s, n_resamples=300, seed=1)
    assert a == M.bootstrap_ci(_mean_label, y, s, n_resamples=300, seed=1)
    assert a != M.bootstrap_ci(_mean_label, y, s, n_resamples=300, seed=2)


def test_undefined_resamples_are_dropped_and_all_undefined_is_nan():
    # 1 positive in 4: about (3/4)^4 = 32 % of resamples have no positive and no AUROC
    y, s = np.array([1, 0, 0, 0]), np.array([0.9, 0.1, 0.2, 0.3])
    lo, hi = M.bootstrap_ci(M.compute_auroc, y, s, n_resamples=400, seed=0)
    assert lo == hi == 1.0  # every defined resample ranks the positive first
    assert all(math.isnan(v) for v in M.bootstrap_ci(M.compute_auroc, [1, 1], [0.2, 0.4]))
    assert all(math.isnan(v) for v in M.bootstrap_ci(M.compute_auroc, [], []))


def test_summary_reports_the_95_percent_auroc_interval_and_its_counts():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 150)
    p = np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1)
    out = M.summary(y, p, 0.5, n_resamples=500, seed=2)
    assert out["auroc_ci95"] == M.bootstrap_ci(M.compute_auroc, y, p, n_resamples=500, seed=2)
    assert (out["n"], out["n_positive"], out["n_negative"]) == (150, int(y.sum()), 150 - int(y.sum()))
    assert out["auroc"] == pytest.approx(roc_auc_score(y, p))
    assert out["threshold"] == 0.5 and out["ece"] == pytest.approx(M.compute_ece(y, p))
    for k, v in M.compute_threshold_metrics(y, p, 0.5).items():
        assert out[k] == v, k
