"""One study end to end (bytes -> probability, CAM, OOD) and its self-contained HTML report."""
from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from cxr_model.imaging.dicom_header import Window, apply_window
from cxr_model.imaging.explain import overlay
from cxr_model.imaging.ood import load_ood
from cxr_model.imaging.predict import predict_source
from cxr_model.imaging.report.study import render_study_report
from cxr_model.imaging.review import DicomView, analyse_study


@pytest.fixture(scope="module")
def dicom(dicom_dir):
    return sorted((dicom_dir / "rsna").glob("*.dcm"))[0]


def test_study_probability_equals_the_predict_path_for_a_real_dicom(cxr_bundle, dicom):
    data = dicom.read_bytes()
    s = analyse_study(cxr_bundle, data, dicom.name, "GradCAM", load_ood(cxr_bundle))
    ref = predict_source(cxr_bundle, data, dicom.name)
    assert s.error is None and s.is_dicom
    assert s.probability == pytest.approx(ref.probability, abs=1e-5) and s.label == ref.label
    v = cxr_bundle.scorer(s.population)  # an adult (DICOM age): the adult branch's view, at its own size
    assert s.population == "adult" and (s.branch is not None) == (v is not cxr_bundle)
    assert s.cam.shape == (v.img_size, v.img_size)
    assert s.display.shape == (1024, 1024) and s.display.dtype == np.uint8  # under the display cap: full size
    assert s.ood_flag == (s.ood_score > s.ood_threshold)


def test_progress_is_counted_per_forward_and_the_default_map_uses_the_bundles_layer(cxr_bundle, dicom):
    """``on_forward`` is the progress hook (ScoreCAM in the background): it must reach the CAM as the hook,
    not as its target layer; the bundle's default method is computed on the layer chosen with it."""
    from cxr_model.imaging.explain import default_cam, explain
    from cxr_model.imaging.transforms import load_tensor

    data = dicom.read_bytes()
    calls = []
    s = analyse_study(cxr_bundle, data, dicom.name, "GradCAM", on_forward=lambda: calls.append(1))
    assert s.error is None and len(calls) == 1  # one forward pass, one tick
    v = cxr_bundle.scorer(s.population)  # the view that scores this film (an adult: the adult branch)
    method, layer = default_cam(v)
    d = analyse_study(cxr_bundle, data, dicom.name)  # no method named: that view's default pair
    assert d.method == method and d.layer == layer
    x = load_tensor(data, v.img_size, dicom.name).unsqueeze(0)
    assert np.allclose(d.cam, explain(v, x, method, layer).cam, atol=1e-5)
    if layer not in (None, "layer4"):  # the chosen layer's map differs from the last block's
        assert not np.allclose(d.cam, explain(v, x, method, None).cam, atol=1e-3)


def test_unreadable_file_is_an_error_value(cxr_bundle):
    s = analyse_study(cxr_bundle, b"GIF89a not really", "scan.gif")
    assert s.error.startswith("scan.gif:") and s.probability is None and len(s.sha256) == 64
    assert "scan.gif" not in s.problem and s.error.endswith(s.problem)  # the problem without the file name


def test_report_is_self_contained_html_without_phi(cxr_bundle, dicom):
    import pydicom

    data = dicom.read_bytes()
    s = analyse_study(cxr_bundle, data, dicom.name, "GradCAM")
    html = render_study_report(s, s.display, overlay(s.display, s.cam, 0.4), cxr_bundle.meta, None,
                               {"decision": "agree", "reviewer": "Dr <b>X</b>", "created_at": "2026-01-01T00:00:00+00:00",
                                "cam_method": "GradCAM", "note": "fine"})
    imgs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(imgs) == 2 and all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in imgs)
    assert "http://" not in html and "https://" not in html  # nothing fetched from elsewhere
    assert f"{s.probability:.3f}" in html and f"{s.threshold:.3f}" in html
    assert "Decision support, not a diagnosis" in html and "Dr &lt;b&gt;X&lt;/b&gt;" in html
    ds = pydicom.dcmread(dicom, stop_before_pixels=True)
    for phi in (str(ds.PatientID), str(ds.PatientName)):
        assert phi not in html
    assert np.isfinite(s.probability)


# ---------------------------------------------------------------------------- memory per study
@pytest.fixture(scope="module")
def png_39mp():
    """A generated 6,240 x 6,250 (39 MP) 8-bit radiograph-like PNG, as in the memory report."""
    from tests.imaging.synthetic import phantom, png_bytes

    return png_bytes(phantom(6250, 6240))


def test_a_39_megapixel_study_keeps_a_bounded_uint8_display_and_the_model_input(cxr_bundle, png_39mp):
    import pickle

    from cxr_model.imaging.review import DISPLAY_MAX_SIDE

    s = analyse_study(cxr_bundle, png_39mp, "big.png", "GradCAM")
    assert s.error is None
    assert s.display.dtype == np.uint8 and max(s.display.shape) == DISPLAY_MAX_SIDE
    assert s.display.shape == (DISPLAY_MAX_SIDE, round(6240 * DISPLAY_MAX_SIDE / 6250))  # aspect kept
    size = cxr_bundle.scorer(s.population).img_size  # the input of the view that scored it
    assert tuple(s.x.shape) == (1, 1, size, size)
    bound = DISPLAY_MAX_SIDE ** 2 + 2 * 4 * size ** 2  # display + CAM + model input
    assert s.nbytes <= bound
    # st.cache_data keeps the pickled value: that is what each cached study costs
    assert len(pickle.dumps(s)) <= bound + 64 * 1024
    assert len(pickle.dumps(s)) < 6250 * 6240 * 4 / 25  # the float image was 156 MB (an adult's CAM and input: 448 px)


def test_cached_model_input_is_the_one_preprocessing_path(cxr_bundle, dicom):
    # ROAD (study_faithfulness) runs on study.x instead of decoding the file again: it must be the
    # same tensor as load_tensor gives for the file
    import torch

    from cxr_model.imaging.transforms import load_tensor

    data = dicom.read_bytes()
    s = analyse_study(cxr_bundle, data, dicom.name, "GradCAM")
    assert torch.equal(s.x, load_tensor(data, cxr_bundle.scorer(s.population).img_size, dicom.name).unsqueeze(0))


# ----------------------------------------------------------------------------- upload admission
def test_six_39_megapixel_files_the_sixth_is_refused_by_the_upload_cap(png_39mp):
    from cxr_model.imaging.review import UPLOAD_MAX_PIXELS, admit_uploads, declared_pixels

    n = declared_pixels(png_39mp)
    assert n == 6250 * 6240
    verdicts = admit_uploads([n] * 6)
    assert verdicts[:5] == [None] * 5 and 5 * n <= UPLOAD_MAX_PIXELS < 6 * n
    assert "not analysed" in verdicts[5] and "MP limit per upload" in verdicts[5]


def test_upload_cap_skips_unknown_and_oversized_files_and_admits_later_small_ones():
    from cxr_model.imaging.formats import MAX_PIXELS
    from cxr_model.imaging.review import admit_uploads

    # unknown size (the reader reports it), over the per-file cap (the reader refuses it): no budget
    # used; then 90 fits, 20 does not (110 > 100), 10 still does (100)
    verdicts = admit_uploads([None, MAX_PIXELS + 1, 90, 20, 10], budget=100)
    assert [v is None for v in verdicts] == [True, True, True, False, True]
    assert verdicts[3].startswith("not analysed")


def test_declared_pixels_reads_headers_only(dicom):
    import pydicom

    from cxr_model.imaging.review import declared_pixels

    ds = pydicom.dcmread(dicom, stop_before_pixels=True)
    assert declared_pixels(dicom.read_bytes()) == int(ds.Rows) * int(ds.Columns)
    assert declared_pixels(b"not an image") is None
    assert declared_pixels(b"\x89PNG\r\n\x1a\n truncated") is None


# ------------------------------------------------------------------------------- burned-in text
def test_burned_in_annotation_keeps_the_images_out_of_the_report(cxr_bundle, dicom):
    import io

    import pydicom

    ds = pydicom.dcmread(dicom)
    ds.BurnedInAnnotation = "YES"
    buf = io.BytesIO()
    ds.save_as(buf)
    s = analyse_study(cxr_bundle, buf.getvalue(), dicom.name, "GradCAM")
    assert s.burned_in
    html = render_study_report(s, s.display, overlay(s.display, s.cam, 0.4), cxr_bundle.meta)
    assert "data:image/png" not in html and "burned-in annotation" in html
    assert not analyse_study(cxr_bundle, dicom.read_bytes(), dicom.name, "GradCAM").burned_in


def test_dicom_view_offers_the_slider_ranges_and_windows_like_the_header_module():
    raw = np.linspace(-1000.0, 3000.0, 64 * 64, dtype=np.float32).reshape(64, 64)
    view = DicomView(raw, {}, True, [], [], False)
    assert view.level_range == (-3000.0, 5000.0) and view.width_range == (1.0, 8000.0)
    assert (view.clamp_width(0.2), view.clamp_width(400.0), view.clamp_width(1e6)) == (1.0, 400.0, 8000.0)
    w = Window(500.0, 1000.0)
    assert np.array_equal(view.windowed(w), apply_window(raw, w, True))
    flat = DicomView(np.full((4, 4), 7.0, np.float32), {}, False, [], [], False)
    assert flat.level_range == (6.5, 7.5) and flat.width_range == (1.0, 2.0)  # a constant image still gets sliders
