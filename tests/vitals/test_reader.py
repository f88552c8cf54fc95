"""Reader, cleaning rules, hourly grid and normaliser of PhysioNet 2012 records."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.normaliser import Normaliser
from cxr_model.vitals.reader import (
    N_HOURS, RecordError, channel_names, clean_value, normal_values, read_dir, read_record,
)
from cxr_model.vitals.splits import stratified_split

IDX = {n: i for i, n in enumerate(channel_names())}


def test_descriptors_and_minus_one_sentinel(record_writer):
    rec = read_record(record_writer(1, [("00:30", "HR", 80)], {"Height": -1, "Weight": 72.5}))
    assert rec.record_id == 1
    assert math.isnan(rec.descriptors["Height"])
    assert rec.descriptors["Weight"] == 72.5 and rec.descriptors["Age"] == 70
    assert rec.events == [(30, "HR", 80.0)]


@pytest.mark.parametrize("param,raw,expected", [
    ("pH", 735, 7.35),          # pH recorded x100
    ("pH", 100, math.nan),      # not a pH
    ("FiO2", 40, 0.40),         # percent
    ("Temp", -17.8, math.nan),  # 0 F converted to C
    ("SysABP", 0, math.nan),    # line artefact
    ("NISysABP", -1, math.nan), # sentinel
    ("HR", 350, math.nan),      # outside valid range
    ("HR", 72, 72.0),
    ("Urine", 0, 0.0),          # no urine is a real observation
])
def test_cleaning_rules(param, raw, expected):
    got = clean_value(param, raw)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


def test_implausible_values_are_dropped_and_counted(record_writer):
    rec = read_record(record_writer(2, [("01:00", "SysABP", 0), ("01:00", "pH", 735), ("02:00", "Temp", -17.8)]))
    assert rec.n_dropped == 2
    assert rec.events == [(60, "pH", pytest.approx(7.35))]


@pytest.mark.parametrize("bad_line,problem", [
    ("01:00,HR", "expected 3 comma-separated fields"),
    ("1h30,HR,80", "is not HH:MM"),
    ("01:00,HR,eighty", "is not a number"),
])
def test_malformed_record_names_file_and_line(record_writer, bad_line, problem):
    path = record_writer(3, [("00:10", "HR", 70)])
    path.write_text(path.read_text() + bad_line + "\n")
    with pytest.raises(RecordError) as err:
        read_record(path)
    assert str(err.value).startswith("3.txt:9:") and problem in str(err.value)


def test_batch_collects_errors_and_carries_on(record_writer, tmp_path):
    record_writer(10, [("00:10", "HR", 70)])
    bad = record_writer(11, [("00:10", "HR", 70)])
    bad.write_text("Time;Parameter;Value\n")
    records, errors = read_dir(tmp_path)
    assert [r.record_id for r in records] == [10]
    assert errors == ["11.txt:1: header is not 'Time,Parameter,Value'"]


def test_grid_bins_masks_delta_and_forward_fill(record_writer):
    rows = [("00:00", "HR", 90), ("01:00", "HR", 100), ("01:01", "HR", 110), ("05:30", "HR", 60),
            ("02:10", "Urine", 30), ("02:50", "Urine", 20), ("47:59", "Temp", 38.5), ("48:00", "GCS", 9)]
    g = to_grid(read_record(record_writer(4, rows)))
    hr, c = g.values[:, IDX["HR"]], IDX["HR"]
    assert g.values.shape == g.mask.shape == g.delta.shape == (N_HOURS, len(channel_names()))
    assert hr[0] == 100  # 00:00 and 01:00 both end in step 0; the last one wins
    assert hr[1] == 110 and hr[4] == 110 and hr[5] == 60 and hr[47] == 60
    assert g.mask[:, c].nonzero()[0].tolist() == [0, 1, 5]
    assert g.delta[:7, c].tolist() == [0, 0, 1, 2, 3, 0, 1]
    assert g.values[2, IDX["Urine"]] == 50  # urine is summed within the hour
    assert g.values[46, IDX["Temp"]] == normal_values()[IDX["Temp"]]  # normal before first observation
    assert g.delta[46, IDX["Temp"]] == 47 and g.values[47, IDX["Temp"]] == 38.5
    assert g.values[47, IDX["GCS"]] == 9  # 48:00 closes the last hour
    assert (g.values[:, IDX["Lactate"]] == normal_values()[IDX["Lactate"]]).all() and g.mask[:, IDX["Lactate"]].sum() == 0


def test_normaliser_is_fitted_on_training_grids_only(record_writer, tmp_path):
    train = [to_grid(read_record(record_writer(20 + i, [("01:00", "HR", hr)]))) for i, hr in enumerate((60, 80))]
    val = to_grid(read_record(record_writer(30, [("01:00", "HR", 120)])))
    norm = Normaliser.fit(train)
    assert norm.mean[IDX["HR"]] == pytest.approx(70) and norm.std[IDX["HR"]] == pytest.approx(10)
    assert Normaliser.fit(train + [val]).mean[IDX["HR"]] != norm.mean[IDX["HR"]]
    again = Normaliser.from_json(norm.to_json(tmp_path / "norm.json"))
    assert np.array_equal(again.features(val), norm.features(val))
    x = norm.features(val)
    assert x.shape == (N_HOURS, norm.n_features) and x.dtype == np.float32
    assert x[1, IDX["HR"]] == pytest.approx((120 - 70) / 10)


def test_stratified_split_keeps_outcome_rate_and_is_disjoint():
    ids = list(range(1000))
    labels = [int(i % 7 == 0) for i in ids]
    s = stratified_split(ids, labels)
    assert sorted(s["train"] + s["val"] + s["test"]) == ids
    rate = {k: np.mean([labels[i] for i in v]) for k, v in s.items()}
    assert max(rate.values()) - min(rate.values()) < 0.01
    assert s == stratified_split(ids, labels)


def test_real_records_parse_onto_the_grid(physionet_dir):
    records, errors = read_dir(physionet_dir / "set-a", [132539, 132540, 132541, 132543, 132545])
    assert errors == [] and len(records) == 5
    g = to_grid(records[0])
    assert g.record_id == 132539 and g.descriptors["Age"] == 54
    assert g.mask[:, IDX["HR"]].sum() > 20  # hourly heart rate
    assert np.isfinite(g.values).all()
