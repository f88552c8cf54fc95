"""How a number reaches a table: ``fmt`` (pages) and ``fmt_metric`` (model cards)."""
from __future__ import annotations

import math

import pytest

from cxr_model.metrics.format import fmt, fmt_lead_time, fmt_threshold


@pytest.mark.parametrize("value, shown", [
    (0.87863, "0.879"), (3, "3"), (True, "True"), (None, "n/a"), (float("nan"), "n/a"),
    ([0.848, 0.9047], "0.848-0.905"), ((0.1, 0.2), "0.100-0.200"),
    ([float("nan"), 0.5], "n/a"), ([None, None], "n/a"), ([None, 0.5], "n/a"),  # strict JSON's undefined interval
    ("a label", "a label"), ([1, 2, 3], "[1, 2, 3]"),
])
def test_fmt(value, shown):
    assert fmt(value) == shown


def test_fmt_digits():
    assert fmt(math.pi, 2) == "3.14" and fmt([0.1234, 0.5678], 2) == "0.12-0.57"


@pytest.mark.parametrize("value, shown", [
    (5.0, "5"), (7, "7"), (21.0, "21"), (0.3124, "0.312"), (0.0, "0.000"), (1.5, "1.500"),
    (None, "n/a"), (float("nan"), "n/a"),
])
def test_fmt_threshold_keeps_a_score_whole_and_a_risk_in_decimals(value, shown):
    assert fmt_threshold(value) == shown


@pytest.mark.parametrize("hours, shown", [
    (167.0, "167 (7.0 days)"), (12, "12 (0.5 days)"), (0.0, "0 (0.0 days)"), (None, "-"), (float("nan"), "-"),
])
def test_fmt_lead_time_gives_hours_and_days(hours, shown):
    assert fmt_lead_time(hours) == shown
