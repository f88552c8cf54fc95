"""How a number reaches a table: ``fmt`` (pages) and ``fmt_metric`` (model cards)."""
from __future__ import annotations

import math

import pytest

from cxr_model.metrics.format import fmt


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
