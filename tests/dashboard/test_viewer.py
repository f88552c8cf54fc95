"""The viewer's pixels: a DICOM's real values survive the trip to the browser; the CAM is bytes."""
from __future__ import annotations

import numpy as np

from cxr_model.imaging.review import dicom_view
from dashboard.viewer import cam_bytes, dicom_pixels, display_pixels


def _decode(p) -> np.ndarray:
    """What viewer.js computes: ``stored * scale + offset`` from little-endian uint16."""
    return np.frombuffer(p.data, dtype="<u2").reshape(p.height, p.width) * p.scale + p.offset


def test_dicom_values_reach_the_viewer_unchanged_with_the_files_presets(dicom_dir):
    d = sorted((dicom_dir / "rsna").glob("*.dcm"))[0]
    view = dicom_view(d.read_bytes(), d.name)
    p = dicom_pixels(view.raw, view.presets, view.monochrome1)
    assert max(p.width, p.height) <= 2048 and len(p.data) == 2 * p.width * p.height
    assert np.abs(_decode(p) - view.raw).max() <= p.scale / 2 + 1e-6  # integer values: exact
    assert [name for name, _, _ in p.presets] == list(view.presets)
    assert (p.window.center, p.window.width) == (p.presets[0][1], p.presets[0][2])
    assert p.invert == view.monochrome1


def test_wide_and_negative_values_are_scaled_into_uint16_within_half_a_step():
    raw = np.linspace(-3000.0, 140_000.0, 64 * 48, dtype=np.float32).reshape(48, 64)
    p = dicom_pixels(raw, {"Full range": type("W", (), {"center": 0.0, "width": 1.0})()}, False)
    assert p.scale > 1 and p.offset == -3000.0
    assert np.abs(_decode(p) - raw).max() <= p.scale / 2 + 1e-3


def test_display_image_and_cam_bytes():
    img = np.arange(30 * 20, dtype=np.uint16).reshape(20, 30) % 256
    p = display_pixels(img.astype(np.uint8))
    assert (p.width, p.height) == (30, 20) and np.array_equal(_decode(p), img)
    cam = np.array([[0.0, 0.5], [1.0, 2.0]], dtype=np.float32)
    assert list(cam_bytes(cam)) == [0, 128, 255, 255]
