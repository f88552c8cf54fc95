"""Reliability bins at the low end: a case in the first bin is not merged into the second."""
from __future__ import annotations

import pytest

from cxr_model.metrics.calibration import reliability_bins


def test_first_and_second_bins_stay_apart():
    b = reliability_bins([0, 1], [0.05, 0.15])
    assert b.lower.tolist() == pytest.approx([0.0, 0.1]) and b.count.tolist() == [1, 1]
    assert b.observed.tolist() == [0.0, 1.0] and b.mean_predicted.tolist() == pytest.approx([0.05, 0.15])
