"""Reliability bins and the calibration slope / intercept (logistic recalibration)."""
import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from cxr_model.metrics.calibration import apply_platt, calibration_slope_intercept, fit_platt, reliability_bins
from cxr_model.metrics.classification import compute_ece


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


@pytest.fixture(scope="module")
def calibrated():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.98, 20000)
    return (rng.random(p.size) < p).astype(int), p


def test_calibrated_predictions_have_slope_one_and_intercept_zero(calibrated):
    y, p = calibrated
    c = calibration_slope_intercept(y, p)
    assert c["slope"] == pytest.approx(1.0, abs=0.06)
    assert c["intercept"] == pytest.approx(0.0, abs=0.06)
    assert c["citl"] == pytest.approx(0.0, abs=0.06)


def test_overconfident_predictions_have_slope_below_one(calibrated):
    y, p = calibrated
    logit = np.log(p / (1 - p))
    c = calibration_slope_intercept(y, _sigmoid(2 * logit))  # twice as extreme as the truth
    assert c["slope"] == pytest.approx(0.5, abs=0.04)


def test_systematic_overprediction_shows_in_calibration_in_the_large(calibrated):
    y, p = calibrated
    logit = np.log(p / (1 - p))
    assert calibration_slope_intercept(y, _sigmoid(logit + 1.0))["citl"] == pytest.approx(-1.0, abs=0.06)


def test_fit_matches_unpenalised_sklearn_logistic_regression():
    rng = np.random.default_rng(5)
    p = rng.uniform(0.05, 0.95, 400)
    y = (rng.random(400) < _sigmoid(0.7 * np.log(p / (1 - p)) + 0.3)).astype(int)
    lr = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(np.log(p / (1 - p))[:, None], y)
    c = calibration_slope_intercept(y, p)
    assert c["slope"] == pytest.approx(lr.coef_[0, 0], abs=1e-5)
    assert c["intercept"] == pytest.approx(lr.intercept_[0], abs=1e-5)


@pytest.mark.parametrize("y,p", [([], []), ([1, 1, 1], [0.2, 0.6, 0.9]), ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])])
def test_not_estimable_is_nan(y, p):
    # empty, one class only, and complete separation (no finite maximum-likelihood fit)
    c = calibration_slope_intercept(y, p)
    assert math.isnan(c["slope"]) and math.isnan(c["intercept"])


def test_probabilities_of_exactly_zero_and_one_are_handled():
    c = calibration_slope_intercept([0, 1, 0, 1, 1, 0], [0.0, 1.0, 0.4, 0.3, 0.6, 0.7])
    assert all(math.isfinite(v) for v in c.values())


def test_reliability_bins_reproduce_ece(calibrated):
    y, p = calibrated
    b = reliability_bins(y, p)
    assert b.count.sum() == y.size
    ece = np.sum(b.count * np.abs(b.observed - b.mean_predicted)) / y.size
    assert ece == pytest.approx(compute_ece(y, p))


def test_reliability_bins_hand_computed_and_one_goes_in_the_last_bin():
    b = reliability_bins([0, 1, 1, 1], [0.1, 0.15, 0.95, 1.0])
    assert b.lower.tolist() == pytest.approx([0.1, 0.9])
    assert b.count.tolist() == [2, 2]
    assert b.mean_predicted.tolist() == pytest.approx([0.125, 0.975])
    assert b.observed.tolist() == pytest.approx([0.5, 1.0])
    assert [r["bin"] for r in b.rows()] == ["0.1-0.2", "0.9-1.0"]


def test_reliability_bins_of_nothing_are_empty():
    assert len(reliability_bins([], []).count) == 0


def test_weighted_platt_fit_is_sklearns_weighted_maximum_likelihood():
    rng = np.random.default_rng(3)
    z = rng.normal(0.0, 2.0, 1500)
    y = (rng.random(z.size) < 1 / (1 + np.exp(-(0.7 * z - 0.4)))).astype(int)
    w = np.where(rng.random(z.size) < 0.3, 3.0, 1.0)
    ref = LogisticRegression(C=1e10, tol=1e-12, max_iter=10_000).fit(z[:, None], y, sample_weight=w / w.mean())
    cal = fit_platt(y, z, weights=w)
    assert cal["a"] == pytest.approx(ref.coef_[0, 0], abs=1e-6)
    assert cal["b"] == pytest.approx(ref.intercept_[0], abs=1e-6)
    assert fit_platt(y, z, weights=w) != fit_platt(y, z)  # the weights matter


def test_platt_refuses_one_class_and_separated_logits():
    with pytest.raises(ValueError, match="both classes"):
        fit_platt(np.ones(5), np.arange(5.0))
    with pytest.raises(ValueError, match="no finite fit"):
        fit_platt(np.array([0, 0, 1, 1]), np.array([-2.0, -1.0, 1.0, 2.0]))


def test_apply_platt_gives_the_same_numbers_for_numpy_and_torch_and_per_step_lists():
    logits = np.linspace(-4, 4, 12).reshape(3, 4)
    cal = {"a": [0.5, 1.0, 2.0, 3.0, 9.0], "b": [0.1, 0.0, -0.3, 1.0, 9.0]}  # longer than the sequence
    expected = 1 / (1 + np.exp(-(np.array(cal["a"][:4]) * logits + np.array(cal["b"][:4]))))
    assert np.allclose(apply_platt(logits, cal), expected, atol=1e-12)
    assert np.allclose(apply_platt(torch.tensor(logits), cal).numpy(), expected, atol=1e-12)
    assert np.allclose(apply_platt(logits, None), 1 / (1 + np.exp(-logits)))


def test_reliability_bins_come_back_from_their_rows():
    import json

    from cxr_model.metrics.calibration import ReliabilityBins

    b = reliability_bins([0, 1, 1, 1, 0], [0.1, 0.15, 0.95, 1.0, 0.42])
    back = ReliabilityBins.from_rows(json.loads(json.dumps(b.rows())))  # as read from a metrics.json
    for field in ("lower", "upper", "count", "mean_predicted", "observed"):
        np.testing.assert_allclose(getattr(back, field), getattr(b, field))
    assert back.count.dtype == np.int64 and back.rows() == b.rows()
