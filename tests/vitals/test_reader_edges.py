"""The record reader and hourly grid at their edges: every cleaning rule's bounds, the 48 h cut, the
descriptors' ranges, junk around fields, blank lines, the counted drop reasons, the outcomes file's
blank lines and messages, and how several readings in one hour are combined (records generated here)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cxr_model.vitals import reader
from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.reader import RecordError, channel_names, clean_value, load_outcomes, parse_record, read_dir

HEAD = ["Time,Parameter,Value", "00:00,RecordID,7"]


def _parse(*rows: str, head=HEAD):
    return parse_record(list(head) + list(rows), source="7.txt")


@pytest.mark.parametrize("param,value,expected", [
    ("pH", 650, 6.5), ("pH", 800, 8.0), ("pH", 735, 7.35), ("pH", 7.35, 7.35),
    ("pH", 649, math.nan), ("pH", 801, math.nan), ("pH", 100, math.nan),  # x100 only within 650-800
    ("Platelets", 700, 700.0),  # only pH is divided by 100
    ("FiO2", 100, 1.0), ("FiO2", 40, 0.4), ("FiO2", 21, 0.21), ("FiO2", 1, 1.0), ("FiO2", 0.5, 0.5),
    ("FiO2", 101, math.nan),
    ("HR", -1, math.nan), ("HR", math.inf, math.nan), ("HR", math.nan, math.nan), ("HR", 1, 1.0), ("HR", 300, 300.0),
    ("HR", 301, math.nan), ("Urine", 0, 0.0), ("NotAChannel", 5, math.nan),
])
def test_each_cleaning_rule_at_its_bounds(param, value, expected):
    got = clean_value(param, value)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


def test_fields_lose_spaces_nul_bytes_and_byte_order_marks_and_blank_lines_are_skipped():
    rec = _parse("\x0000:30 , HR ,80\x00", "", "   ", "\x00\ufeff", "\ufeff01:10,\u00a0RespRate,18", "", "02:00,Temp,37.1",
                 head=["\ufeffTime, Parameter ,Value\x00", "00:00,RecordID,7"])
    assert rec.record_id == 7 and rec.events == [(30, "HR", 80.0), (70, "RespRate", 18.0), (120, "Temp", 37.1)]
    assert rec.n_dropped == 0


@pytest.mark.parametrize("time_text", ["00:60", "-1:30", "1:75", "ab:10"])
def test_a_time_that_is_not_hh_mm_names_its_line(time_text):
    with pytest.raises(RecordError, match=rf"^7\.txt:4: time '{time_text}' is not HH:MM$"):
        _parse("00:10,HR,70", f"{time_text},HR,80")


def test_readings_after_48_h_are_left_out_wherever_they_stand_in_the_file():
    rec = _parse("48:01,HR,90", "48:00,HR,80", "10:00,HR,70", "72:00,Temp,38")
    assert sorted(rec.events) == [(600, "HR", 70.0), (2880, "HR", 80.0)]
    assert rec.n_dropped == 0  # not modelled, not dropped: the stay simply goes on
    assert rec.n_after_window == 2  # but counted, so that an uploaded longer stay can be told
    assert _parse("48:00,HR,80", "48:01,Foo,1").n_after_window == 0  # an unknown name is counted as such


def test_drop_reasons_are_counted_per_reading():
    rec = _parse("00:10,Foo,1", "00:20,Foo,2", "00:30,HR,-1", "00:40,HR,400", "00:50,Age,60", "01:00,HR,70")
    assert rec.drop_reasons == {"unknown parameter 'Foo'": 2, "HR: unknown (-1), non-finite or implausible value": 2}
    assert rec.n_dropped == 4 and rec.events == [(60, "HR", 70.0)]  # a later Age row is neither dropped nor kept
    long_name = "X" * 50
    assert _parse(f"00:10,{long_name},1").drop_reasons == {f"unknown parameter {'X' * 40!r}": 1}


def test_descriptors_come_from_00_00_only_and_keep_their_valid_range():
    ok = _parse("00:00,Age,15", "00:00,Gender,1", "00:00,Height,250", "00:00,ICUType,1", "00:30,Weight,81")
    assert ok.descriptors["Age"] == 15 and ok.descriptors["Gender"] == 1 and ok.descriptors["Height"] == 250
    assert ok.descriptors["ICUType"] == 1
    assert math.isnan(ok.descriptors["Weight"])  # weighed at 00:30: a time series, not the admission weight
    assert (30, "Weight", 81.0) in ok.events
    top = _parse("00:00,Age,120", "00:00,Gender,0", "00:00,ICUType,4", "00:00,Weight,300", "00:00,Height,100")
    assert [top.descriptors[k] for k in ("Age", "Gender", "ICUType", "Weight", "Height")] == [120, 0, 4, 300, 100]
    bad = _parse("00:00,Age,14", "00:00,Gender,-1", "00:00,ICUType,5", "00:00,Weight,19", "00:00,Height,251")
    assert all(math.isnan(v) for v in bad.descriptors.values())
    assert set(bad.descriptors) == {"Age", "Gender", "Height", "ICUType", "Weight"}


def test_a_record_without_its_id_and_a_bad_row_are_named():
    with pytest.raises(RecordError, match=r"^7\.txt:2: no RecordID descriptor at 00:00$"):
        parse_record(["Time,Parameter,Value", "00:10,HR,70"], source="7.txt")
    row = "00:10,HR,70," + "y" * 80
    with pytest.raises(RecordError, match=r"^7\.txt:3: expected 3 comma-separated fields, got 4: ") as err:
        _parse(row)
    assert str(err.value).endswith(repr(row[:60]))


def test_several_readings_in_one_hour_last_in_time_summed_or_highest():
    rec = _parse("00:50,HR,90", "00:10,HR,70", "00:20,Urine,30", "00:40,Urine,45",
                 "00:10,MechVent,1", "00:50,MechVent,0", "01:30,GCS,12", "01:30,GCS,9")
    g = to_grid(rec)
    names = channel_names()
    assert g.values[0, names.index("HR")] == 90  # the later reading, though written first
    assert g.values[0, names.index("Urine")] == 75  # summed
    assert g.values[0, names.index("MechVent")] == 1  # ventilated at any time in the hour
    assert g.values[1, names.index("GCS")] == 9  # same minute: the later line, not the larger value
    assert g.mask.dtype == g.values.dtype == g.delta.dtype == np.float32


def test_a_folder_skips_its_outcomes_files_and_names_an_unexpected_failure(tmp_path, monkeypatch):
    from tests.vitals.conftest import write_record

    write_record(tmp_path, 11, [("00:30", "HR", 80)])
    write_record(tmp_path, 12, [("00:30", "HR", 80)])
    (tmp_path / "Outcomes-a.txt").write_text("RecordID,In-hospital_death\n11,0\n")
    (tmp_path / "outcomes-b.txt").write_text("RecordID,In-hospital_death\n12,0\n")
    records, errors = read_dir(tmp_path)
    assert [r.record_id for r in records] == [11, 12] and errors == []
    real = reader.read_record

    def flaky(path):
        if path.name == "12.txt":
            raise RuntimeError("disk hiccup")
        return real(path)

    monkeypatch.setattr(reader, "read_record", flaky)
    records, errors = read_dir(tmp_path)
    assert [r.record_id for r in records] == [11]
    assert errors == ["12.txt: cannot read (RuntimeError: disk hiccup)"]


def test_outcomes_skip_blank_lines_and_junk_and_name_bad_fields(tmp_path):
    head = "RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death"
    p = tmp_path / "Outcomes-x.txt"
    p.write_text(f"\ufeff{head}\x00\n1,10,2,5,-1,0\n\n   \n\x00\n2,12\x00,3,6,4,1\u00a0\n")
    out = load_outcomes(p)
    assert sorted(out) == [1, 2] and out[2]["SAPS-I"] == 12 and out[2]["In-hospital_death"] == 1
    row = "2,abc,3,6,4," + "1" * 70
    p.write_text(f"{head}\n1,10,2,5,-1,0\n{row}\n")
    with pytest.raises(RecordError, match=r"^Outcomes-x\.txt:3: non-numeric field in ") as err:
        load_outcomes(p)
    assert str(err.value).endswith(repr(row[:60]))
    p.write_text(f"{head}\n1,10,inf,5,nan,0\n")
    with pytest.raises(RecordError, match=r"^Outcomes-x\.txt:2: non-finite SOFA, Survival$"):
        load_outcomes(p)


def test_an_outcomes_file_of_junk_bytes_only_is_empty(tmp_path):
    p = tmp_path / "Outcomes-x.txt"
    p.write_text("\x00\n\ufeff \n")
    with pytest.raises(RecordError, match=r"^Outcomes-x\.txt: file is empty"):
        load_outcomes(p)
