"""The ward vitals page through app.py: real data, the time cursor, a patient, auto-play, the demo ward."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from cxr_model.vitals.demo import DEMO_LABEL


def _ward(monkeypatch=None) -> AppTest:
    at = AppTest.from_file("../../app.py", default_timeout=90)
    at.run()
    at.switch_page("pages/ward_vitals.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_real_ward_replays_and_shows_a_patient(physionet_dir):
    at = _ward()
    assert at.radio(key="ward_source").value.startswith("PhysioNet 2012")
    assert any("Decision support, not a diagnosis" in c.value for c in at.caption)
    assert _metric(at, "Patients alerting now").endswith("of 30")
    at.slider(key="ward_hour").set_value(48).run()
    assert not at.exception
    patient = at.selectbox(key="ward_patient")
    patient.set_value(patient.options[3]).run()
    assert not at.exception
    assert at.subheader[0].value.startswith(f"{patient.options[3].split(' · ')[0]} · record") and "hour 48" in at.subheader[0].value
    assert _metric(at, "LSTM risk").endswith("%")
    at.toggle(key="ward_autoplay").set_value(True).run()
    assert not at.exception
    assert at.slider(key="ward_hour").value == 1  # auto-play advanced the cursor (48 wraps to 1)


def test_demo_ward_when_the_data_folder_is_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("CXR_DATA_DIR", str(tmp_path))
    at = _ward()
    assert at.radio(key="ward_source").options == ["Simulated demo ward"]
    assert any(DEMO_LABEL in w.value for w in at.warning)
    assert any("not found" in i.value for i in at.info)
    assert _metric(at, "Patients alerting now").endswith("of 12")
    at.slider(key="ward_hour").set_value(40).run()
    assert not at.exception
    assert "hour 40" in at.subheader[0].value
