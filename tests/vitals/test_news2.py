"""NEWS2 by the RCP 2017 chart: every band edge, scale 2, the four response levels, missing parameters."""
from __future__ import annotations

import pytest

from cxr_model.vitals import news2 as N
from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.reader import read_record


@pytest.mark.parametrize("value,points", [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3),
                                          (5, 3), (40, 3), (8.4, 3), (8.6, 1)])
def test_respiration_rate_band_edges(value, points):
    assert N.score_respiration(value) == points


@pytest.mark.parametrize("value,points", [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0), (80, 3)])
def test_spo2_scale1_band_edges(value, points):
    assert N.score_spo2_scale1(value) == points


@pytest.mark.parametrize("value,on_oxygen,points", [
    (83, False, 3), (84, False, 2), (85, False, 2), (86, False, 1), (87, False, 1), (88, False, 0), (92, False, 0),
    (83, True, 3), (88, True, 0), (92, True, 0),       # up to 92 the oxygen status does not matter
    (93, False, 0), (100, False, 0),                    # >= 93 on air: 0
    (93, True, 1), (94, True, 1), (95, True, 2), (96, True, 2), (97, True, 3), (100, True, 3),
    (92, None, 0), (85, None, 2),                       # scored without knowing air/oxygen
    (93, None, None), (97, None, None),                 # >= 93 needs air/oxygen: missing if unknown
])
def test_spo2_scale2_band_edges(value, on_oxygen, points):
    assert N.score_spo2_scale2(value, on_oxygen) == points


@pytest.mark.parametrize("value,points", [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)])
def test_systolic_bp_band_edges(value, points):
    assert N.score_systolic_bp(value) == points


@pytest.mark.parametrize("value,points", [(40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2),
                                          (130, 2), (131, 3)])
def test_pulse_band_edges(value, points):
    assert N.score_pulse(value) == points


@pytest.mark.parametrize("value,points", [(35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1),
                                          (39.1, 2), (34.0, 3), (41.0, 2)])
def test_temperature_band_edges(value, points):
    assert N.score_temperature(value) == points


def test_oxygen_and_consciousness_points():
    assert (N.score_air_or_oxygen(True), N.score_air_or_oxygen(False)) == (2, 0)
    assert (N.score_consciousness(True), N.score_consciousness(False)) == (0, 3)


@pytest.mark.parametrize("total,any_three,level", [
    (0, False, "low"), (4, False, "low"),
    (3, True, "low-medium"), (4, True, "low-medium"),   # a 3 in one parameter, aggregate below 5
    (5, False, "medium"), (6, False, "medium"), (5, True, "medium"), (6, True, "medium"),
    (7, False, "high"), (7, True, "high"), (12, True, "high"),
])
def test_the_four_response_levels(total, any_three, level):
    assert N.response_level(total, any_three) == level


def test_plotting_bands_agree_with_the_scoring_functions():
    for param, bands in N.BANDS.items():
        for low, high, points in bands:
            mid = (low + high) / 2
            assert N.SCORERS[param](mid) == points, (param, mid)


FULL = [("00:30", "HR", 120), ("00:30", "RespRate", 22), ("00:30", "SysABP", 150), ("00:30", "Temp", 37),
        ("00:30", "SaO2", 97), ("00:30", "GCS", 15), ("00:30", "FiO2", 0.21)]


def test_a_full_observation_set_is_complete(record_writer):
    n = N.news2_grid(to_grid(read_record(record_writer(5, FULL))))
    assert n.breakdown(0) == {"respiration_rate": 2, "spo2": 0, "air_or_oxygen": 0, "systolic_bp": 0, "pulse": 2,
                              "consciousness": 0, "temperature": 0}
    assert n.total[0] == 4 and n.risk[0] == "low" and not n.incomplete[0]


def test_a_parameter_never_measured_scores_nothing_and_marks_the_score_incomplete(record_writer):
    rows = [r for r in FULL if r[1] != "RespRate"]
    grid = to_grid(read_record(record_writer(6, rows)))
    out = N.news2_record(grid, hour=1)
    assert out["parameters"]["respiration_rate"] == {"value": None, "points": None, "hours_since_measured": None}
    assert out["aggregate"] == 2 and out["incomplete"] is True
    assert N.news2_grid(grid).breakdown(0)["respiration_rate"] is None


def test_a_value_older_than_the_window_is_missing_not_carried_forward(record_writer):
    grid = to_grid(read_record(record_writer(7, FULL)))
    at = {h: N.news2_record(grid, hour=h)["parameters"]["pulse"] for h in (1, 1 + N.WINDOW_H, 2 + N.WINDOW_H)}
    assert at[1] == {"value": 120, "points": 2, "hours_since_measured": 0}
    assert at[1 + N.WINDOW_H]["points"] == 2 and at[1 + N.WINDOW_H]["hours_since_measured"] == N.WINDOW_H
    assert at[2 + N.WINDOW_H] == {"value": None, "points": None, "hours_since_measured": None}


def test_a_single_three_with_a_low_aggregate_is_low_medium(record_writer):
    rows = [("00:30", "HR", 35)] + [r for r in FULL if r[1] != "HR" and r[1] != "RespRate"] + [("00:30", "RespRate", 16)]
    out = N.news2_record(to_grid(read_record(record_writer(8, rows))), hour=1)
    assert out["aggregate"] == 3 and out["level"] == "low-medium" and out["incomplete"] is False


def test_scale_2_is_chosen_per_patient_and_uses_oxygen(record_writer):
    rows = [r for r in FULL if r[1] not in ("SaO2", "FiO2")] + [("00:30", "SaO2", 97), ("00:30", "FiO2", 0.4)]
    grid = to_grid(read_record(record_writer(9, rows)))
    assert N.news2_record(grid, 1, spo2_scale=1)["parameters"]["spo2"]["points"] == 0
    assert N.news2_record(grid, 1, spo2_scale=2)["parameters"]["spo2"]["points"] == 3  # >= 97 on oxygen
    with pytest.raises(ValueError, match="scale"):
        N.news2_record(grid, 1, spo2_scale=3)
