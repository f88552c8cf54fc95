"""Uploaded record files (the ward's own records): read as a folder is, each bad file named, the rest kept."""
from __future__ import annotations

import codecs

import numpy as np
import pytest

from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.reader import read_record
from cxr_model.vitals.uploads import MAX_UPLOAD_BYTES, parse_upload, read_uploads


def _real(physionet_dir, n: int) -> list[tuple[str, bytes]]:
    paths = sorted((physionet_dir / "set-a").glob("*.txt"))[:n]
    return [(p.name, p.read_bytes()) for p in paths]


def test_uploaded_real_records_read_as_the_files_do(physionet_dir):
    files = _real(physionet_dir, 3)
    records, errors = read_uploads(files)
    assert errors == []
    assert [r.record_id for r in records] == [int(name.removesuffix(".txt")) for name, _ in files]
    for (name, _), rec in zip(files, records):
        same = read_record(physionet_dir / "set-a" / name)
        assert rec.source == name and rec.events == same.events and rec.descriptors == same.descriptors
        np.testing.assert_array_equal(to_grid(rec).values, to_grid(same).values)


def test_a_byte_order_mark_and_windows_line_ends_are_read(physionet_dir):
    name, data = _real(physionet_dir, 1)[0]
    rec = parse_upload(name, codecs.BOM_UTF8 + data.replace(b"\n", b"\r\n"))
    assert rec.events == read_record(physionet_dir / "set-a" / name).events


def test_each_bad_file_is_named_and_the_good_ones_are_kept(physionet_dir):
    (n1, good1), (n2, good2), (n3, good3) = _real(physionet_dir, 3)
    broken = good2.replace(b"\n", b"\n00:oops,HR,80\n", 1)  # a bad time on line 2
    files = [(n1, good1), ("scan.png", b"\x89PNG\r\n\x1a\n\x00\x00"), (n2, broken), ("empty.txt", b""),
             ("renamed_" + n3, good3), ("123.txt", good3)]
    records, errors = read_uploads(files)
    assert [r.source for r in records] == [n1, "renamed_" + n3]
    assert errors == [
        "scan.png: not a UTF-8 text file (byte 0 is 0x89); expected PhysioNet 2012 'Time,Parameter,Value' lines",
        f"{n2}:2: time '00:oops' is not HH:MM",
        "empty.txt:1: header is not 'Time,Parameter,Value'",
        f"123.txt: holds RecordID {n3.removesuffix('.txt')}, not 123 as its name says",
    ]


def test_one_record_uploaded_twice_is_refused_in_both_files(physionet_dir):
    (n1, good1), (n2, good2) = _real(physionet_dir, 2)
    records, errors = read_uploads([(n1, good1), ("copy.txt", good1), (n2, good2)])
    assert [r.source for r in records] == [n2]
    assert errors == [f"{n1}, copy.txt: the same RecordID {n1.removesuffix('.txt')} in 2 files; none of them is scored"]


def test_an_oversized_file_is_refused_before_it_is_read():
    records, errors = read_uploads([("huge.txt", b"Time,Parameter,Value\n" + b"x" * MAX_UPLOAD_BYTES)])
    assert records == [] and errors == ["huge.txt: 5.0 MB is too large for one 48 h record (at most 5 MB)"]
    # exactly at the limit is read (and here refused only for its content)
    _, errors = read_uploads([("edge.txt", b"y" * MAX_UPLOAD_BYTES)])
    assert errors == ["edge.txt:1: header is not 'Time,Parameter,Value'"]


def test_an_uploaded_outcomes_file_is_read_as_the_file_is_or_refused_whole(physionet_dir):
    from cxr_model.vitals.reader import RecordError, load_outcomes
    from cxr_model.vitals.uploads import parse_outcomes_upload

    path = physionet_dir / "Outcomes-a.txt"
    assert parse_outcomes_upload("labels.txt", path.read_bytes()) == load_outcomes(path)
    for data, problem in ((b"\xff\xfeR\x00", "labels.txt: not a UTF-8 text file (byte 0 is 0xff); expected an outcomes "
                                              "table (RecordID,...,In-hospital_death)"),
                          (b"RecordID,In-hospital_death\n1,1\n2,3\n", "labels.txt:3: In-hospital_death '3' is not 0 or 1"),
                          (b"x" * (MAX_UPLOAD_BYTES + 1), "labels.txt: 5.0 MB is too large for an outcomes file (at most 5 MB)")):
        with pytest.raises(RecordError) as err:
            parse_outcomes_upload("labels.txt", data)
        assert str(err.value) == problem
    # exactly at the limit is read (and here refused only for its content)
    with pytest.raises(RecordError, match="labels.txt:1: header lacks RecordID"):
        parse_outcomes_upload("labels.txt", b"y" * MAX_UPLOAD_BYTES)


def test_a_longer_stay_is_told_which_readings_past_hour_48_were_not_read(physionet_dir):
    from cxr_model.vitals.uploads import unused_readings

    (name, data), = _real(physionet_dir, 1)
    real = read_record(physionet_dir / "set-a" / name)
    # the same stay going on past the model's window: a day-3 heart rate and temperature
    longer = data.rstrip(b"\n") + b"\n49:00,HR,88\n72:30,Temp,37.9\n"
    records, errors = read_uploads([(name, longer), ("2" + name, data.replace(b"RecordID,", b"RecordID,2", 1))])
    assert errors == [] and records[0].events == real.events  # what is read is unchanged
    assert records[0].n_after_window == 2 and records[1].n_after_window == 0
    lines = unused_readings(records)
    assert any(line.startswith(f"{name}: ") and "after hour 48 (the model reads the first 48 h) (2)" in line
               for line in lines), lines
    assert not any(line.startswith(f"2{name}") and "after hour 48" in line for line in lines)
