"""The PhysioNet stand-ins of NEWS2 at their edges: GCS for "alert", FiO2/ventilation for "oxygen".

The chart's own bands are covered in test_news2.py; these pin the substitutions stated in the
module docstring (GCS < 15 is not alert; oxygen = FiO2 > 0.21 or ventilated; the more recent of
invasive and non-invasive systolic pressure), each on both sides of its edge, through a record.
"""
from __future__ import annotations

import numpy as np
import pytest

from cxr_model.vitals import news2 as N
from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.reader import read_record

BASE = [("00:30", "HR", 70), ("00:30", "RespRate", 16), ("00:30", "SysABP", 130), ("00:30", "Temp", 37.0),
        ("00:30", "SaO2", 98)]


def _inputs(record_writer, rows, step=1):
    grid = to_grid(read_record(record_writer(7, BASE + rows)))
    return N.news2_inputs(grid, step), N.news2_grid(grid).breakdown(step)


@pytest.mark.parametrize("gcs,alert,points", [(15, True, 0), (14, False, 3), (13, False, 3), (3, False, 3)])
def test_gcs_below_15_is_not_alert(record_writer, gcs, alert, points):
    inputs, breakdown = _inputs(record_writer, [("01:30", "GCS", gcs)])
    assert inputs["consciousness"] is alert
    assert breakdown["consciousness"] == points


@pytest.mark.parametrize("fio2,oxygen", [
    (0.21, False),   # room air
    (0.22, True),    # any supplemental oxygen, not only high-flow
    (0.30, True),
    (0.40, True),
    (0.41, True),
    (1.0, True),
    (21, False),     # recorded as a percentage: 21 % is air
    (28, True),      # 28 % -> 0.28: oxygen
])
def test_fio2_above_room_air_is_oxygen(record_writer, fio2, oxygen):
    inputs, breakdown = _inputs(record_writer, [("01:30", "FiO2", fio2)])
    assert inputs["air_or_oxygen"] is oxygen
    assert breakdown["air_or_oxygen"] == (2 if oxygen else 0)


@pytest.mark.parametrize("vent,oxygen", [(0, False), (1, True)])
def test_mechanical_ventilation_counts_as_oxygen_on_room_air_fio2(record_writer, vent, oxygen):
    inputs, _ = _inputs(record_writer, [("01:30", "FiO2", 0.21), ("01:30", "MechVent", vent)])
    assert inputs["air_or_oxygen"] is oxygen


def test_never_measured_gcs_and_fio2_score_as_alert_on_air(record_writer):
    inputs, breakdown = _inputs(record_writer, [], step=0)
    assert inputs["consciousness"] is True and inputs["air_or_oxygen"] is False
    assert breakdown == {p: 0 for p in N.PARAMETERS}


def test_the_more_recent_systolic_pressure_is_used_and_invasive_wins_a_tie(record_writer):
    rows = [("01:30", "NISysABP", 85), ("02:30", "SysABP", 150), ("03:30", "NISysABP", 105),
            ("04:30", "SysABP", 95), ("04:30", "NISysABP", 160)]
    grid = to_grid(read_record(record_writer(8, BASE + rows)))
    assert [N.news2_inputs(grid, t)["systolic_bp"] for t in range(5)] == [130, 85, 150, 105, 95]
    assert [N.news2_grid(grid).breakdown(t)["systolic_bp"] for t in range(5)] == [0, 3, 0, 1, 2]


def test_grid_scores_every_hour_as_integers_with_its_risk_band(record_writer):
    # hour 0 normal; hour 1 pulse 35 alone (a single 3: low-medium); hour 2 pulse 120 (2: low)
    rows = [("01:30", "HR", 35), ("02:30", "HR", 120)]
    n = N.news2_grid(to_grid(read_record(record_writer(9, BASE + rows))))
    assert n.points.shape == (48, len(N.PARAMETERS)) and n.points.dtype == np.int64
    assert n.total.shape == (48,) and len(n.risk) == 48
    assert n.total[:3].tolist() == [0, 3, 2]
    assert n.risk[:3] == ["low", "low-medium", "low"]
    assert n.risk[47] == "low" and n.total[47] == 2  # the last value is carried forward


@pytest.mark.parametrize("value,points", [(35.04, 3), (35.06, 1), (36.04, 1), (38.04, 0), (38.96, 1), (39.04, 1)])
def test_temperature_is_rounded_to_the_charts_tenths_before_banding(value, points):
    assert N.score_temperature(value) == points


def test_the_other_inputs_pass_their_channel_values_through(record_writer):
    rows = [("01:30", "HR", 123), ("01:30", "RespRate", 27), ("01:30", "Temp", 38.6), ("01:30", "SaO2", 93)]
    inputs, breakdown = _inputs(record_writer, rows)
    assert (inputs["pulse"], inputs["respiration"], inputs["spo2"]) == (123, 27, 93)
    assert inputs["temperature"] == pytest.approx(38.6, abs=1e-4)
    assert breakdown == {"respiration": 3, "spo2": 2, "air_or_oxygen": 0, "systolic_bp": 0, "pulse": 2,
                         "consciousness": 0, "temperature": 1}
