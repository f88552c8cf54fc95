"""The pixel contract and bad inputs: every failure names the file and the problem."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from cxr_model.imaging.formats import ImageReadError
from cxr_model.imaging.io import read_image
from tests.imaging.synthetic import dicom_bytes, huge_png, jpeg_bytes, phantom, png_bytes


def _err(source, name) -> str:
    with pytest.raises(ImageReadError) as info:
        read_image(source, name)
    assert str(info.value).startswith(f"{name}: ")
    return info.value.problem


def test_zero_byte_file_is_refused_by_name(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"^empty\.png: file is empty"):
        read_image(p)


def test_truncated_jpeg_is_refused():
    data = jpeg_bytes(phantom())
    problem = _err(data[: len(data) // 2], "cut.jpg")
    assert "truncated" in problem or "corrupt" in problem


def test_text_file_named_png_is_refused():
    problem = _err(b"patient list\nnot an image\n" * 10, "notes.png")
    assert "not a PNG, JPEG or DICOM" in problem


def test_20000_pixel_square_png_is_refused_before_decoding(tmp_path):
    p = huge_png(tmp_path / "bomb.png")
    assert p.stat().st_size < 2_000_000  # a small file that would decode to 400 MP
    problem = _err(p, "bomb.png")
    assert "20000x20000" in problem or "too large" in problem


def test_missing_file_is_refused(tmp_path):
    assert "not found" in _err(tmp_path / "nope.png", "nope.png")


@pytest.mark.parametrize("mode", ["L", "RGB", "I;16"])
def test_png_modes_read_to_same_grey(mode):
    arr = phantom()
    out = read_image(png_bytes(arr, mode), f"x_{mode}.png")
    assert out.dtype == np.float32 and out.shape == arr.shape
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose(out, arr, atol=1 / 255 + 1e-6)


def test_16bit_png_keeps_precision():
    arr = np.linspace(0, 1, 256 * 256, dtype=np.float32).reshape(256, 256)
    out = read_image(png_bytes(arr, "I;16"), "ramp16.png")
    # 16-bit steps are far finer than 8-bit ones: many more distinct values survive.
    assert len(np.unique(out)) > 20000


def test_rgba_alpha_is_flattened_onto_black():
    arr = phantom()
    out = read_image(png_bytes(arr, "RGBA"), "alpha.png")
    assert out[: arr.shape[0] // 2].max() == 0.0
    np.testing.assert_allclose(out[arr.shape[0] // 2 :], arr[arr.shape[0] // 2 :], atol=1 / 255 + 1e-6)


def test_dicom_without_pixel_data_is_refused():
    assert _err(dicom_bytes(None), "nopix.dcm") == "DICOM has no pixel data"


def test_monochrome1_dicom_is_inverted_to_bone_bright():
    stored = (phantom() * 4000).astype(np.uint16)
    mono2 = read_image(dicom_bytes(stored, "MONOCHROME2"), "m2.dcm")
    mono1 = read_image(dicom_bytes(stored, "MONOCHROME1"), "m1.dcm")
    np.testing.assert_allclose(mono1, 1.0 - mono2, atol=1e-6)
    # In MONOCHROME1 the smallest stored value is displayed white.
    lo = np.unravel_index(np.argmin(stored), stored.shape)
    assert mono1[lo] == pytest.approx(1.0)


def test_dicom_voi_window_is_applied():
    stored = np.tile(np.arange(0, 4096, 16, dtype=np.uint16), (64, 1))  # 64 x 256 ramp
    out = read_image(dicom_bytes(stored, window=(2048, 1024)), "win.dcm")
    # Below centre - width/2 everything is black, above centre + width/2 white.
    assert out[:, stored[0] < 1500].max() == pytest.approx(0.0)
    assert out[:, stored[0] > 2600].min() == pytest.approx(1.0)


def test_dicom_rescale_slope_is_applied_before_scaling():
    stored = (phantom() * 1000).astype(np.uint16)
    plain = read_image(dicom_bytes(stored), "a.dcm")
    rescaled = read_image(dicom_bytes(stored, rescale=(2.0, -1024.0)), "b.dcm")
    np.testing.assert_allclose(plain, rescaled, atol=1e-5)  # a linear map vanishes after min-max


def test_multiframe_dicom_is_refused():
    frames = np.stack([phantom(64, 64)] * 3) * 1000
    assert "3 frames" in _err(dicom_bytes(frames, frames=3), "cine.dcm")


def test_colour_dicom_is_refused():
    rgb = (np.stack([phantom(64, 64)] * 3, -1) * 255).astype(np.uint8)
    assert "colour" in _err(dicom_bytes(rgb, "RGB", bits=8, samples=3), "colour.dcm")


def test_real_compressed_rsna_dicoms_decode(dicom_dir):
    with open(dicom_dir / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    jpeg = [r for r in rows if r["transfer_syntax"] == "1.2.840.10008.1.2.4.50"]
    assert len(jpeg) >= 10
    for r in rows:
        img = read_image(dicom_dir / r["path"])
        assert img.shape == (int(r["rows"]), int(r["columns"]))
        assert img.dtype == np.float32 and img.min() == 0.0 and img.max() == 1.0
        assert img.std() > 0.1, r["path"]  # a real film, not a flat decode
        # Bone bright: the mediastinum/spine column is brighter than the lung fields beside it.
        h, w = img.shape
        centre = img[h // 3 : 2 * h // 3, int(0.45 * w) : int(0.55 * w)].mean()
        lungs = np.r_[img[h // 3 : 2 * h // 3, int(0.2 * w) : int(0.35 * w)].ravel(),
                      img[h // 3 : 2 * h // 3, int(0.65 * w) : int(0.8 * w)].ravel()].mean()
        assert centre > lungs, r["path"]


def test_real_kermany_jpeg_reads_as_224_grey(kermany_dir):
    p = next((kermany_dir / "train" / "NORMAL").glob("*.jpeg"))
    img = read_image(p)
    assert img.shape == (224, 224) and 0 <= img.min() < img.max() <= 1
