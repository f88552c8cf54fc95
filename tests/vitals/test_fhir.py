"""Stays as FHIR R4 Bundles: real set-A records round-trip exactly; units, times and gaps are handled honestly."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import datetime

import numpy as np
import pytest

from cxr_model.vitals.fhir import EXPORT, LOINC, LOINC_SYSTEM, parse_fhir, record_to_fhir
from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.reader import RecordError, channel_names, read_record
from cxr_model.vitals.uploads import parse_upload, read_uploads

START = datetime(2031, 3, 30, 22, 15)  # hour 0 of the generated bundles (a stay that crosses midnight)


def _obs(code, value, unit, when="2030-01-01T08:30:00Z", status="final", **extra):
    q = {"value": value, "system": "http://unitsofmeasure.org", "code": unit} if value is not None else None
    res = {"resourceType": "Observation", "status": status, "effectiveDateTime": when,
           "code": {"coding": [{"system": LOINC_SYSTEM, "code": code}]}, **extra}
    if q:
        res["valueQuantity"] = q
    return res


def _bundle(*observations, patient=None, start="2030-01-01T08:00:00Z"):
    pat = {"resourceType": "Patient", "id": "4711", "gender": "female", "birthDate": "1950-06-15"}
    res = [patient or pat] + ([{"resourceType": "Encounter", "period": {"start": start}}] if start else [])
    return json.dumps({"resourceType": "Bundle", "type": "collection",
                       "entry": [{"resource": r} for r in res + list(observations)]})


def _events(rec):
    return {(m, p): v for m, p, v in rec.events}


def test_every_channel_but_ventilation_and_magnesium_has_a_code():
    assert set(channel_names()) - set(EXPORT) == {"MechVent", "Mg"}
    assert {ch for ch, _ in LOINC.values()} <= set(channel_names()) | {"Height"}


def test_real_records_come_back_from_fhir_reading_for_reading(physionet_dir):
    paths = sorted((physionet_dir / "set-a").glob("*.txt"))[:60]
    for path in paths:
        rec = read_record(path)
        back = parse_fhir(json.dumps(record_to_fhir(rec, START)), path.stem + ".json")
        assert back.record_id == rec.record_id
        assert back.events == sorted((e for e in rec.events if e[1] in EXPORT), key=lambda e: e[0]), path.name
        for name, v in rec.descriptors.items():  # the ICU type has no FHIR coding here: unknown
            got = back.descriptors[name]
            assert math.isnan(got) if name == "ICUType" or math.isnan(v) else got == v, (path.name, name)
        cols = [i for i, c in enumerate(channel_names()) if c in EXPORT]
        np.testing.assert_array_equal(to_grid(back).mask[:, cols], to_grid(rec).mask[:, cols])
        np.testing.assert_array_equal(to_grid(back).values[:, cols], to_grid(rec).values[:, cols])
    assert sum(bool(read_record(p).events) for p in paths) == len(paths)


def test_units_are_converted_to_what_the_model_was_trained_on():
    panel = {"resourceType": "Observation", "status": "final", "effectiveDateTime": "2030-01-01T09:00:00Z",
             "code": {"coding": [{"system": LOINC_SYSTEM, "code": "85354-9"}]},  # blood-pressure panel
             "component": [_obs("8480-6", 121, "mm[Hg]"), _obs("8462-4", 64, "mm[Hg]")]}
    rec = parse_fhir(_bundle(
        _obs("8310-5", 98.6, "[degF]"), _obs("14682-9", 176.84, "umol/L"), _obs("3150-0", 40, "%"),
        _obs("2345-7", 5.0, "mmol/L"), _obs("2703-7", 12.0, "kPa"), _obs("8867-4", 97, "bpm"),
        _obs("59408-5", 93, "%"), _obs("29463-7", 176.0, "[lb_av]", when="2030-01-01T08:00:00Z"),
        _obs("8302-2", 1.62, "m", when="2029-12-30T10:00:00Z"), panel), "4711.json")
    ev = _events(rec)
    assert ev[(30, "Temp")] == pytest.approx(37.0)
    assert ev[(30, "Creatinine")] == pytest.approx(2.0)
    assert ev[(30, "FiO2")] == pytest.approx(0.40)
    assert ev[(30, "Glucose")] == pytest.approx(90.08)
    assert ev[(30, "PaO2")] == pytest.approx(90.0, abs=0.01)
    assert ev[(30, "HR")] == 97 and ev[(30, "SaO2")] == 93  # pulse oximetry into the SaO2 channel
    assert ev[(60, "NISysABP")] == 121 and ev[(60, "NIDiasABP")] == 64
    assert rec.descriptors["Weight"] == pytest.approx(79.83, abs=0.01)  # at hour 0: the admission weight
    assert rec.descriptors["Height"] == pytest.approx(162.0)  # measured before the stay: still the height
    assert rec.descriptors["Age"] == 79 and rec.descriptors["Gender"] == 0 and math.isnan(rec.descriptors["ICUType"])
    assert rec.n_dropped == 0 and rec.record_id == 4711


def test_what_cannot_be_read_is_counted_and_never_guessed():
    rec = parse_fhir(_bundle(
        _obs("8867-4", 80, "/min"),
        _obs("2160-0", 1.1, "mmol/L"),  # creatinine in a unit this code is not read in
        _obs("8310-5", None, None, valueString="warm"),  # no number
        _obs("1234-5", 3.0, "mg"),  # a code without a channel
        _obs("9279-1", 22, "/min", status="entered-in-error"),
        _obs("9279-1", 18, "/min", when="2030-01-01"),  # a date without a time of day
        _obs("9279-1", 16, "/min", when="2030-01-01T07:00:00Z"),  # before hour 0
        _obs("8867-4", 90, "/min", when="2030-01-03T09:00:00Z"),  # after 48 h: not modelled, as in the files
        _obs("8867-4", 400, "/min")), "4711.json")  # implausible: the files' own cleaning rules
    assert rec.events == [(30, "HR", 80.0)]
    reasons = rec.drop_reasons
    assert reasons["Creatinine: unit 'mmol/L' not accepted (LOINC 2160-0: mg/dL, umol/L)"] == 1
    assert reasons["Temp: no numeric value"] == 1
    assert reasons["code '1234-5' is not read"] == 1
    assert reasons["observation entered-in-error"] == 1
    assert reasons["observation without a date and time of day"] == 1
    assert reasons["RespRate: before the stay's hour 0"] == 1
    assert reasons["HR: unknown (-1), non-finite or implausible value"] == 1
    assert rec.n_dropped == 7 == sum(reasons.values())
    assert rec.n_after_window == 1  # past hour 48: not modelled, as in the files, and counted as they count it


@pytest.mark.parametrize("start, when, minutes, next_day", [
    ("2030-01-01T08:00:00Z", "2030-01-01T09:30:00Z", 90, 1530),
    ("2030-01-01T08:00:00Z", "2030-01-01T10:45:59+02:00", 45, 1530),  # offsets are compared in UTC
    (None, "2030-01-01T09:30:00Z", 0, 1440),  # no Encounter: the first reading is hour 0
])
def test_hour_zero_is_the_encounter_start_or_else_the_first_reading(start, when, minutes, next_day):
    rec = parse_fhir(_bundle(_obs("8867-4", 80, "/min", when=when), _obs("8867-4", 82, "/min", when="2030-01-02T09:30:00Z"),
                             start=start), "4711.json")
    assert rec.events == [(minutes, "HR", 80.0), (next_day, "HR", 82.0)]


@pytest.mark.parametrize("data, name, message", [
    (b"{\"resourceType\": \"Bundle\",\n  oops}", "a.json", "a.json:2: not JSON"),
    (json.dumps({"resourceType": "Patient", "id": "1"}), "a.json", "a.json: not a FHIR Bundle (resourceType 'Patient')"),
    (json.dumps([1, 2]), "a.json", "a.json: not a FHIR Bundle (resourceType 'list')"),
    (_bundle(_obs("8867-4", 80, "/min"), patient={"resourceType": "Patient", "id": "abc"}), "stay.json",
     "stay.json: no numeric patient number"),
    (_bundle(_obs("1234-5", 80, "/min"), start=None), "4711.json", "4711.json: no Observation with a LOINC code"),
    (json.dumps({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "1"}}] * 2}),
     "a.json", "a.json: holds 2 Patient and 0 Encounter resources"),
])
def test_a_bad_bundle_is_refused_with_its_file_named(data, name, message):
    with pytest.raises(RecordError) as exc:
        parse_fhir(data, name)
    assert str(exc.value).startswith(message)


def test_uploads_mix_both_formats_and_name_each_bad_file(physionet_dir):
    paths = sorted((physionet_dir / "set-a").glob("*.txt"))[:3]
    as_json = json.dumps(record_to_fhir(read_record(paths[2]), START)).encode()
    files = [(paths[0].name, paths[0].read_bytes()), (paths[1].name, paths[1].read_bytes()),
             (paths[2].stem + ".json", as_json), ("scan.json", b"\x89PNG\r\n"), ("123.json", as_json)]
    records, errors = read_uploads(files)
    assert [r.record_id for r in records] == [int(p.stem) for p in paths]
    assert len(errors) == 2
    assert errors[0].startswith("scan.json: not a UTF-8 text file (byte 0 is 0x89); expected a FHIR R4 JSON Bundle")
    assert errors[1] == f"123.json: holds RecordID {paths[2].stem}, not 123 as its name says"
    twice = read_uploads([(paths[2].name, paths[2].read_bytes()), (paths[2].stem + ".json", as_json)])
    assert twice[0] == [] and "the same RecordID" in twice[1][0]
    assert parse_upload("X.JSON", as_json).record_id == int(paths[2].stem)  # the suffix in any case


def test_the_news2_command_reads_a_fhir_bundle_as_it_reads_the_file(physionet_dir, tmp_path):
    path = next(p for p in sorted((physionet_dir / "set-a").glob("*.txt"))
                if not any(e[1] == "MechVent" for e in read_record(p).events))  # ventilation has no code here
    bundle = tmp_path / f"{path.stem}.json"
    bundle.write_text(json.dumps(record_to_fhir(read_record(path), START)))
    outs = [subprocess.run([sys.executable, "-m", "cxr_model", "vitals", "news2", str(f), "--hour", "30", "--json"],
                           capture_output=True, text=True, timeout=120) for f in (path, bundle)]
    assert [o.returncode for o in outs] == [0, 0], outs[1].stderr
    assert json.loads(outs[0].stdout) == json.loads(outs[1].stdout)


def _paths(node, path=()):
    """Every place in a JSON tree, as a tuple of keys and indices."""
    yield path
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        yield from _paths(v, path + (k,))


def test_any_field_of_the_wrong_type_gives_a_record_or_a_named_error_never_a_crash():
    panel = {"resourceType": "Observation", "status": "final", "effectivePeriod": {"start": "2030-01-01T09:00:00Z"},
             "code": {"coding": [{"system": LOINC_SYSTEM, "code": "85354-9"}]},
             "component": [_obs("8480-6", 121, "mm[Hg]")]}
    good = json.loads(_bundle(_obs("8867-4", 80, "/min"), panel,
                              patient={"resourceType": "Patient", "id": "7", "identifier": [{"value": "7"}],
                                       "gender": "male", "birthDate": "1950-01-01"}))
    paths = list(_paths(good))
    assert len(paths) > 50
    outcomes = {"record": 0, "error": 0}
    for path in paths[1:]:
        for wrong in (None, 1, 2.5, True, "x", [], {}, [1], {"a": 1}):
            doc = json.loads(json.dumps(good))
            node = doc
            for k in path[:-1]:
                node = node[k]
            node[path[-1]] = wrong
            try:
                parse_fhir(json.dumps(doc), "7.json")
                outcomes["record"] += 1
            except RecordError as exc:
                assert str(exc).startswith("7.json"), exc
                outcomes["error"] += 1
    assert outcomes["record"] > 0 and outcomes["error"] > 0


def test_a_bundle_that_is_not_utf8_is_named_with_its_byte_as_the_uploads_name_it():
    with pytest.raises(RecordError, match=r"^x\.json: not a UTF-8 text file \(byte 7 is 0xe9\); expected a FHIR R4 JSON "
                                          r"Bundle$"):
        parse_fhir(b'{"a": "\xe9"}', "x.json")  # Latin-1, as an older export writes it


def test_the_readings_not_used_are_listed_per_file_by_reason():
    from cxr_model.vitals.uploads import unused_readings

    data = _bundle(_obs("8867-4", 80, "/min"), _obs("19123-9", 0.9, "mmol/L"), _obs("19123-9", 0.8, "mmol/L"),
                   _obs("8867-4", 0, "/min"), _obs("2160-0", 1.1, "mmol/L"),
                   _obs("8867-4", 85, "/min", when="2030-01-03T08:00:00Z"),  # hour 48: still read
                   _obs("8867-4", 90, "/min", when="2030-01-03T08:01:00Z"))  # a minute later: not
    records, errors = read_uploads([("4711.json", data.encode()), ("4712.json", _bundle(
        _obs("8867-4", 80, "/min"), patient={"resourceType": "Patient", "id": "4712"}).encode())])
    assert errors == [] and len(records) == 2
    assert (2880, "HR", 85.0) in records[0].events
    assert unused_readings(records) == [
        "4711.json: 5 readings not used: code '19123-9' is not read (2); "
        "Creatinine: unit 'mmol/L' not accepted (LOINC 2160-0: mg/dL, umol/L) (1); "
        "HR: unknown (-1), non-finite or implausible value (1); after hour 48 (the model reads the first 48 h) (1)"]


@pytest.mark.parametrize("patient, name, record_id", [
    ({"id": "800", "identifier": [{"system": "urn:mrn", "value": "MRN-A"}, {"value": "900"}]}, "x.json", 900),
    ({"id": "800", "identifier": [{"value": "MRN-A"}]}, "x.json", 800),  # no all-digit identifier: the id
    ({"id": "abc"}, "700.json", 700),  # nor an all-digit id: the file's name
    ({"id": "0", "identifier": [{"value": "0"}]}, "701.json", 701),  # 0 is no record id
])
def test_the_record_id_is_the_patients_number_in_a_stated_order(patient, name, record_id):
    rec = parse_fhir(_bundle(_obs("8867-4", 80, "/min"), patient={"resourceType": "Patient", **patient}), name)
    assert rec.record_id == record_id


@pytest.mark.parametrize("birth, gender, age, sex", [
    ("1950-01-01", "male", 80, 1.0),  # hour 0 is 2030-01-01: a birthday that day counts
    ("1950-01-02", "female", 79, 0.0),  # the next day: not yet
    ("1950", "other", math.nan, math.nan),  # a year alone, a sex the challenge did not code: unknown, not guessed
    (None, None, math.nan, math.nan),
])
def test_age_and_sex_come_from_the_patient_or_stay_unknown(birth, gender, age, sex):
    patient = {"resourceType": "Patient", "id": "5", **({"birthDate": birth} if birth else {}),
               **({"gender": gender} if gender else {})}
    d = parse_fhir(_bundle(_obs("8867-4", 80, "/min"), patient=patient), "5.json").descriptors
    assert (math.isnan(d["Age"]) if math.isnan(age) else d["Age"] == age)
    assert (math.isnan(d["Gender"]) if math.isnan(sex) else d["Gender"] == sex)


def test_time_units_and_panels_as_other_exports_write_them():
    instant = _obs("8867-4", 80, "/min", when=None, effectiveInstant="2030-01-01T09:00:00Z")
    period = _obs("9279-1", 18, "/min", when=None, effectivePeriod={"start": "2030-01-01T10:00:00Z"})
    display_unit = _obs("8480-6", 0, "x")
    display_unit["valueQuantity"] = {"value": 118, "unit": "mmHg"}  # a display unit, no UCUM code
    panel = {"resourceType": "Observation", "status": "final", "effectiveDateTime": "2030-01-01T11:00:00Z",
             "code": {"text": "Blood pressure", "coding": [{"system": LOINC_SYSTEM, "code": "85354-9"}]},
             "component": [_obs("8480-6", 12, "kPa"), _obs("8462-4", 70, "mm[Hg]")]}  # a bad part, then a good one
    text_only = _obs("8867-4", 80, "/min")
    text_only["code"] = {"text": "Magnesium"}
    rec = parse_fhir(_bundle(instant, period, display_unit, panel, text_only), "4711.json")
    assert rec.events == [(30, "NISysABP", 118.0), (60, "HR", 80.0), (120, "RespRate", 18.0), (180, "NIDiasABP", 70.0)]
    assert rec.drop_reasons == {"NISysABP: unit 'kPa' not accepted (LOINC 8480-6: mm[Hg])": 1,
                                "code 'Magnesium' is not read": 1}


def test_two_encounters_are_two_stays_and_are_refused():
    enc = {"resourceType": "Encounter", "period": {"start": "2030-01-05T08:00:00Z"}}
    with pytest.raises(RecordError, match="^4711.json: holds 1 Patient and 2 Encounter resources"):
        parse_fhir(_bundle(_obs("8867-4", 80, "/min"), enc), "4711.json")


def test_without_an_encounter_a_height_from_an_earlier_visit_does_not_move_hour_zero():
    rec = parse_fhir(_bundle(_obs("8302-2", 170, "cm", when="2029-06-01T10:00:00Z"), _obs("8867-4", 80, "/min"),
                             _obs("8867-4", 84, "/min", when="2030-01-01T09:45:00Z"), start=None), "4711.json")
    assert rec.events == [(0, "HR", 80.0), (75, "HR", 84.0)] and rec.descriptors["Height"] == 170


def test_the_written_bundle_is_what_fhir_r4_requires(physionet_dir):
    rec = read_record(sorted((physionet_dir / "set-a").glob("*.txt"))[0])
    bundle = record_to_fhir(rec, datetime(2032, 2, 29, 6, 0))  # a leap day: the birth date must still exist
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    res = [e["resource"] for e in bundle["entry"]]
    patient = res[0]
    assert patient["resourceType"] == "Patient" and patient["id"] == str(rec.record_id)
    assert patient["identifier"] == [{"value": str(rec.record_id)}]
    assert parse_fhir(json.dumps(bundle), "x.json").descriptors["Age"] == rec.descriptors["Age"]
    assert res[1]["resourceType"] == "Encounter" and res[1]["subject"] == {"reference": f"Patient/{rec.record_id}"}
    for obs in res[2:]:
        assert obs["resourceType"] == "Observation" and obs["status"] == "final"
        assert obs["subject"] == {"reference": f"Patient/{rec.record_id}"}
        assert obs["valueQuantity"]["system"] == "http://unitsofmeasure.org"
        assert obs["code"]["coding"][0]["system"] == LOINC_SYSTEM
