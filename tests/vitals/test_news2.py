"""NEWS2 by the RCP 2017 chart: every band edge, the stand-ins, and the plotting table."""
from __future__ import annotations

import pytest

from cxr_model.vitals import news2 as N
from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.reader import read_record


@pytest.mark.parametrize("value,points", [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (5, 3), (40, 3)])
def test_respiration(value, points):
    assert N.score_respiration(value) == points


@pytest.mark.parametrize("value,points", [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0), (80, 3)])
def test_spo2_scale1(value, points):
    assert N.score_spo2_scale1(value) == points


@pytest.mark.parametrize("value,points", [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)])
def test_systolic_bp(value, points):
    assert N.score_systolic_bp(value) == points


@pytest.mark.parametrize("value,points", [(40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2), (131, 3)])
def test_pulse(value, points):
    assert N.score_pulse(value) == points


@pytest.mark.parametrize("value,points", [(35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1), (39.1, 2)])
def test_temperature(value, points):
    assert N.score_temperature(value) == points


def test_oxygen_and_consciousness():
    assert (N.score_air_or_oxygen(True), N.score_air_or_oxygen(False)) == (2, 0)
    assert (N.score_consciousness(True), N.score_consciousness(False)) == (0, 3)


@pytest.mark.parametrize("total,any_three,band", [(0, False, "low"), (4, False, "low"), (3, True, "low-medium"),
                                                  (5, False, "medium"), (6, True, "medium"), (7, False, "high")])
def test_clinical_risk_bands(total, any_three, band):
    assert N.clinical_risk(total, any_three) == band


def test_plotting_bands_agree_with_the_scoring_functions():
    for param, bands in N.BANDS.items():
        for low, high, points in bands:
            mid = (low + high) / 2
            assert N.SCORERS[param](mid) == points, (param, mid)


def test_grid_news2_uses_the_stated_stand_ins(record_writer):
    rows = [("00:30", "HR", 120), ("00:30", "RespRate", 22), ("00:30", "SysABP", 150), ("00:30", "Temp", 37),
            ("00:30", "SaO2", 97), ("00:30", "GCS", 15),
            ("02:30", "MechVent", 1), ("03:30", "GCS", 10), ("04:30", "NISysABP", 85)]
    n = N.news2_grid(to_grid(read_record(record_writer(5, rows))))
    assert n.breakdown(0) == {"respiration": 2, "spo2": 0, "air_or_oxygen": 0, "systolic_bp": 0, "pulse": 2,
                              "consciousness": 0, "temperature": 0}
    assert n.breakdown(2)["air_or_oxygen"] == 2  # ventilated counts as oxygen
    assert n.breakdown(3)["consciousness"] == 3  # GCS < 15 is "not alert"
    assert n.breakdown(4)["systolic_bp"] == 3  # the more recent non-invasive pressure is used
    assert n.total[4] == 2 + 2 + 2 + 3 + 3 and n.risk[4] == "high"
    assert N.max_news2(to_grid(read_record(record_writer(6, rows))), 24) == 12
