"""The PhysioNet stand-ins of NEWS2 at their edges: GCS for ACVPU, FiO2/ventilation for oxygen, SaO2 for SpO2.

The chart's own bands are covered in test_news2.py; these pin the substitutions stated in the
module docstring, each on both sides of its edge, through a generated record.
"""
from __future__ import annotations

import numpy as np
import pytest

from cxr_model.vitals import news2 as N
from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.reader import read_record

BASE = [("00:30", "HR", 70), ("00:30", "RespRate", 16), ("00:30", "SysABP", 130), ("00:30", "Temp", 37.0),
        ("00:30", "SaO2", 98)]


def _obs(record_writer, rows, step=1):
    grid = to_grid(read_record(record_writer(7, BASE + rows)))
    return N.observation_set(grid, step), N.news2_grid(grid).breakdown(step)


@pytest.mark.parametrize("gcs,value,points", [(15, "alert", 0), (14, "not alert", 3), (13, "not alert", 3), (3, "not alert", 3)])
def test_gcs_below_15_is_not_alert(record_writer, gcs, value, points):
    obs, breakdown = _obs(record_writer, [("01:30", "GCS", gcs)])
    assert obs["consciousness"].value == value
    assert breakdown["consciousness"] == points


@pytest.mark.parametrize("fio2,value", [
    (0.21, "air"), (0.22, "oxygen"), (0.30, "oxygen"), (1.0, "oxygen"),
    (21, "air"),     # recorded as a percentage: 21 % is air
    (28, "oxygen"),  # 28 % -> 0.28: oxygen
])
def test_fio2_above_room_air_is_oxygen(record_writer, fio2, value):
    obs, breakdown = _obs(record_writer, [("01:30", "FiO2", fio2)])
    assert obs["air_or_oxygen"].value == value
    assert breakdown["air_or_oxygen"] == (2 if value == "oxygen" else 0)


@pytest.mark.parametrize("vent,value", [(0, "air"), (1, "oxygen")])
def test_mechanical_ventilation_counts_as_oxygen_on_room_air_fio2(record_writer, vent, value):
    obs, _ = _obs(record_writer, [("01:30", "FiO2", 0.21), ("01:30", "MechVent", vent)])
    assert obs["air_or_oxygen"].value == value


def test_ventilation_alone_is_oxygen_and_nothing_at_all_is_missing(record_writer):
    obs, _ = _obs(record_writer, [("01:30", "MechVent", 1)])
    assert obs["air_or_oxygen"].value == "oxygen"
    obs, breakdown = _obs(record_writer, [], step=0)
    assert obs["air_or_oxygen"].value is None and breakdown["air_or_oxygen"] is None
    assert obs["consciousness"].value is None and breakdown["consciousness"] is None


def test_never_measured_gcs_and_fio2_are_missing_not_alert_on_air(record_writer):
    grid = to_grid(read_record(record_writer(7, BASE)))
    n = N.news2_grid(grid)
    assert n.breakdown(0)["consciousness"] is None and n.breakdown(0)["air_or_oxygen"] is None
    assert n.incomplete[0] and n.total[0] == 0


def test_the_more_recent_systolic_pressure_is_used_and_invasive_wins_a_tie(record_writer):
    rows = [("01:30", "NISysABP", 85), ("02:30", "SysABP", 150), ("03:30", "NISysABP", 105),
            ("04:30", "SysABP", 95), ("04:30", "NISysABP", 160)]
    grid = to_grid(read_record(record_writer(8, BASE + rows)))
    assert [N.observation_set(grid, t)["systolic_bp"].value for t in range(5)] == [130, 85, 150, 105, 95]
    assert [N.news2_grid(grid).breakdown(t)["systolic_bp"] for t in range(5)] == [0, 3, 0, 1, 2]


def test_grid_scores_every_hour_as_integers_with_its_response_level(record_writer):
    # hour 1 normal; hour 2 pulse 35 alone (a single 3: low-medium); hour 3 pulse 120 (2: low)
    rows = [("01:30", "HR", 35), ("02:30", "HR", 120)]
    n = N.news2_grid(to_grid(read_record(record_writer(9, BASE + rows))))
    assert n.points.shape == (48, len(N.PARAMETERS)) and n.points.dtype == np.int64
    assert n.total.shape == (48,) and len(n.risk) == 48 and n.incomplete.shape == (48,)
    assert n.total[:3].tolist() == [0, 3, 2]
    assert n.risk[:3] == ["low", "low-medium", "low"]
    assert n.total[47] == 0 and n.incomplete[47]  # every reading is older than the window by hour 48


@pytest.mark.parametrize("value,points", [(35.04, 3), (35.06, 1), (36.04, 1), (38.04, 0), (38.96, 1), (39.04, 1)])
def test_temperature_is_rounded_to_the_charts_tenths_before_banding(value, points):
    assert N.score_temperature(value) == points


def test_the_other_inputs_pass_their_channel_values_through(record_writer):
    rows = [("01:30", "HR", 123), ("01:30", "RespRate", 27), ("01:30", "Temp", 38.6), ("01:30", "SaO2", 93)]
    obs, breakdown = _obs(record_writer, rows)
    assert (obs["pulse"].value, obs["respiration_rate"].value, obs["spo2"].value) == (123, 27, 93)
    assert obs["temperature"].value == pytest.approx(38.6, abs=1e-4)
    assert breakdown == {"respiration_rate": 3, "spo2": 2, "air_or_oxygen": None, "systolic_bp": 0, "pulse": 2,
                         "consciousness": None, "temperature": 1}
