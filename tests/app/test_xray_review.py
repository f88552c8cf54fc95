"""AppTest for the X-ray review page (the app's default page), driven by widget key."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cxr_model.imaging.predict import predict_source
from dashboard.text import unescape
from tests.imaging.synthetic import png_bytes

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("CXR_STATE_DIR", str(tmp_path))  # the default SQLite store goes here
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception
    return at


def _radiograph(kermany_dir: Path) -> Path:
    return sorted((kermany_dir / "val" / "PNEUMONIA").glob("*.jpeg"))[0]


def test_upload_predict_switch_method_move_opacity_save_decision(app, kermany_dir, settings, cxr_bundle):
    at = app
    f = _radiograph(kermany_dir)
    at.file_uploader(key="xray_upload").upload(f.name, f.read_bytes(), "image/jpeg")
    at.run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    p = float(metrics["P(pneumonia)"])
    assert p == pytest.approx(predict_source(cxr_bundle, f).probability, abs=6e-4)  # the CLI's number, shown to 3 dp
    assert metrics["Model's call"].startswith(("PNEUMONIA", "NORMAL"))
    assert any("Decision support, not a diagnosis" in c.value for c in at.caption)
    assert len(at.image) >= 2  # side by side: radiograph + overlay
    assert any(c.value.startswith("Out-of-distribution check: distance") for c in at.caption)
    assert not any("unlike the radiographs" in w.value for w in at.warning)  # a real radiograph

    at.selectbox(key="cam_method").set_value("EigenCAM").run()
    assert not at.exception
    assert any("EigenCAM overlay" in c for img in at.image for c in [str(img.proto)])
    at.slider(key="cam_opacity").set_value(0.8).run()
    at.radio(key="cam_view").set_value("Overlay only").run()
    assert not at.exception
    assert len(at.image) == 1
    assert float({m.label: m.value for m in at.metric}["P(pneumonia)"]) == p  # same study, same number

    at.radio(key="review_decision").set_value("disagree")
    at.text_area(key="review_note").input("opacity is an overlying marker")
    at.button(key="review_save").click().run()
    assert not at.exception
    assert any("Decision saved" in s.value for s in at.success)
    table = at.dataframe[-1].value
    assert list(table["decision"]) == ["disagree"]
    assert table["reviewer"].iloc[0] == "local"  # no sign-in configured: the single local user
    assert table["cam_method"].iloc[0] == "EigenCAM"
    assert abs(table["probability"].iloc[0] - p) < 1e-3
    # the row that was stored, field by field, against the file and the bundle
    meta = json.loads((settings.cxr_model_dir / "metadata.json").read_text())
    row = table.iloc[0]
    assert row["image_sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
    assert row["threshold"] == pytest.approx(meta["threshold"]["value"], abs=1e-12)
    assert (row["model_id"], row["model_version"]) == (meta["name"], str(meta["version"]))
    assert row["note"] == "opacity is an overlying marker"


def test_bad_file_shows_its_error_and_good_file_still_predicts(app, kermany_dir):
    at = app
    f = _radiograph(kermany_dir)
    up = at.file_uploader(key="xray_upload")
    up.upload("broken.png", b"\x89PNG\r\n\x1a\n this is not a png", "image/png")
    up.upload(f.name, f.read_bytes(), "image/jpeg")
    up.upload("noise.png", png_bytes(np.random.default_rng(5).random((300, 400))), "image/png")
    at.run()
    assert not at.exception
    errors = [unescape(e.value) for e in at.error]
    assert len(errors) == 1 and re.fullmatch(r"Study 1 \(sha [0-9a-f]{6}\): .+", errors[0])
    assert "broken.png" not in errors[0]  # file names are identifying: hidden by default
    assert "P(pneumonia)" in {m.label for m in at.metric}
    studies = at.dataframe[0].value
    assert "file" not in studies.columns
    assert list(studies["study"].str[:7]) == ["Study 1", "Study 2", "Study 3"]
    assert studies["P(pneumonia)"].notna().tolist() == [False, True, True]  # the bad file lost nothing else
    # the OOD check on both sides: the radiograph is "ok", the generated noise is flagged
    assert list(studies["OOD"]) == ["", "ok", "unlike training"]

    at.toggle(key="show_phi").set_value(True).run()
    assert not at.exception
    assert unescape(at.error[0].value).startswith("Study 1 (sha ") and "broken.png: " in unescape(at.error[0].value)
    assert set(at.dataframe[0].value["file"]) == {"broken.png", f.name, "noise.png"}
    at.selectbox(key="xray_study").set_value(1).run()  # readable studies: the radiograph, then the noise
    assert not at.exception
    assert any("unlike the radiographs" in unescape(w.value) for w in at.warning)
    assert {m.label: m.value for m in at.metric}["Model's call"].endswith("(unreliable)")


def test_save_without_a_decision_is_refused_with_a_message(app, kermany_dir):
    at = app
    f = _radiograph(kermany_dir)
    at.file_uploader(key="xray_upload").upload(f.name, f.read_bytes(), "image/jpeg")
    at.run()
    at.button(key="review_save").click().run()
    assert not at.exception
    assert any("Choose agree, disagree or uncertain" in e.value for e in at.error)


def test_dicom_shows_window_controls_and_masks_phi(app, dicom_dir):
    at = app
    d = sorted((dicom_dir / "rsna").glob("*.dcm"))[0]
    at.file_uploader(key="xray_upload").upload(d.name, d.read_bytes(), "application/dicom")
    at.run()
    assert not at.exception
    assert at.selectbox(key="dicom_window").value in at.selectbox(key="dicom_window").options
    header = next(df.value for df in at.dataframe if "field" in df.value.columns)
    row = header[header["field"] == "PatientID"].iloc[0]
    assert row["value"].startswith("•") and row["PHI"]
    at.toggle(key="show_phi").set_value(True).run()
    header = next(df.value for df in at.dataframe if "field" in df.value.columns)
    assert not header[header["field"] == "PatientID"].iloc[0]["value"].startswith("•")


def test_hostile_dicoms_give_one_error_each_and_the_rest_of_the_upload_works(app, kermany_dir):
    """A DICOM with a non-numeric RescaleSlope is one plain error; one whose window is unusable
    (width 0, centre ``x\\y``) is read with the full range and its DICOM view still works."""
    from tests.imaging.synthetic import dicom_with

    at = app
    f = _radiograph(kermany_dir)
    up = at.file_uploader(key="xray_upload")
    up.upload("bad_slope.dcm", dicom_with({"RescaleSlope": b"abc"}, rescale=(1.0, 0.0)), "application/dicom")
    up.upload("window0.dcm", dicom_with({"WindowCenter": b"x\\y", "WindowWidth": b"0"}), "application/dicom")
    up.upload(f.name, f.read_bytes(), "image/jpeg")
    at.run()
    assert not at.exception
    errors = [unescape(e.value) for e in at.error]  # file names stay hidden until the PHI toggle
    assert len(errors) == 1 and re.fullmatch(r"Study 1 \(sha [0-9a-f]{6}\): DICOM RescaleSlope 'abc' is not a number", errors[0])
    at.toggle(key="show_phi").set_value(True).run()
    assert [unescape(e.value) for e in at.error][0].endswith("bad_slope.dcm: DICOM RescaleSlope 'abc' is not a number")
    studies = at.dataframe[0].value
    assert studies.set_index("file")["P(pneumonia)"].notna().to_dict() == {
        "bad_slope.dcm": False, "window0.dcm": True, f.name: True}
    at.selectbox(key="xray_study").set_value(0).run()  # window0.dcm, the first readable study
    assert not at.exception
    assert "File window (header)" not in at.selectbox(key="dicom_window").options
    assert "P(pneumonia)" in {m.label for m in at.metric}
