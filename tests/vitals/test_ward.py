"""The ward: trends draw only what was measured, per-patient clocks, time since the last vitals."""
from __future__ import annotations

import numpy as np

from cxr_model.vitals.bundle import load_vitals_bundle
from cxr_model.vitals.demo import demo_records
from cxr_model.vitals.news2 import observation_set
from cxr_model.vitals.reader import channel_names, read_dir, read_record
from cxr_model.vitals.alerts import RANK
from cxr_model.vitals.ward import build_ward, h_min, has_real_ward, real_ward_records, snapshot


def test_sbp_trend_is_the_news2_input_at_measured_hours_and_nan_elsewhere(settings, physionet_dir):
    bundle = load_vitals_bundle(settings.vitals_model_dir)
    records, errors = read_dir(physionet_dir / "set-a", [132539, 132540])
    assert errors == []
    names = channel_names()
    for p in build_ward(records, bundle):
        step = 40
        values, observed = p.trend("SBP", step)
        assert values.shape == observed.shape == (step + 1,)
        either = (p.grid.mask[: step + 1, names.index("SysABP")] > 0) | (p.grid.mask[: step + 1, names.index("NISysABP")] > 0)
        assert np.array_equal(observed, either) and either.any()
        assert np.isnan(values[~observed]).all()
        assert values[observed].tolist() == [observation_set(p.grid, t)["systolic_bp"].value
                                             for t in np.flatnonzero(observed)]
        hr, hr_seen = p.trend("HR", step)
        assert np.array_equal(hr_seen, p.grid.mask[: step + 1, names.index("HR")] > 0)
        assert np.isnan(hr[~hr_seen]).all()  # carried-forward values are never returned as measurements
        assert np.array_equal(hr[hr_seen], p.grid.values[: step + 1, names.index("HR")][hr_seen])


def test_a_never_measured_channel_has_no_trend_points(settings, record_writer):
    bundle = load_vitals_bundle(settings.vitals_model_dir)
    rec = read_record(record_writer(31, [("00:30", "HR", 80), ("05:10", "HR", 90)]))
    (p,) = build_ward([rec], bundle)
    values, observed = p.trend("RespRate", 10)
    assert not observed.any() and np.isnan(values).all()


def test_time_since_last_vitals_in_hours_and_minutes(settings, record_writer):
    bundle = load_vitals_bundle(settings.vitals_model_dir)
    rec = read_record(record_writer(32, [("00:30", "HR", 80), ("05:10", "HR", 90), ("05:20", "Glucose", 100)]))
    (p,) = build_ward([rec], bundle)
    assert p.minutes_since_vitals(5) == 360 - 310  # end of hour 6 minus 05:10 (glucose is not a vital sign)
    assert h_min(p.minutes_since_vitals(7)) == "2 h 50 min"
    assert p.minutes_since_vitals(0) == 30 and h_min(None) == "no vitals yet"
    assert (h_min(0), h_min(59), h_min(60), h_min(125)) == ("0 h 00 min", "0 h 59 min", "1 h 00 min", "2 h 05 min")
    (q,) = build_ward([read_record(record_writer(35, [("01:00", "RespRate", 18)]))], bundle)
    assert q.minutes_since_vitals(0) == 0  # measured at the very end of the first hour: seen in it


def test_a_patient_is_on_the_ward_from_the_hour_after_admission_to_the_end_of_the_record(settings):
    bundle = load_vitals_bundle(settings.vitals_model_dir)
    patients = build_ward(demo_records(6), bundle)
    assert [p.bed for p in patients] == [f"Bed {i:02d}" for i in range(1, 7)]
    for p in patients:
        a = p.admitted_at
        assert p.step_at(a) is None and p.step_at(a + 1) == 0 and p.step_at(a + 48) == 47 and p.step_at(a + 49) == 47
        assert p.first_alert == next((t for t in range(48) if p.risk[t] >= bundle.threshold), None)
        for alert in p.alerts(47, bundle.threshold):
            assert (alert.record_id, alert.bed) == (p.record_id, p.bed)
    assert any(p.first_alert is not None for p in patients) and any(p.alerts(47, bundle.threshold) for p in patients)


def test_each_patient_keeps_their_own_clock(settings):
    patients = build_ward(demo_records(6), load_vitals_bundle(settings.vitals_model_dir))
    offsets = [p.admitted_at for p in patients]
    assert len(set(offsets)) == len(offsets)
    rows = snapshot(patients, ward_hour=12, threshold=0.99)
    admitted = [p for p in patients if p.admitted_at < 12]
    assert {r["bed"] for r in rows} == {p.bed for p in admitted}
    assert {r["bed"]: r["hour_of_stay"] for r in rows} == {p.bed: 12 - p.admitted_at for p in admitted}
    assert patients[0].step_at(200) == 47  # the record ends at 48 h


def test_the_real_ward_needs_set_a_and_the_bundles_split(settings, physionet_dir, tmp_path):
    assert has_real_ward(physionet_dir, settings.vitals_model_dir)
    assert not has_real_ward(physionet_dir, tmp_path)  # no splits.csv
    assert not has_real_ward(tmp_path, settings.vitals_model_dir)  # no set-a/


def test_spo2_scale_2_rescores_one_patient_without_touching_the_shared_one(settings, record_writer):
    bundle = load_vitals_bundle(settings.vitals_model_dir)
    rows = [("00:30", "SaO2", 97), ("00:30", "FiO2", 0.5), ("00:30", "HR", 80)]
    (p,) = build_ward([read_record(record_writer(33, rows))], bundle)
    q = p.with_spo2_scale(2)
    assert p.news2.breakdown(0)["spo2"] == 0 and q.news2.breakdown(0)["spo2"] == 3  # >= 97 on oxygen
    assert p.spo2_scale == 1 and q.spo2_scale == 2 and p.with_spo2_scale(1) is p


def test_the_ward_list_ranks_patients_by_where_they_are_now(settings, physionet_dir):
    # the page's real ward (30 held-out stays, the bundle's threshold) at every ward hour: a patient whose
    # NEWS2 alert was raised at "high" but who is at "medium" now ranks with the other medium patients
    bundle = load_vitals_bundle(settings.vitals_model_dir)
    records, errors = real_ward_records(physionet_dir, bundle)
    assert errors == [] and len(records) == 30
    patients = {p.bed: p for p in build_ward(records, bundle)}
    stepped_down, seen_alerting = 0, set()
    for hour in range(1, 60, 3):
        rows = snapshot(list(patients.values()), hour, bundle.threshold)
        for r in rows:
            p = patients[r["bed"]]
            step = r["hour_of_stay"] - 1
            model_alerting = "Model" in r["alerting"]
            assert model_alerting == (p.risk[step] >= bundle.threshold)
            assert r["severity"] == max(RANK[r["news2_level"]], 2 if model_alerting else 0)
            raised = [a.severity for a in p.alerts(step, bundle.threshold) if a.active and a.source == "NEWS2"]
            stepped_down += bool(raised) and raised[0] > RANK[r["news2_level"]]
            sources = sorted({a.source for a in p.alerts(step, bundle.threshold) if a.active})
            assert r["alerting"] == (" + ".join(sources) or "no")
            seen_alerting.add(r["alerting"])
            assert (r["record_id"], r["news2"], r["news2_incomplete"]) == (
                p.record_id, int(p.news2.total[step]), bool(p.news2.incomplete[step]))
            assert r["risk"] == float(p.risk[step]) and r["trend"] == float(p.risk[step] - p.risk[max(0, step - 4)])
            assert r["since_vitals"] == h_min(p.minutes_since_vitals(step))
        keys = [(-r["severity"], -r["risk"]) for r in rows]
        assert keys == sorted(keys)
    assert stepped_down > 0  # the ward has such patients, so the rule is exercised
    assert {"no", "NEWS2", "Model + NEWS2"} <= seen_alerting
