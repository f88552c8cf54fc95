"""One study end to end (bytes -> probability, CAM, OOD) and its self-contained HTML report."""
from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from cxr_model.imaging.explain import overlay
from cxr_model.imaging.ood import load_ood
from cxr_model.imaging.predict import predict_source
from cxr_model.imaging.review import analyse_study
from cxr_model.imaging.study_report import render_study_report


@pytest.fixture(scope="module")
def dicom(dicom_dir):
    return sorted((dicom_dir / "rsna").glob("*.dcm"))[0]


def test_study_probability_equals_the_predict_path_for_a_real_dicom(cxr_bundle, dicom):
    data = dicom.read_bytes()
    s = analyse_study(cxr_bundle, data, dicom.name, "GradCAM", load_ood(cxr_bundle))
    ref = predict_source(cxr_bundle, data, dicom.name)
    assert s.error is None and s.is_dicom
    assert s.probability == pytest.approx(ref.probability, abs=1e-5) and s.label == ref.label
    assert s.cam.shape == (cxr_bundle.img_size, cxr_bundle.img_size)
    assert s.gray.shape == (1024, 1024)
    assert s.ood_flag == (s.ood_score > s.ood_threshold)


def test_unreadable_file_is_an_error_value(cxr_bundle):
    s = analyse_study(cxr_bundle, b"GIF89a not really", "scan.gif")
    assert s.error.startswith("scan.gif:") and s.probability is None and len(s.sha256) == 64


def test_report_is_self_contained_html_without_phi(cxr_bundle, dicom):
    import pydicom

    data = dicom.read_bytes()
    s = analyse_study(cxr_bundle, data, dicom.name, "GradCAM")
    html = render_study_report(s, s.gray, overlay(s.gray, s.cam, 0.4), cxr_bundle.meta, None,
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
