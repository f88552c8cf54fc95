"""The report's figures say what their numbers are, and ``n/a`` where a number does not exist."""
from __future__ import annotations

import numpy as np

from cxr_model.imaging.report.figures import reliability_figure
from cxr_model.metrics.calibration import calibration_slope_intercept, reliability_bins
from cxr_model.metrics.classification import compute_ece


def _title(y, p) -> str:
    fig = reliability_figure(reliability_bins(y, p), compute_ece(y, p), calibration_slope_intercept(y, p))
    return fig.layout.title.text


def test_reliability_title_gives_the_fitted_slope_and_intercept():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.95, 400)
    y = (rng.uniform(size=400) < p).astype(int)  # calibrated by construction: slope near 1
    cal = calibration_slope_intercept(y, p)
    title = _title(y, p)
    assert f"slope {cal['slope']:.2f}" in title and f"intercept {cal['intercept']:.2f}" in title
    assert 0.7 < cal["slope"] < 1.3


def test_reliability_title_says_n_a_where_no_fit_exists():
    # completely separated (every positive scored above every negative): no finite slope or intercept
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0.05, 0.2, 0.5, 0.6, 0.61, 0.9, 0.95, 0.99])
    title = _title(y, p)
    assert "slope n/a" in title and "intercept n/a" in title and "nan" not in title
    assert title.startswith(f"Reliability: ECE {compute_ece(y, p):.3f}")
