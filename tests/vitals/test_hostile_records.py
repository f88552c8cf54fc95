"""Hostile PhysioNet records and outcomes files: each fault is one clear error naming the file and
line, the other stays are still scored, and no reading is dropped without being counted.

All records are generated here in the challenge format (``tests/vitals/conftest.py``).
"""
from __future__ import annotations

import json

import pytest

from cxr_model.cli import main
from cxr_model.vitals.reader import RecordError, load_outcomes, read_dir, read_record
from tests.vitals.conftest import write_record

HEADER = "RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death"


def good_records(folder, ids=(1001, 1002, 1003)):
    for rid in ids:
        write_record(folder, rid, [("00:30", "HR", 80 + rid % 7), ("01:30", "SysABP", 120)])


def raw_record(folder, name: str, record_id_text: str) -> None:
    (folder / name).write_text(f"Time,Parameter,Value\n00:00,RecordID,{record_id_text}\n00:00,Age,60\n00:30,HR,80\n")


@pytest.mark.parametrize("rid", ["nan", "1e400", "-inf", "12.5", "-3", "0"])
def test_a_bad_record_id_is_one_error_naming_file_and_line_and_the_rest_are_read(tmp_path, rid):
    good_records(tmp_path)
    raw_record(tmp_path, "bad.txt", rid)
    records, errors = read_dir(tmp_path)
    assert sorted(r.record_id for r in records) == [1001, 1002, 1003]
    assert errors == [f"bad.txt:2: RecordID {rid!r} is not a positive whole number"]


def test_a_record_id_that_is_not_a_number_names_file_and_line(tmp_path):
    raw_record(tmp_path, "bad.txt", "abc")
    with pytest.raises(RecordError, match=r"^bad.txt:2: value 'abc' of RecordID is not a number$"):
        read_record(tmp_path / "bad.txt")


def test_two_record_ids_in_one_file_are_refused(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("Time,Parameter,Value\n00:00,RecordID,7\n00:00,RecordID,8\n00:30,HR,80\n")
    with pytest.raises(RecordError, match=r"^x.txt:3: a second RecordID 8 \(line 2 says 7\)$"):
        read_record(p)


def test_the_same_record_id_in_two_files_is_one_error_naming_both_and_neither_is_scored(tmp_path):
    good_records(tmp_path)
    (tmp_path / "copy-of-1002.txt").write_text((tmp_path / "1002.txt").read_text())
    records, errors = read_dir(tmp_path)
    assert sorted(r.record_id for r in records) == [1001, 1003]
    assert errors == ["1002.txt, copy-of-1002.txt: the same RecordID 1002 in 2 files; none of them is scored"]


def test_a_numbered_file_holding_another_record_id_is_refused(tmp_path):
    good_records(tmp_path, (1001,))
    (tmp_path / "1004.txt").write_text((tmp_path / "1001.txt").read_text())
    records, errors = read_dir(tmp_path)
    assert [r.record_id for r in records] == [1001]
    assert errors == ["1004.txt: holds RecordID 1001, not 1004 as its name says"]


@pytest.mark.parametrize("name", [" HR", "HR ", "\ufeffHR", "HR\x00", "\x00HR", "\tHR"])
def test_parameter_names_with_spaces_nul_or_bom_at_the_ends_keep_their_readings(tmp_path, name):
    path = write_record(tmp_path, 1001, [("00:30", name, 81), ("01:30", "HR", 82)])
    rec = read_record(path)
    assert rec.events == [(30, "HR", 81.0), (90, "HR", 82.0)] and rec.n_dropped == 0


def test_a_parameter_name_mangled_inside_is_counted_as_dropped_with_its_reason(tmp_path):
    path = write_record(tmp_path, 1001, [("00:30", "H\x00R", 81), ("01:00", "Heart rate", 90), ("01:30", "HR", 82),
                                         ("02:00", "HR", 900)])
    rec = read_record(path)
    assert rec.events == [(90, "HR", 82.0)]
    assert rec.n_dropped == 3
    assert rec.drop_reasons == {"unknown parameter 'H\\x00R'": 1, "unknown parameter 'Heart rate'": 1,
                                "HR: unknown (-1), non-finite or implausible value": 1}


def test_a_byte_order_mark_before_the_header_is_accepted(tmp_path):
    path = write_record(tmp_path, 1001, [("00:30", "HR", 81)])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert read_record(path).events == [(30, "HR", 81.0)]


def test_a_descriptor_with_a_leading_space_is_still_read(tmp_path):
    path = write_record(tmp_path, 1001, [("00:30", "HR", 81)])
    path.write_text(path.read_text().replace("00:00,Age,70", "00:00, Age,64"))
    assert read_record(path).descriptors["Age"] == 64


# ------------------------------------------------------------------------------- outcomes files
OUTCOMES_FAULTS = [
    ("", "Outcomes-x.txt: file is empty"),
    ("\n  \n", "Outcomes-x.txt: file is empty"),
    (HEADER + "\n", "Outcomes-x.txt: no outcome rows after the header"),
    (HEADER + "\n1001,10,2,5,-1,nan\n", "Outcomes-x.txt:2: In-hospital_death 'nan' is not 0 or 1"),
    (HEADER + "\n1001,10,2,5,-1,0\n1002,10,2,5,-1,2\n", "Outcomes-x.txt:3: In-hospital_death '2' is not 0 or 1"),
    (HEADER + "\n1001,10,2,5,-1,-1\n", "Outcomes-x.txt:2: In-hospital_death '-1' is not 0 or 1"),
    (HEADER + "\n1001,10,2,5,-1,0.5\n", "Outcomes-x.txt:2: In-hospital_death '0.5' is not 0 or 1"),
    (HEADER + "\n1001,10,2,5,-1,0\n1002,9,2,5,-1,1\n1001,10,2,5,-1,1\n",
     "Outcomes-x.txt:4: RecordID 1001 already has an outcome on line 2"),
    (HEADER + "\nnan,10,2,5,-1,0\n", "Outcomes-x.txt:2: RecordID 'nan' is not a positive whole number"),
    (HEADER + "\n1e400,10,2,5,-1,0\n", "Outcomes-x.txt:2: RecordID '1e400' is not a positive whole number"),
    (HEADER + "\n1001.5,10,2,5,-1,0\n", "Outcomes-x.txt:2: RecordID '1001.5' is not a positive whole number"),
    (HEADER + "\n1001,inf,2,5,-1,0\n", "Outcomes-x.txt:2: non-finite SAPS-I"),
    (HEADER + "\n1001,10,2,5,0\n", "Outcomes-x.txt:2: expected 6 fields, got 5"),
    ("RecordID,SAPS-I\n1001,3\n", "Outcomes-x.txt:1: header lacks RecordID or In-hospital_death"),
]


@pytest.mark.parametrize("text,message", OUTCOMES_FAULTS, ids=[f"outcomes{i}" for i in range(len(OUTCOMES_FAULTS))])
def test_a_bad_outcomes_file_fails_with_its_name_and_line(tmp_path, text, message):
    path = tmp_path / "Outcomes-x.txt"
    path.write_text(text)
    with pytest.raises(RecordError) as err:
        load_outcomes(path)
    assert str(err.value).startswith(message)


def test_outcomes_that_are_not_text_name_the_file(tmp_path):
    path = tmp_path / "Outcomes-x.txt"
    path.write_bytes(b"\xff\xfe\x00\x81binary")
    with pytest.raises(RecordError, match=r"^Outcomes-x.txt: not a text file"):
        load_outcomes(path)


def test_outcomes_with_a_bom_and_stray_spaces_are_read(tmp_path):
    path = tmp_path / "Outcomes-x.txt"
    path.write_bytes(("\ufeff" + HEADER + "\n 1001 ,10,2,5,-1, 1\r\n").encode())
    assert load_outcomes(path) == {1001: {"SAPS-I": 10, "SOFA": 2, "Length_of_stay": 5, "Survival": -1,
                                          "In-hospital_death": 1}}


# ---------------------------------------------------------------------- the command, end to end
@pytest.fixture
def ward(tmp_path):
    """24 generated stays (every fourth dies, with a faster heart), 6 hostile record files, outcomes."""
    rec = tmp_path / "records"
    rec.mkdir()
    rows = [HEADER]
    for k in range(24):
        rid, died = 2000 + k, int(k % 4 == 0)
        hr = 125 if died else 75
        write_record(rec, rid, [(f"{h:02d}:30", "HR", hr + k % 3) for h in range(0, 48, 3)]
                     + [(f"{h:02d}:40", " RespRate", 28 if died else 16) for h in range(0, 48, 6)])
        rows.append(f"{rid},{10 + 8 * died},{2},{5},{3 if died else -1},{died}")
    for name, rid in (("nan-id.txt", "nan"), ("huge-id.txt", "1e400"), ("half-id.txt", "2000.5")):
        raw_record(rec, name, rid)
    (rec / "copy.txt").write_text((rec / "2003.txt").read_text())
    (rec / "2100.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    write_record(rec, 2101, [("00:30", "HR", 80)])  # no outcome row
    (tmp_path / "Outcomes-x.txt").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_vitals_evaluate_scores_every_good_stay_and_names_every_bad_file(ward, settings, capsys):
    out = ward / "eval"
    rc = main(["vitals", "evaluate", "--records", str(ward / "records"), "--outcomes", str(ward / "Outcomes-x.txt"),
               "--model", str(settings.vitals_model_dir), "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "Traceback" not in captured.err
    m = json.loads((out / "metrics.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in metrics.json"))
    # 24 stays minus 2003, whose RecordID is also in copy.txt; every bad file is one error naming it
    assert (m["n"], m["n_errors"]) == (23, 6), m["errors"]
    assert sorted(e.split(":")[0] for e in m["errors"]) == sorted(
        ["2003.txt, copy.txt", "2100.txt", "2101.txt", "half-id.txt", "huge-id.txt", "nan-id.txt"])
    assert all(e in captured.err for e in m["errors"])
    # the readings with " RespRate" were kept, so nothing was dropped
    assert m["n_dropped"] == 0 and m["dropped_by_reason"] == {}
    assert m["lstm_48h"]["n"] == 23 and 0 <= m["lstm_48h"]["auroc"] <= 1


@pytest.mark.parametrize("text,message", [OUTCOMES_FAULTS[0], OUTCOMES_FAULTS[3], OUTCOMES_FAULTS[4], OUTCOMES_FAULTS[7]],
                         ids=["empty", "nan-label", "label-2", "duplicate"])
def test_vitals_evaluate_refuses_a_bad_outcomes_file_with_a_clear_message(ward, settings, capsys, text, message):
    (ward / "Outcomes-x.txt").write_text(text)
    rc = main(["vitals", "evaluate", "--records", str(ward / "records"), "--outcomes", str(ward / "Outcomes-x.txt"),
               "--model", str(settings.vitals_model_dir), "--out", str(ward / "eval")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(f"error: {message}") and "Traceback" not in err
    assert not (ward / "eval" / "metrics.json").exists()
