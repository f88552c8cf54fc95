"""AppTest for the X-ray review page (the app's default page), driven by widget key."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cxr_model.imaging.explain import default_cam
from cxr_model.imaging.layout import REASON_BLANK
from cxr_model.imaging.predict import predict_source
from dashboard.text import unescape
from tests.conftest import _need
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


def viewer_args(at) -> dict:
    """The arguments the page gave the client-side viewer on its last run (one viewer per page)."""
    (viewer,) = at.get("component_instance")
    return json.loads(viewer.proto.json_args)


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
    args = viewer_args(at)  # the viewer: side by side, the image and the map by URL, not in the message
    # the default map is the bundle's best-localising one (explain.json), not a fixed GradCAM
    assert args["side_by_side"] and args["method"] == default_cam(cxr_bundle)[0] and args["cam_url"] and args["image_url"]
    assert (args["width"], args["height"]) == Image.open(f).size  # the 8-bit film at its own size (< 2048 px)
    assert at.image.len == 0  # no server-drawn copies of the film any more
    assert any(c.value.startswith("Out-of-distribution check: distance") for c in at.caption)
    assert not any("Outside what this model was made for" in e.value for e in at.error)  # a real radiograph
    image_url = args["image_url"]

    at.selectbox(key="cam_method").set_value("EigenCAM").run()
    assert not at.exception
    args = viewer_args(at)
    assert args["method"] == "EigenCAM" and args["image_url"] == image_url  # same film: same URL, fetched once
    at.slider(key="cam_opacity").set_value(0.8).run()
    at.radio(key="cam_view").set_value("Overlay only").run()
    assert not at.exception
    assert viewer_args(at)["opacity"] == 0.8 and not viewer_args(at)["side_by_side"]
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
    assert list(table.columns[:3]) == ["yours", "decision", "study"] and table["yours"].iloc[0]
    assert list(at.dataframe[0].value["status"]) == ["flagged"]  # the worklist: a disagreement is flagged


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
    # the bad file lost nothing else; no raw None: a dash where there is no probability
    assert studies["P(pneumonia)"].tolist()[0] == "—" and re.fullmatch(r"0\.\d{3}|1\.000", studies["P(pneumonia)"][1])
    # the OOD check on both sides: the radiograph is "ok", the generated noise is flagged and gets no call
    assert list(studies["OOD"]) == ["", "ok", REASON_BLANK.split(" (")[0]]  # the scope rule names why, in short
    assert list(studies["status"]) == ["failed", "new", "out of scope"]
    assert studies["model's call"][1] in ("PNEUMONIA", "NORMAL") and studies["P(pneumonia)"][2] == "—"

    at.toggle(key="show_phi").set_value(True).run()
    assert not at.exception
    assert unescape(at.error[0].value).startswith("Study 1 (sha ") and "broken.png: " in unescape(at.error[0].value)
    assert set(at.dataframe[0].value["file"]) == {"broken.png", f.name, "noise.png"}
    at.selectbox(key="xray_study").set_value(1).run()  # readable studies: the radiograph, then the noise
    assert not at.exception
    # out of scope: no call, no probability, no decision form; the reason, the distance and the threshold instead
    assert any(re.search(r"Outside what this model was made for:\*\* blank image .*distance \d+\.\d, threshold \d+\.\d",
                         unescape(e.value)) for e in at.error)
    assert not at.metric and "P(pneumonia)" not in {m.label for m in at.metric}
    assert "review_decision" not in [r.key for r in at.radio] and "review_save" not in [b.key for b in at.button]
    assert viewer_args(at)["cam_url"] is None  # the film alone, no map


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
    args = viewer_args(at)  # window/level in the browser on the real values: presets in modality units
    assert args["presets"] and all(w >= 1 for _, _, w in args["presets"])
    assert args["window"] == {"center": args["presets"][0][1], "width": args["presets"][0][2]}
    header = next(df.value for df in at.dataframe if "field" in df.value.columns)
    row = header[header["field"] == "PatientID"].iloc[0]
    assert row["value"].startswith("•") and row["PHI"]
    ds = pydicom.dcmread(d, stop_before_pixels=True)
    shown = unescape(next(c.value for c in at.caption if c.value.startswith("modality")))
    assert f"modality {ds.Modality}" in shown and f"view {ds.ViewPosition}" in shown
    assert f"age {ds.PatientAge}" not in shown and "age •" in shown  # the banner masks age and sex
    at.toggle(key="show_phi").set_value(True).run()
    header = next(df.value for df in at.dataframe if "field" in df.value.columns)
    assert not header[header["field"] == "PatientID"].iloc[0]["value"].startswith("•")
    shown = unescape(next(c.value for c in at.caption if c.value.startswith("modality")))
    assert f"age {ds.PatientAge}" in shown and f"sex {ds.PatientSex}" in shown


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
    # file names stay hidden until the PHI toggle; the generated window0.dcm may be out of scope (its own message)
    errors = [unescape(e.value) for e in at.error if "Outside what this model" not in e.value]
    assert len(errors) == 1 and re.fullmatch(r"Study 1 \(sha [0-9a-f]{6}\): DICOM RescaleSlope 'abc' is not a number", errors[0])
    at.toggle(key="show_phi").set_value(True).run()
    assert [unescape(e.value) for e in at.error][0].endswith("bad_slope.dcm: DICOM RescaleSlope 'abc' is not a number")
    studies = at.dataframe[0].value
    assert (studies.set_index("file")["status"] != "failed").to_dict() == {
        "bad_slope.dcm": False, "window0.dcm": True, f.name: True}
    at.selectbox(key="xray_study").set_value(0).run()  # window0.dcm, the first readable study
    assert not at.exception
    assert "File window (header)" not in [name for name, _, _ in viewer_args(at)["presets"]]
    shown = {m.label for m in at.metric} | {"out of scope" for e in at.error if "Outside what this model" in e.value}
    assert shown & {"P(pneumonia)", "out of scope"}  # read and judged: a call, or no call because out of scope


def test_method_survives_replacing_the_file_and_roads_caption_quotes_its_score(app, kermany_dir):
    at = app
    a, b = sorted((kermany_dir / "val" / "PNEUMONIA").glob("*.jpeg"))[:2]
    at.file_uploader(key="xray_upload").upload(a.name, a.read_bytes(), "image/jpeg")
    at.run()
    at.selectbox(key="cam_method").set_value("HiResCAM").run()
    at.file_uploader(key="xray_upload").set_value(None).run()  # the file removed: no select on this run
    at.file_uploader(key="xray_upload").upload(b.name, b.read_bytes(), "image/jpeg")
    at.run()
    assert not at.exception
    assert at.selectbox(key="cam_method").value == "HiResCAM" and viewer_args(at)["method"] == "HiResCAM"
    assert "Map faithfulness (ROAD)" not in {m.label for m in at.metric}  # ROAD is on demand, off the path
    at.button(key="road_run").click().run()
    assert not at.exception
    score = {m.label: m.value for m in at.metric}["Map faithfulness (ROAD)"]
    assert any(unescape(c.value).startswith(f"ROAD {score}:") for c in at.caption)  # caption and metric agree
    assert len(at.metric[2].value) <= len("PNEUMONIA")  # the call is a bare label: nothing to cut off


def test_viewer_shortcuts_step_through_studies_and_choose_the_decision(app, kermany_dir):
    at = app
    files = sorted((kermany_dir / "val" / "PNEUMONIA").glob("*.jpeg"))[:2]
    for f in files:
        at.file_uploader(key="xray_upload").upload(f.name, f.read_bytes(), "image/jpeg")
    at.run()
    first = viewer_args(at)["study_key"]
    at.session_state["xray_viewer"] = {"action": "next", "n": 1}  # what the viewer sends for the N key
    at.run()
    assert not at.exception and at.selectbox(key="xray_study").value == 1
    assert viewer_args(at)["study_key"] != first
    at.session_state["xray_viewer"] = {"action": "disagree", "n": 2}
    at.run()
    assert at.radio(key="review_decision").value == "disagree"
    at.run()  # the same press is applied once, not on every rerun
    assert at.selectbox(key="xray_study").value == 1
    at.button(key="study_prev").click().run()  # the page's own button (shortcut P)
    assert at.selectbox(key="xray_study").value == 0 and viewer_args(at)["study_key"] == first


def test_scorecam_runs_in_the_background_with_progress_and_can_be_cancelled(app, kermany_dir, cxr_bundle):
    from dashboard import jobs

    at = app
    f = sorted((kermany_dir / "val" / "NORMAL").glob("*.jpeg"))[0]
    at.file_uploader(key="xray_upload").upload(f.name, f.read_bytes(), "image/jpeg")
    at.run()
    at.selectbox(key="cam_method").set_value("ScoreCAM").run()
    assert not at.exception
    assert viewer_args(at)["method"] == default_cam(cxr_bundle)[0]  # the fast default map meanwhile, named as what it is
    assert "P(pneumonia)" in {m.label for m in at.metric}  # the page is complete while ScoreCAM runs
    (bar,) = at.get("progress")
    assert "ScoreCAM running in the background" in bar.proto.text
    at.button(key="slow_cancel").click().run()
    job = jobs.get((hashlib.sha256(f.read_bytes()).hexdigest(), "ScoreCAM"))
    # the worker ran ScoreCAM's forward passes and stopped at the next one: cancelled, not failed
    assert isinstance(job.future.exception(timeout=120), jobs.Cancelled)
    assert job.cancelled and job.done < job.total
    at.run()
    assert any("ScoreCAM was cancelled" in unescape(i.value) for i in at.info)
    assert "slow_restart" in [b.key for b in at.button] and viewer_args(at)["method"] == default_cam(cxr_bundle)[0]


@pytest.fixture
def site_profile(tmp_path, monkeypatch, kermany_dir, cxr_bundle):
    """A real site profile in a temporary CXR_SITE_DIR: BN statistics of the 16 official val films."""
    from cxr_model.imaging.adapt import adapt_batchnorm, save_site_profile
    from cxr_model.imaging.data import kermany_items, load_sources

    d = tmp_path / "sites"
    monkeypatch.setenv("CXR_SITE_DIR", str(d))
    save_site_profile(adapt_batchnorm(cxr_bundle, load_sources(kermany_items(kermany_dir, "val"))[0]), d, "ward-3")
    return d


def test_site_profile_from_the_sidebar_is_used_and_stated(site_profile, app, kermany_dir, cxr_bundle):
    from cxr_model.imaging.site import NO_SITE, apply_site

    at = app
    select = at.selectbox(key="site_profile")
    assert select.value is None and select.format_func(select.value) == NO_SITE and "ward-3" in select.options
    adapted = apply_site(cxr_bundle, "ward-3", site_profile)
    # a film whose call the profile moves by more than the page's 3 decimals (saturated ones round alike)
    f = next(f for f in sorted((kermany_dir / "val").glob("*/*.jpeg"))
             if abs(predict_source(adapted, f).probability - predict_source(cxr_bundle, f).probability) > 0.01)
    at.file_uploader(key="xray_upload").upload(f.name, f.read_bytes(), "image/jpeg")
    at.run()
    bundled = float({m.label: m.value for m in at.metric}["P(pneumonia)"])
    assert not any("Site profile" in i.value for i in at.info)
    at.selectbox(key="site_profile").set_value("ward-3").run()
    assert not at.exception
    assert any("Site profile 'ward-3'" in unescape(i.value) and "16 local films" in unescape(i.value) for i in at.info)
    p = float({m.label: m.value for m in at.metric}["P(pneumonia)"])
    assert p == pytest.approx(predict_source(adapted, f).probability, abs=6e-4)
    assert p != bundled
    assert any("with site profile `ward-3`" in c.value for c in at.caption)


def test_dicom_age_sets_the_population_and_a_lateral_view_gets_no_call(app, dicom_dir, tmp_path):
    import io

    at = app
    d = dicom_dir / "rsna" / "0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm"  # PA, PatientAge 51
    ds = pydicom.dcmread(d)
    ds.ViewPosition = "LL"
    lateral = io.BytesIO()
    ds.save_as(lateral)
    up = at.file_uploader(key="xray_upload")
    up.upload(d.name, d.read_bytes(), "application/dicom")
    up.upload("lateral.dcm", lateral.getvalue(), "application/dicom")
    at.run()
    assert not at.exception
    assert any("Operating point for: adult (from the DICOM's PatientAge)" in c.value for c in at.caption)
    assert list(at.dataframe[0].value["OOD"]) == ["ok", "lateral view"]
    at.selectbox(key="xray_study").set_value(1).run()
    assert not at.exception
    assert any("Outside what this model was made for" in unescape(e.value) and "ViewPosition LL" in unescape(e.value)
               for e in at.error)
    assert not at.metric and "review_save" not in [b.key for b in at.button]


def test_a_decision_records_the_site_profile_and_a_profile_made_again_is_used_at_once(
        site_profile, app, kermany_dir, cxr_bundle):
    """The saved row names the profile (and its content) whose call was shown, and re-adapting the
    profile under the same name changes the call on the next run (caches key on the content)."""
    import torch

    from cxr_model import review_store
    from cxr_model.imaging.adapt import adapt_batchnorm, save_site_profile
    from cxr_model.imaging.data import kermany_items, load_sources
    from cxr_model.imaging.shift import SHIFTS
    from cxr_model.imaging.site import apply_site, profile_sha256

    at = app
    # the same name will be adapted again on other films (darker and blurred): another model. The film is one whose
    # call the two profiles set apart by more than the page's 3 decimals (saturated ones round alike)
    src = load_sources(kermany_items(kermany_dir, "val"))[0]
    shifted = torch.stack([SHIFTS["blur (sigma 1.5)"](SHIFTS["darker (exposure -30 %)"](s)) for s in src])
    again = adapt_batchnorm(cxr_bundle, shifted, name="ward-3")
    first = apply_site(cxr_bundle, "ward-3", site_profile)
    f = next(f for f in sorted((kermany_dir / "val").glob("*/*.jpeg"))
             if abs(predict_source(first, f).probability - predict_source(again, f).probability) > 0.01)
    at.selectbox(key="site_profile").set_value("ward-3")
    at.file_uploader(key="xray_upload").upload(f.name, f.read_bytes(), "image/jpeg")
    at.run()
    assert not at.exception
    # the model id is shown verbatim, name@version in one code span (a downscaled screenshot read '@' as '0')
    assert any(f"model `{cxr_bundle.model_id}` with site profile `ward-3`" in c.value for c in at.caption)
    first_sha = profile_sha256(site_profile, "ward-3")
    p1 = float({m.label: m.value for m in at.metric}["P(pneumonia)"])

    def save(decision):
        at.radio(key="review_decision").set_value(decision)
        at.button(key="review_save").click().run()
        assert not at.exception and any("Decision saved" in s.value for s in at.success)

    save("agree")
    save_site_profile(again, site_profile, "ward-3")
    second_sha = profile_sha256(site_profile, "ward-3")
    assert second_sha != first_sha
    at.run()
    assert not at.exception
    p2 = float({m.label: m.value for m in at.metric}["P(pneumonia)"])
    assert p2 == pytest.approx(predict_source(apply_site(cxr_bundle, "ward-3", site_profile), f).probability, abs=6e-4)
    assert p2 != p1
    save("uncertain")
    at.selectbox(key="site_profile").set_value(None).run()
    save("disagree")

    stored = review_store.list_decisions()  # newest first
    assert list(stored["decision"]) == ["disagree", "uncertain", "agree"]
    assert list(stored["site_profile"]) == ["", "ward-3", "ward-3"]
    assert list(stored["site_profile_sha256"].iloc[1:]) == [second_sha, first_sha]
    table = at.dataframe[-1].value
    assert list(table["site profile"]) == [review_store.NO_PROFILE, f"ward-3 (profile sha256 {second_sha[:12]})",
                                           f"ward-3 (profile sha256 {first_sha[:12]})"]


def test_an_adult_film_gets_the_adult_branchs_call_and_map(app, settings, cxr_bundle):
    """An adult NIH film (judged adult by the image) is read at 448 px by the bundle's adult branch: the page
    shows the CLI's number, says so, and opens on the branch's own default map, not the children's."""
    from cxr_model.imaging.data import nih_items

    assert cxr_bundle.branch is not None, f"{cxr_bundle.model_id} has no adult branch"
    f = next(it.path for it in nih_items(_need(settings.nih_adult_dir, "NIH adult films"))
             if predict_source(cxr_bundle, it.path).population == "adult")
    expected = predict_source(cxr_bundle, f)
    at = app
    at.file_uploader(key="xray_upload").upload(f.name, f.read_bytes(), "image/jpeg")
    at.run()
    assert not at.exception
    assert float({m.label: m.value for m in at.metric}["P(pneumonia)"]) == pytest.approx(expected.probability, abs=6e-4)
    assert any("read at 448 px by the model's adult branch" in c.value for c in at.caption)
    assert any("where radiologists drew opacities" in c.value for c in at.caption)  # the branch's head has a spatial prior (2.3.0 on)
    cv = cxr_bundle.meta["adult_branch"]["cross_validation"]["pointing"]  # the map's measured localisation, beside it
    assert any("adult branch): on boxed adult pneumonia films" in c.value and f"cross-validated {cv['hits']}/{cv['n']}" in c.value
               for c in at.caption)
    assert viewer_args(at)["method"] == default_cam(cxr_bundle.branch)[0] != default_cam(cxr_bundle)[0]
    assert at.selectbox(key="cam_method").value == default_cam(cxr_bundle.branch)[0]
