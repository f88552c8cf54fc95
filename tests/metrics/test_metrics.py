"""Threshold metrics, their intervals, AUROC and Brier: against scikit-learn and by hand."""
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from cxr_model.metrics import classification as M


@pytest.fixture(scope="module")
def tied_scores():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300)
    s = np.round(np.clip(0.3 * y + rng.random(300) * 0.7, 0, 1), 1)  # rounding makes many ties
    return y, s


def test_auroc_matches_sklearn_with_ties(tied_scores):
    y, s = tied_scores
    assert M.compute_auroc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


@pytest.mark.parametrize("y,s", [([1, 1, 1], [0.2, 0.5, 0.9]), ([0, 0], [0.1, 0.2]), ([], [])])
def test_auroc_is_nan_for_one_class_or_empty(y, s):
    assert math.isnan(M.compute_auroc(y, s))


def test_threshold_metrics_hand_computed_with_score_equal_to_threshold_positive():
    y = [1, 1, 0, 0, 1]
    s = [0.9, 0.4, 0.6, 0.1, 0.5]  # 0.5 sits on the threshold: called positive
    assert M.confusion_at(y, s, 0.5) == {"tp": 2, "fp": 1, "tn": 1, "fn": 1}
    m = M.compute_threshold_metrics(y, s, 0.5)
    assert m == pytest.approx({"sensitivity": 2 / 3, "specificity": 1 / 2, "ppv": 2 / 3, "npv": 1 / 2,
                               "f1": 4 / 6, "accuracy": 3 / 5})


def test_threshold_metrics_match_sklearn(tied_scores):
    y, s = tied_scores
    pred = (s >= 0.5).astype(int)
    m = M.compute_threshold_metrics(y, s, 0.5)
    assert m["sensitivity"] == pytest.approx(skm.recall_score(y, pred))
    assert m["specificity"] == pytest.approx(skm.recall_score(1 - y, 1 - pred))
    assert m["ppv"] == pytest.approx(skm.precision_score(y, pred))
    assert m["npv"] == pytest.approx(skm.precision_score(1 - y, 1 - pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))


def test_threshold_metrics_on_empty_input_are_nan():
    m = M.compute_threshold_metrics([], [], 0.5)
    assert all(math.isnan(v) for v in m.values())


@pytest.mark.parametrize("k,n,expected", [
    (8, 10, [0.4902, 0.9433]),   # textbook values (Brown, Cai & DasGupta 2001 style, z = 1.96)
    (0, 10, [0.0, 0.2775]),
    (10, 10, [0.7225, 1.0]),
    (50, 100, [0.4038, 0.5962]),
])
def test_wilson_interval_hand_computed(k, n, expected):
    assert M.wilson_interval(k, n) == pytest.approx(expected, abs=1e-4)


def test_wilson_interval_of_nothing_is_nan():
    assert all(math.isnan(v) for v in M.wilson_interval(0, 0))


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.8])
def test_threshold_cis_contain_the_point_estimate(tied_scores, threshold):
    y, s = tied_scores
    point = M.compute_threshold_metrics(y, s, threshold)
    cis = M.threshold_metric_cis(y, s, threshold)
    assert set(cis) == set(point)
    for k, (lo, hi) in cis.items():
        assert lo <= point[k] <= hi, k
        assert 0.0 <= lo < hi <= 1.0, k


def test_threshold_cis_are_seeded_and_reproducible(tied_scores):
    y, s = tied_scores
    a = M.threshold_metric_cis(y, s, 0.5, seed=3)
    assert a == M.threshold_metric_cis(y, s, 0.5, seed=3)
    assert a["f1"] != M.threshold_metric_cis(y, s, 0.5, seed=4)["f1"]  # only F1 is bootstrapped
    assert a["sensitivity"] == M.threshold_metric_cis(y, s, 0.5, seed=4)["sensitivity"]


def test_multinomial_f1_bootstrap_agrees_with_resampling_cases(tied_scores):
    y, s = tied_scores
    f1 = lambda yy, ss: M.compute_threshold_metrics(yy, ss, 0.5)["f1"]  # noqa: E731
    by_cases = M.bootstrap_ci(f1, y, s, n_resamples=2000, seed=1)
    by_cells = M.threshold_metric_cis(y, s, 0.5, n_resamples=2000, seed=1)["f1"]
    assert by_cells == pytest.approx(by_cases, abs=0.02)


def test_threshold_cis_on_empty_and_one_class_input():
    assert all(math.isnan(v) for ci in M.threshold_metric_cis([], [], 0.5).values() for v in ci)
    cis = M.threshold_metric_cis([1, 1, 1], [0.9, 0.8, 0.2], 0.5)
    assert all(math.isnan(v) for v in cis["specificity"])  # no normal case
    assert cis["sensitivity"][0] < 2 / 3 < cis["sensitivity"][1]


def test_denominators_name_what_each_metric_counts():
    d = M.threshold_metric_denominators([1, 1, 0, 0, 1], [0.9, 0.4, 0.6, 0.1, 0.5], 0.5)
    assert d == {"sensitivity": 3, "specificity": 2, "ppv": 3, "npv": 2, "accuracy": 5, "f1": 4}


def test_bootstrap_ci_contains_auroc_and_is_reproducible(tied_scores):
    y, s = tied_scores
    ci = M.bootstrap_ci(M.compute_auroc, y, s, n_resamples=2000, seed=0)
    assert ci[0] <= M.compute_auroc(y, s) <= ci[1]
    assert ci == M.bootstrap_ci(M.compute_auroc, y, s, n_resamples=2000, seed=0)


def test_brier_matches_sklearn(tied_scores):
    y, s = tied_scores
    assert M.compute_brier(y, s) == pytest.approx(skm.brier_score_loss(y, s))
    assert math.isnan(M.compute_brier([], []))


def test_ece_hand_computed():
    # bin 0.1-0.2: p 0.1, 0.1 with outcomes 0, 1 -> |0.5 - 0.1| * 2/4; bin 0.9-1.0: p 0.9, 1.0, outcomes 1, 1
    y, p = [0, 1, 1, 1], [0.1, 0.1, 0.9, 1.0]
    assert M.compute_ece(y, p) == pytest.approx(0.5 * 0.4 + 0.5 * abs(1 - 0.95))


# ---- edges that mutation testing found unpinned: ECE bins at 0 and 1, one case, reproducible defaults
@pytest.mark.parametrize("y,p,expected", [
    ([0, 1], [0.05, 0.15], 0.5 * 0.05 + 0.5 * 0.85),   # bins 0 and 1 stay apart
    ([1, 0], [0.85, 0.95], 0.5 * 0.15 + 0.5 * 0.95),   # bins 8 and 9 stay apart
    ([1, 0], [0.9, 1.0], abs(0.5 - 0.95)),             # 1.0 falls in the last bin with 0.9
    ([1], [0.7], 0.3),                                 # a single case
])
def test_ece_bins_by_hand(y, p, expected):
    assert M.compute_ece(y, p) == pytest.approx(expected)


def test_ece_of_nothing_is_nan():
    assert math.isnan(M.compute_ece([], []))


@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(12)
    y = rng.integers(0, 2, 80)
    return y, np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)


def test_summary_interval_is_the_documented_2000_resample_seed_0_bootstrap(scored):
    y, p = scored
    ci = M.bootstrap_ci(M.compute_auroc, y, p, n_resamples=2000, seed=0)
    assert M.summary(y, p, 0.5)["auroc_ci95"] == ci
    assert M.bootstrap_ci(M.compute_auroc, y, p) == ci


def test_threshold_cis_default_to_2000_draws_seed_0_at_95_percent(scored):
    y, p = scored
    assert M.threshold_metric_cis(y, p, 0.5) == M.threshold_metric_cis(y, p, 0.5, n_resamples=2000, seed=0, alpha=0.05)
