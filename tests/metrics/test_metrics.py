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


@pytest.mark.parametrize("y,s,expected", [([1, 0, 0], [0.9, 0.1, 0.2], 1.0), ([1, 1, 0], [0.9, 0.1, 0.2], 0.5)])
def test_auroc_with_a_single_case_of_one_class(y, s, expected):
    assert M.compute_auroc(y, s) == expected


def test_mismatched_lengths_name_both_sizes():
    with pytest.raises(ValueError, match=r"^y_true has 3 values but y_score has 2$"):
        M.compute_auroc([0, 1, 1], [0.1, 0.2])


def test_bootstrap_of_one_case_is_that_case():
    assert M.bootstrap_ci(lambda yy, ss: float(ss.mean()), [1], [0.3], n_resamples=20) == [0.3, 0.3]


def test_wilson_interval_of_one_case():
    assert M.wilson_interval(1, 1) == pytest.approx([0.2065, 1.0], abs=1e-4)


def test_threshold_cis_pass_their_level_to_the_wilson_intervals(tied_scores):
    y, s = tied_scores
    c = M.confusion_at(y, s, 0.5)
    cis = M.threshold_metric_cis(y, s, 0.5, alpha=0.10)
    assert cis["sensitivity"] == M.wilson_interval(c["tp"], c["tp"] + c["fn"], 0.10)
    assert cis["specificity"] == M.wilson_interval(c["tn"], c["tn"] + c["fp"], 0.10)


@pytest.mark.parametrize("alpha", [0.05, 0.10])
def test_f1_interval_is_the_percentile_interval_of_the_multinomial_draws(tied_scores, alpha):
    # the same seeded draws, counted here: the interval must be their alpha/2 and 1 - alpha/2 quantiles
    y, s = tied_scores
    c = M.confusion_at(y, s, 0.5)
    n = sum(c.values())
    cells = np.array([c["tp"], c["fp"], c["tn"], c["fn"]], dtype=float)
    d = np.random.default_rng(4).multinomial(n, cells / n, size=500)
    f1 = 2 * d[:, 0] / (2 * d[:, 0] + d[:, 1] + d[:, 3])
    ci = M.threshold_metric_cis(y, s, 0.5, n_resamples=500, seed=4, alpha=alpha)["f1"]
    assert ci == pytest.approx(np.quantile(f1, [alpha / 2, 1 - alpha / 2]).tolist())


@pytest.mark.parametrize("y,s,f1", [
    ([1], [0.9], [1.0, 1.0]),               # one true positive
    ([1, 0], [0.9, 0.1], [1.0, 1.0]),       # tp + fp + fn = 1
    ([1, 0], [0.1, 0.9], [0.0, 0.0]),       # tp = 0, fp = fn = 1: F1 is 0, not undefined
])
def test_f1_interval_on_tiny_confusion_matrices(y, s, f1):
    assert M.threshold_metric_cis(y, s, 0.5, n_resamples=200)["f1"] == f1


def test_f1_interval_is_nan_when_no_draw_defines_f1():
    # one false positive among 1,001 cases; this seeded single draw has none, so F1 is undefined
    y, s = np.zeros(1001, int), np.r_[np.zeros(1000), [0.9]]
    assert all(math.isnan(v) for v in M.threshold_metric_cis(y, s, 0.5, n_resamples=1, seed=2)["f1"])
    assert M.threshold_metric_cis(y, s, 0.5, n_resamples=1, seed=0)["f1"] == [0.0, 0.0]


def test_every_metric_has_an_interval_even_when_empty():
    names = {"sensitivity", "specificity", "ppv", "npv", "accuracy", "f1"}
    assert set(M.threshold_metric_cis([], [], 0.5)) == names
    assert set(M.threshold_metric_cis([0, 0], [0.1, 0.2], 0.5)) == names
