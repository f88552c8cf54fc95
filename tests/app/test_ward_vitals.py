"""The ward vitals page through app.py: real data, the ward clock, a patient, alerts and actions, the demo ward."""
from __future__ import annotations

import json
from datetime import datetime

from streamlit.testing.v1 import AppTest

from cxr_model import audit
from cxr_model.vitals.demo import DEMO_LABEL
from cxr_model.vitals.fhir import record_to_fhir
from cxr_model.vitals.reader import read_record
from cxr_model.vitals.stay_review import describe_stay
from dashboard.text import plain

RAW_NAMES = {"air_or_oxygen", "respiration_rate", "systolic_bp", "spo2", "None", "nan", "descriptors", "RespRate",
             "NIDiasABP", "HR", "SaO2", "SysABP", "NISysABP", "MechVent"}


def _ward() -> AppTest:
    at = AppTest.from_file("../../app.py", default_timeout=90)
    at.run()
    at.switch_page("pages/ward_vitals.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _cells(df) -> set[str]:
    return {str(v) for v in df.to_numpy().ravel()} | {str(c) for c in df.columns}


def test_real_ward_replays_and_shows_a_patient_with_human_labels(physionet_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CXR_DB_URL", f"sqlite:///{tmp_path / 'reviews.sqlite'}")
    at = _ward()
    assert at.radio(key="ward_source").value.startswith("PhysioNet 2012")
    assert any("Decision support, not a diagnosis" in c.value for c in at.caption)
    at.slider(key="ward_hour").set_value(48).run()
    assert not at.exception
    assert _metric(at, "Patients alerting now").endswith("of 30 admitted")
    ward = next(df.value for df in at.dataframe if "Bed" in df.value.columns)
    assert list(ward.columns) == ["Bed", "Record", "Hour of stay", "NEWS2", "NEWS2 response", "Model risk %",
                                  "Risk change in 4 h", "Since last vitals", "Alerting now"]  # no bare "points"
    patient = at.selectbox(key="ward_patient")
    patient.set_value(patient.options[3]).run()
    assert not at.exception
    assert at.subheader[-1].value.startswith(patient.options[3]) and "of this stay" in at.subheader[-1].value
    rid = int(patient.options[3].split("record ")[1])
    desc = read_record(physionet_dir / "set-a" / f"{rid}.txt").descriptors
    assert describe_stay(desc) in [c.value for c in at.caption] and " years · " in describe_stay(desc)
    icu = describe_stay(desc).split(" · ")[0]  # the bundled held-out run's row for this patient's ICU type
    assert any(c.value.startswith(f"On held-out {icu} stays the model's 48 h AUROC was ") for c in at.caption)
    assert any(m.label.startswith("Model risk (LSTM") and m.value.endswith("%") for m in at.metric)
    news2 = next(t.value for t in at.table if "Parameter" in t.value.columns)
    assert len(news2) == 7 and list(news2.columns) == ["Parameter", "Value", "Points", "Measured"]
    for df in [*at.dataframe, *at.table]:
        assert not (_cells(df.value) & RAW_NAMES), _cells(df.value) & RAW_NAMES
    at.radio(key=f"ward_spo2_scale_{rid}").set_value(2).run()  # scale 2 for this patient only
    assert not at.exception and at.session_state["ward_spo2_scales"] == {rid: 2}
    at.toggle(key="ward_autoplay").set_value(True).run()
    assert not at.exception
    assert at.slider(key="ward_hour").value == 49  # auto-play advanced the ward clock


def test_an_alert_is_acknowledged_by_the_reviewer_and_sorts_last(physionet_dir, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'reviews.sqlite'}"
    monkeypatch.setenv("CXR_DB_URL", url)
    at = _ward()  # sign-in not configured: the single local user acts
    at.slider(key="ward_hour").set_value(48).run()
    first = at.selectbox(key="ward_alert").value
    at.button(key="ward_acknowledge").click().run()
    assert not at.exception and not at.error
    table = next(d.value for d in at.dataframe if "Status" in d.value.columns)
    assert table["Status"].iloc[-1] == "acknowledged" and table["Last action by"].iloc[-1] == "local"
    assert (table["Status"].iloc[:-1] == "new").all()
    trail = audit.list_events(url, action="alert.acknowledge")
    assert len(trail) == 1 and trail["actor"].iloc[0] == "local"
    assert trail["subject"].iloc[0].startswith("record ") and first.split(" · ")[0] in table["Bed"].iloc[-1]


def test_demo_ward_when_the_data_folder_is_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("CXR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CXR_DB_URL", f"sqlite:///{tmp_path / 'reviews.sqlite'}")
    at = _ward()
    assert at.radio(key="ward_source").options == ["Simulated demo ward", "Records you upload"]
    assert any(DEMO_LABEL in w.value for w in at.warning)
    assert any("not found" in i.value for i in at.info)
    at.slider(key="ward_hour").set_value(40).run()
    assert not at.exception
    assert _metric(at, "Patients alerting now").endswith("of 12 admitted")
    assert "of this stay" in at.subheader[-1].value


def test_uploaded_records_make_the_ward_and_a_bad_file_is_named_beside_them(physionet_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CXR_DB_URL", f"sqlite:///{tmp_path / 'reviews.sqlite'}")
    at = _ward()
    at.radio(key="ward_source").set_value("Records you upload").run()
    assert not at.exception and any(i.value.startswith("Upload one or more records") for i in at.info)
    assert not at.dataframe  # nothing to show until a record is uploaded
    paths = sorted((physionet_dir / "set-a").glob("*.txt"))[:3]
    files = [(p.name, p.read_bytes(), "text/plain") for p in paths]
    files.append(("notes.txt", b"Time;Parameter;Value\n", "text/plain"))
    at.file_uploader(key="ward_upload").set_value(files).run()
    assert not at.exception
    # the file's name is user input: shown escaped, never as markdown
    problem = "notes.txt:1: header is not 'Time,Parameter,Value'"
    assert [w.value for w in at.warning] == ["Record skipped: " + plain(problem)]
    at.slider(key="ward_hour").set_value(60).run()  # every patient admitted, whatever their admission hour
    assert not at.exception
    assert _metric(at, "Patients alerting now").endswith("of 3 admitted")
    ward = next(df.value for df in at.dataframe if "Bed" in df.value.columns)
    assert sorted(ward["Record"]) == sorted(p.stem for p in paths)
    assert "of this stay" in at.subheader[-1].value
    assert any("This ward: 3 uploaded records." in c.value for c in at.caption)
    assert any("has not been validated" in c.value for c in at.caption)
    assert not at.expander  # every reading of these files was used
    # a stay as a FHIR Bundle with a code the model has no channel for: scored, the unread reading named
    bundle = record_to_fhir(read_record(paths[2]), datetime(2031, 1, 1, 8, 0))
    bundle["entry"].append({"resource": {"resourceType": "Observation", "effectiveDateTime": "2031-01-01T09:00:00Z",
                                         "code": {"coding": [{"system": "http://loinc.org", "code": "19123-9"}]},
                                         "valueQuantity": {"value": 0.9, "code": "mmol/L"}}})
    fhir = (f"{paths[2].stem}.json", json.dumps(bundle).encode(), "application/json")
    at.file_uploader(key="ward_upload").set_value(files[:2] + [fhir]).run()
    assert not at.exception and not at.warning
    assert _metric(at, "Patients alerting now").endswith("of 3 admitted")
    assert at.expander[0].label == "Readings not used in 1 of the uploaded files"
    assert at.expander[0].text[0].value == f"{paths[2].stem}.json: 1 reading not used: code '19123-9' is not read (1)"
    # a folder of bad files: five named one by one, the rest listed once, the good stays still scored
    junk = [(f"junk{i:02d}.txt", b"Time;Parameter;Value\n", "text/plain") for i in range(25)]
    at.file_uploader(key="ward_upload").set_value(files[:2] + junk).run()
    assert not at.exception
    assert len(at.warning) == 5 and at.warning[0].value.startswith("Record skipped: junk00")
    more = at.expander[0]
    assert more.label == "20 more records skipped"
    assert more.text[0].value.splitlines() == [f"junk{i:02d}.txt:1: header is not 'Time,Parameter,Value'" for i in range(5, 25)]
    assert _metric(at, "Patients alerting now").endswith("of 2 admitted")
