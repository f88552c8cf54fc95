"""``cxr-model vitals news2 RECORD [--hour H] [--json]`` on generated records."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from cxr_model.vitals.news2 import PARAMETERS

ROWS = [("00:30", "HR", 118), ("00:30", "SysABP", 95), ("00:30", "Temp", 38.4), ("00:30", "SaO2", 93),
        ("00:30", "GCS", 15), ("00:30", "FiO2", 0.4), ("03:10", "HR", 132), ("05:40", "SysABP", 88)]


def _news2(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "cxr_model", "vitals", "news2", *map(str, args)],
                          capture_output=True, text=True, timeout=120, env=env)


def test_json_has_the_issue_shape_and_a_never_measured_parameter_is_null(record_writer):
    path = record_writer(4242, ROWS)  # respiration rate is never measured
    r = _news2(path, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"record_id", "hour", "parameters", "aggregate", "level", "incomplete"}
    assert out["record_id"] == 4242 and out["hour"] == 6  # default: the record's last hour (05:40)
    assert list(out["parameters"]) == PARAMETERS
    for p in out["parameters"].values():
        assert set(p) == {"value", "points", "hours_since_measured"}
    assert out["parameters"]["respiration_rate"] == {"value": None, "points": None, "hours_since_measured": None}
    # pulse 132: 3, SBP 88: 3, temp 38.4: 1, SaO2 93 (scale 1): 2, oxygen: 2, alert: 0
    assert [out["parameters"][k]["points"] for k in PARAMETERS] == [None, 2, 2, 3, 3, 0, 1]
    assert out["parameters"]["pulse"]["hours_since_measured"] == 2
    assert out["parameters"]["temperature"]["value"] == 38.4  # not the grid's float32 38.400001
    assert out["aggregate"] == 11 and out["level"] == "high" and out["incomplete"] is True


def test_hour_selects_the_observations_recorded_up_to_it(record_writer):
    path = record_writer(4243, ROWS)
    out = json.loads(_news2(path, "--hour", 2, "--json").stdout)
    assert out["hour"] == 2 and out["parameters"]["pulse"]["value"] == 118  # 03:10 is not seen yet
    assert out["parameters"]["systolic_bp"]["points"] == 2


def test_text_output_names_missing_parameters_and_the_stand_ins(record_writer):
    r = _news2(record_writer(4244, ROWS), "--hour", 1)
    assert r.returncode == 0, r.stderr
    assert "Respiration rate (/min)" in r.stdout and "missing" in r.stdout and "INCOMPLETE" in r.stdout
    assert "SaO2 stands in for SpO2" in r.stdout


def test_bad_input_is_one_line_naming_the_problem(record_writer, tmp_path):
    r = _news2(record_writer(4245, ROWS), "--hour", 49)
    assert r.returncode == 2 and "hour 49" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "77.txt"
    bad.write_text("Time,Parameter,Value\n00:00,RecordID,77\n00:05,HR,fast\n")
    r = _news2(bad)
    assert r.returncode == 2 and "77.txt" in r.stderr and "Traceback" not in r.stderr
