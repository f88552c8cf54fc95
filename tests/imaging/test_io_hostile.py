"""Hostile and broken image files (issue 8, images and DICOM).

Every bad file is one :class:`ImageReadError` whose message names the file and the real problem
(never a ValueError/TypeError/IndexError, never NaN passed on, never a wrong picture); an unusable
*display* window is ignored in favour of the full range; formats are told by content, not name;
12-bit data in 16-bit PNGs and EXIF orientation read like their plain 8-bit upright copies; and one
bad file among good ones costs that file only (``predict`` CLI, ``evaluate``'s dataset, review).
"""
from __future__ import annotations

import gzip
import io
import re
import zipfile
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image
from pydicom.dataset import Dataset

from cxr_model.cli import main
from cxr_model.imaging.data import Item
from cxr_model.imaging.datasets import FileDataset
from cxr_model.imaging.dicom_header import header_fields, window_presets
from cxr_model.imaging.dicom_pixels import dicom_to_array, read_dicom_dataset
from cxr_model.imaging.formats import ImageReadError
from cxr_model.imaging.io import read_image
from cxr_model.imaging.predict import predict_source
from cxr_model.imaging.review import analyse_study
from tests.imaging.synthetic import dicom_bytes, dicom_with, jpeg_bytes, oriented, phantom, png16_bytes, png_bytes

STORED = (phantom(64, 64) * 4000).astype(np.uint16)  # what dicom_with() stores by default


def _us(n: int) -> bytes:
    return int(n).to_bytes(2, "little")


def _lut_item(descriptor=None, data=None) -> Dataset:
    item = Dataset()
    if descriptor is not None:
        item.add_new("LUTDescriptor", "US", descriptor)
    if data is not None:
        item.add_new("LUTData", "US", data)
    return item


def _float_dicom(nan: bool) -> bytes:
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(STORED)))
    del ds.PixelData, ds.BitsStored, ds.HighBit, ds.PixelRepresentation
    arr = STORED.astype(np.float32)
    if nan:
        arr[3, 3], arr[5, 5] = np.nan, np.inf
    ds.BitsAllocated = 32
    ds.FloatPixelData = arr.tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _pil(fmt: str, mode: str = "L", **kw) -> bytes:
    arr = phantom(64, 64)
    img = Image.fromarray(arr, "F") if mode == "F" else Image.fromarray((arr * 255).astype(np.uint8), "L")
    if mode == "F":
        img.putpixel((3, 3), float("nan"))
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _apng() -> bytes:
    frames = [Image.fromarray((phantom(64, 64) * 255 * k).astype(np.uint8), "L") for k in (0.5, 1.0)]
    buf = io.BytesIO()
    frames[0].save(buf, format="PNG", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def _zip_of_png() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("film.png", png_bytes(phantom()))
    return buf.getvalue()


def _bad_crc_png() -> bytes:
    data = bytearray(png_bytes(phantom()))
    data[29] ^= 0xFF  # the IHDR chunk's CRC
    return bytes(data)


def _dcm(raw: dict) -> Callable[[], bytes]:
    """A generated DICOM (with RescaleSlope 1, RescaleIntercept 0) whose header holds ``raw`` values."""
    return lambda: dicom_with(raw, rescale=(1.0, 0.0))


def _voi(*items: Dataset) -> Callable[[], bytes]:
    return lambda: dicom_with(sequences={"VOILUTSequence": list(items)})


def _mlut(*items: Dataset) -> Callable[[], bytes]:
    return lambda: dicom_with(sequences={"ModalityLUTSequence": list(items)})


_FULL = dicom_bytes(STORED)

# (id, file name, bytes factory, regex the problem must match)
ERRORS = [
    # --- DICOM header values the pixels cannot be decoded without
    ("slope-abc", "slope.dcm", _dcm({"RescaleSlope": b"abc"}), r"^DICOM RescaleSlope 'abc' is not a number$"),
    ("slope-nan", "slope.dcm", _dcm({"RescaleSlope": b"NaN"}), r"RescaleSlope is 'NaN', not a finite number"),
    ("slope-inf", "slope.dcm", _dcm({"RescaleSlope": b"inf"}), r"RescaleSlope is 'inf', not a finite number"),
    ("slope-zero", "slope.dcm", _dcm({"RescaleSlope": b"0"}), r"RescaleSlope is 0"),
    ("slope-overflow", "slope.dcm", _dcm({"RescaleSlope": b"1e40"}), r"RescaleSlope 1e\+40 .* float32 range"),
    ("slope-two-values", "slope.dcm", _dcm({"RescaleSlope": b"1\\2"}), r"RescaleSlope has 2 values"),
    ("intercept-abc", "icpt.dcm", _dcm({"RescaleIntercept": b"-1024x"}), r"RescaleIntercept '-1024x' is not a number"),
    ("intercept-nan", "icpt.dcm", _dcm({"RescaleIntercept": b"nan"}), r"RescaleIntercept is 'nan', not a finite"),
    ("frames-abc", "frames.dcm", _dcm({"NumberOfFrames": b"abc"}), r"NumberOfFrames 'abc' is not a number"),
    ("frames-negative", "frames.dcm", _dcm({"NumberOfFrames": b"-3"}), r"NumberOfFrames is -3; expected 0 to"),
    ("frames-fraction", "frames.dcm", _dcm({"NumberOfFrames": b"1.5"}), r"NumberOfFrames '1.5' is not a whole"),
    ("rows-zero", "rows.dcm", _dcm({"Rows": _us(0)}), r"only 64x0 pixels"),
    ("rows-missing", "rows.dcm", _dcm({"Rows": None}), r"only 64x0 pixels"),
    ("columns-wrong", "cols.dcm", _dcm({"Columns": _us(65)}), r"pixel data cannot be decoded .*less than expected"),
    ("bits-stored-above-allocated", "bits.dcm", _dcm({"BitsStored": _us(20)}), r"BitsStored is 20; expected 1 to 16"),
    ("bits-stored-zero", "bits.dcm", _dcm({"BitsStored": _us(0)}), r"BitsStored is 0"),
    ("bits-allocated-7", "bits.dcm", _dcm({"BitsAllocated": _us(7)}), r"BitsAllocated is 7"),
    ("bits-allocated-3-bytes", "bits.dcm", _dcm({"BitsAllocated": b"\x10\x00\x00"}), r"BitsAllocated has 2 values"),
    ("pixel-representation-2", "pr.dcm", _dcm({"PixelRepresentation": _us(2)}), r"PixelRepresentation is 2"),
    ("samples-zero", "spp.dcm", _dcm({"SamplesPerPixel": _us(0)}), r"SamplesPerPixel is 0"),
    ("photometric-missing", "pi.dcm", _dcm({"PhotometricInterpretation": None}), r"Interpretation is missing"),
    ("photometric-unknown", "pi.dcm", _dcm({"PhotometricInterpretation": b"FOO"}), r"Interpretation 'FOO' is not"),
    ("photometric-ybr", "pi.dcm", _dcm({"PhotometricInterpretation": b"YBR_FULL"}), r"DICOM is colour \(YBR_FULL"),
    ("modality-lut-short", "mlut.dcm",
     _mlut(_lut_item([10, 0, 16], [0, 1, 2])),
     r"Modality LUT Sequence is malformed"),
    ("modality-lut-no-descriptor", "mlut.dcm",
     _mlut(_lut_item(None, [0, 1, 2])),
     r"Modality LUT Sequence is malformed"),
    ("float-pixels-nan", "float.dcm", lambda: _float_dicom(nan=True), r"float pixel data include 2 NaN or infinite"),
    ("blank", "blank.dcm", lambda: dicom_with(pixels=np.full((64, 64), 7, np.uint16)), r"blank \(every pixel is 7\)"),
    ("pixel-data-truncated", "cut.dcm", lambda: _FULL[:-3000], r"pixel data cannot be decoded .*less than expected"),
    ("header-truncated", "cut.dcm", lambda: _FULL[:200], r"no data elements .*truncated header"),
    ("no-pixel-data", "nopix.dcm", lambda: dicom_bytes(None), r"^DICOM has no pixel data$"),
    ("multiframe", "cine.dcm", lambda: dicom_bytes(np.stack([STORED] * 3), frames=3), r"3 frames"),
    # --- not DICOM at all, whatever the name says (item 6: never "DICOM has no pixel data")
    ("text-named-dcm", "notes.dcm", lambda: b"patient list\nnot an image\n" * 10, r"^not a DICOM file \(no 'DICM'"),
    ("binary-named-dcm", "junk.dcm", lambda: b"\x08\x00" + bytes(range(256)) * 4, r"^not a DICOM file"),
    ("zip-named-dcm", "study.dcm", _zip_of_png, r"^ZIP archive file: not an accepted format"),
    ("gzip-named-dcm", "study.dcm", lambda: gzip.compress(_FULL), r"^gzip archive file: not an accepted format"),
    ("text-named-png", "notes.png", lambda: b"patient list\nnot an image\n" * 10, r"^not a PNG, JPEG or DICOM image"),
    # --- formats refused by content (item 4), even under an accepted name
    ("tiff-float-nan-named-png", "scan.png", lambda: _pil("TIFF", "F"),
     r"^TIFF file: not an accepted format \(accepted: PNG, JPEG or DICOM\)$"),
    ("tiff-named-dcm", "scan.dcm", lambda: _pil("TIFF"), r"^TIFF file: not an accepted format"),
    ("webp-named-png", "scan.png", lambda: _pil("WEBP", lossless=True), r"^WebP file: not an accepted format"),
    ("bmp-named-jpg", "scan.jpg", lambda: _pil("BMP"), r"^BMP file: not an accepted format"),
    ("gif-named-png", "scan.png", lambda: _pil("GIF"), r"^GIF file: not an accepted format"),
    ("ico-named-png", "scan.png", lambda: _pil("ICO"), r"^ICO file: not an accepted format"),
    ("jpeg2000-named-jpg", "scan.jpg", lambda: b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(200), r"^JPEG 2000 file"),
    ("heif-named-jpg", "scan.jpg", lambda: b"\x00\x00\x00\x18ftypheic" + bytes(200), r"^HEIF file"),
    ("pdf-named-png", "scan.png", lambda: b"%PDF-1.4\n" + bytes(200), r"^PDF file"),
    # --- broken or unsuitable PNG/JPEG
    ("png-16bit-rgb-12bit-data", "rgb16.png", lambda: png16_bytes((phantom() * 4095).astype(np.uint16), colour=True),
     r"16-bit colour PNG whose values use fewer than 14 bits"),
    ("apng-two-frames", "anim.png", _apng, r"PNG has 2 frames"),
    ("png-8x8", "tiny.png", lambda: png_bytes(phantom(8, 8)), r"only 8x8 pixels"),
    ("png-bad-crc", "crc.png", _bad_crc_png, r"corrupt or truncated"),
    ("jpeg-truncated", "cut.jpg", lambda: jpeg_bytes(phantom())[:900], r"corrupt or truncated"),
    ("png-header-only", "cut.png", lambda: png_bytes(phantom())[:40], r"corrupt or truncated"),
    ("empty", "empty.dcm", lambda: b"", r"file is empty"),
]

_REFERENCE = None


def _full_range() -> np.ndarray:
    """The default pixels read with no window at all: what every unusable window falls back to."""
    global _REFERENCE
    if _REFERENCE is None:
        _REFERENCE = read_image(dicom_with(), "reference.dcm")
    return _REFERENCE


# (id, bytes factory): an unusable display window or VOI LUT is ignored -> the full-range image
FALLBACKS = [
    ("frames-zero-read-as-one", _dcm({"NumberOfFrames": b"0"})),  # invalid but harmless, as pydicom reads it
    ("window-width-0", _dcm({"WindowCenter": b"2000", "WindowWidth": b"0"})),
    ("window-width-negative", _dcm({"WindowCenter": b"2000", "WindowWidth": b"-100"})),
    ("window-centre-x-y", _dcm({"WindowCenter": b"x\\y", "WindowWidth": b"400"})),
    ("window-centre-abc", _dcm({"WindowCenter": b"abc", "WindowWidth": b"400"})),
    ("window-width-nan", _dcm({"WindowCenter": b"2000", "WindowWidth": b"NaN"})),
    ("window-centre-inf", _dcm({"WindowCenter": b"inf", "WindowWidth": b"400"})),
    ("window-width-only", _dcm({"WindowWidth": b"400"})),
    ("window-first-width-0", _dcm({"WindowCenter": b"2000\\2000", "WindowWidth": b"0\\400"})),
    ("window-far-outside-values", _dcm({"WindowCenter": b"99999", "WindowWidth": b"10"})),
    ("voi-lut-data-too-short", _voi(_lut_item([4096, 0, 16], list(range(10))))),
    ("voi-lut-no-descriptor", _voi(_lut_item(None, list(range(4096))))),
    ("voi-lut-7-bit-entries", _voi(_lut_item([4096, 0, 7], list(range(4096))))),
    ("voi-lut-no-data", _voi(_lut_item([4096, 0, 16]))),
    ("voi-lut-empty-sequence", _voi()),
    ("voi-lut-constant", _voi(_lut_item([4096, 0, 16], [5] * 4096))),
]


@pytest.mark.parametrize("name,make,problem", [pytest.param(n, m, p, id=i) for i, n, m, p in ERRORS])
def test_hostile_file_is_one_clear_error_naming_it(name, make, problem, tmp_path):
    data = make()
    with pytest.raises(ImageReadError) as info:
        read_image(data, name)
    err = info.value
    assert type(err) is ImageReadError and str(err) == f"{name}: {err.problem}" and "\n" not in str(err)
    assert re.search(problem, err.problem), err.problem
    # the catch-all wrappers are a last line of defence: every case here has its own message
    assert "cannot be interpreted" not in err.problem and "cannot be read (" not in err.problem
    # the same by path: the message names the file as found on disk
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ImageReadError, match=f"^{re.escape(name)}: "):
        read_image(tmp_path / name)


@pytest.mark.parametrize("make", [pytest.param(m, id=i) for i, m in FALLBACKS])
def test_unusable_display_window_falls_back_to_the_full_range(make):
    out = read_image(make(), "windowed.dcm")
    assert np.isfinite(out).all() and out.dtype == np.float32
    np.testing.assert_allclose(out, _full_range(), atol=1e-6)


@pytest.mark.parametrize("make", [pytest.param(m, id=i) for i, m in FALLBACKS if i.startswith("window-")])
def test_review_page_dicom_view_survives_unusable_windows(make):
    """What the page's DICOM view calls: raw pixels, window presets, header rows; no exception,
    and the unusable file window is not offered (its centre/width would break the sliders)."""
    ds = read_dicom_dataset(make(), "w.dcm")
    raw = dicom_to_array(ds, "w.dcm", apply_voi=False)
    presets = window_presets(raw, ds)
    assert "File window (header)" not in presets and "Full range" in presets
    assert all(np.isfinite([w.center, w.width]).all() and w.width >= 1 for w in presets.values())
    shown = {r.keyword: r.value for r in header_fields(ds)}
    assert "WindowWidth" in shown  # the bad value is still shown as text in the header panel


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID", "BOGUS"])
def test_valid_window_matches_pydicom_reference(function):
    """A usable window is still applied, as pydicom's reference implementation does (PS3.3 C.11.2)."""
    import pydicom
    from pydicom.pixels import apply_windowing

    ramp = np.tile(np.arange(0, 4096, 16, dtype=np.uint16), (64, 1))
    raw = {"WindowCenter": b"2048", "WindowWidth": b"1024", "VOILUTFunction": function.encode()}
    data = dicom_with(raw, pixels=ramp)
    out = read_image(data, "win.dcm")
    ds = pydicom.dcmread(io.BytesIO(data))
    if function == "BOGUS":  # an unknown function is read as the default, LINEAR
        ds.VOILUTFunction = "LINEAR"
    ref = apply_windowing(ramp.astype(np.float64), ds)
    ref = (ref - ref.min()) / (ref.max() - ref.min())
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert not np.allclose(out, read_image(dicom_with(pixels=ramp), "plain.dcm"), atol=0.05)  # the window did act


def test_valid_voi_lut_sequence_is_applied():
    inverted = _lut_item([4096, 0, 16], list(range(4095, -1, -1)))
    out = read_image(dicom_with(sequences={"VOILUTSequence": [inverted]}), "lut.dcm")
    np.testing.assert_allclose(out, 1.0 - _full_range(), atol=1e-6)  # the LUT's inversion is visible


def test_valid_float_pixel_data_reads():
    out = read_image(_float_dicom(nan=False), "float.dcm")
    np.testing.assert_allclose(out, _full_range(), atol=1e-6)


# ------------------------------------------------------------------------- detected by content
@pytest.mark.parametrize("name", ["film.dcm", "film.dicom", "film.jpg", "film"])
def test_png_is_read_by_content_whatever_its_name(name):
    data = png_bytes(phantom())
    np.testing.assert_array_equal(read_image(data, name), read_image(data, "film.png"))


@pytest.mark.parametrize("name", ["study.png", "study.jpg", "IM000001"])
def test_dicom_is_read_by_content_whatever_its_name(name):
    np.testing.assert_array_equal(read_image(_FULL, name), read_image(_FULL, "study.dcm"))


def test_dicom_without_preamble_reads_like_the_part10_file():
    bare = dicom_with(preamble=False)
    assert bare[128:132] != b"DICM" and bare[:2] == b"\x08\x00"
    np.testing.assert_array_equal(read_image(bare, "bare.dcm"), _full_range())


# ----------------------------------------------------------------------- bit depth (item 2)
@pytest.mark.parametrize("bits", [10, 12, 14, 16])
def test_high_bit_grey_png_reads_like_its_8bit_copy(bits):
    arr = phantom()
    v8 = np.rint(arr * 255)
    png8 = read_image(png_bytes(v8 / 255), "film8.png")
    scale = (2**bits - 1) / 255
    png16 = read_image(png16_bytes(np.rint(v8 * scale).astype(np.uint16)), f"film{bits}.png")
    np.testing.assert_allclose(png16, png8, atol=0.5 / 255)


def test_12bit_png_of_real_films_gets_the_8bit_call(kermany_dir, cxr_bundle):
    """Real Kermany films stored as 12-bit values in 16-bit PNGs (as PACS exports do) get the same
    probability as their 8-bit copies (before the fix: read as 16 grey levels, calls flipped)."""
    films = sorted((kermany_dir / "val" / "NORMAL").glob("*.jpeg"))[:8]
    assert len(films) == 8
    for film in films:
        v8 = np.rint(read_image(film) * 255)
        p8 = predict_source(cxr_bundle, png_bytes(v8 / 255), "film.png")
        data12 = png16_bytes(np.rint(v8 * 4095 / 255).astype(np.uint16))
        assert Image.open(io.BytesIO(data12)).mode.startswith("I")  # really a 16-bit grey PNG
        p12 = predict_source(cxr_bundle, data12, "film12.png")
        assert p12.error is None and abs(p12.probability - p8.probability) < 1e-4, film.name
        assert p12.label == p8.label


# -------------------------------------------------------------------- EXIF orientation (item 3)
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_to_png_pixels_exactly(orientation):
    arr = np.rint(phantom(64, 96) * 255) / 255  # not square: a missed rotation changes the shape
    upright = read_image(png_bytes(arr), "upright.png")
    np.testing.assert_array_equal(read_image(oriented(arr, orientation, "PNG"), "tagged.png"), upright)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_rotated_real_jpeg_with_orientation_tag_gets_the_upright_call(kermany_dir, cxr_bundle, orientation):
    film = sorted((kermany_dir / "val" / "PNEUMONIA").glob("*.jpeg"))[0]
    arr = read_image(film)
    upright = oriented(arr, 1)
    tagged = oriented(arr, orientation)
    a, b = read_image(upright, "upright.jpg"), read_image(tagged, "tagged.jpg")
    assert a.shape == b.shape
    assert float(np.abs(a - b).mean()) < 2 / 255  # JPEG re-encoding noise only, not a rotated film
    assert float(np.abs(a - np.rot90(a)).mean()) > 10 / 255  # (what a missed rotation would differ by)
    pa, pb = predict_source(cxr_bundle, upright, "u.jpg"), predict_source(cxr_bundle, tagged, "t.jpg")
    assert abs(pa.probability - pb.probability) < 0.02 and pa.label == pb.label


# ------------------------------------------------------------ one bad file costs that file only
def test_predict_cli_reports_a_bad_dicom_and_scores_every_other_file(tmp_path, kermany_dir, capsys):
    films = sorted((kermany_dir / "val" / "NORMAL").glob("*.jpeg"))[:2]
    bad = tmp_path / "bad_slope.dcm"
    bad.write_bytes(dicom_with({"RescaleSlope": b"abc"}, rescale=(1.0, 0.0)))
    tiff = tmp_path / "scan.png"
    tiff.write_bytes(_pil("TIFF", "F"))
    window0 = tmp_path / "window0.dcm"
    window0.write_bytes(dicom_with({"WindowWidth": b"0", "WindowCenter": b"2000"}))
    args = [str(films[0]), str(bad), str(tiff), str(window0), str(films[1])]
    code = main(["predict", *args])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 1 and len(lines) == len(args)
    assert lines[1] == f"ERROR {bad}: DICOM RescaleSlope 'abc' is not a number"
    assert lines[2].startswith(f"ERROR {tiff}: TIFF file: not an accepted format")
    for i in (0, 4):
        assert lines[i].startswith(f"{args[i]}\tP(pneumonia)=") and "nan" not in lines[i].lower()
    # the generated window0.dcm is read (full range); the OOD check may judge it out of scope: no call then
    assert lines[3].startswith(f"{args[3]}\tP(pneumonia)=") or lines[3].startswith(f"{args[3]}\tOUT OF SCOPE")
    assert "nan" not in lines[3].lower()


def test_predict_cli_keeps_going_after_an_unforeseen_fault(tmp_path, kermany_dir, capsys, monkeypatch):
    import cxr_model.imaging.predict as P

    films = sorted((kermany_dir / "val" / "NORMAL").glob("*.jpeg"))[:3]
    real = P.predict_source

    def flaky(bundle, source, name=None, **kwargs):
        if name == str(films[1]):
            raise RuntimeError("simulated fault")
        return real(bundle, source, name, **kwargs)

    monkeypatch.setattr(P, "predict_source", flaky)
    code = main(["predict", "--json", *map(str, films)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 1 and len(lines) == 3
    assert "simulated fault" in lines[1] and '"probability": null' in lines[1]
    assert '"error": null' in lines[0] and '"error": null' in lines[2]


def test_evaluate_dataset_turns_a_bad_dicom_into_an_error_row(tmp_path, kermany_dir):
    film = sorted((kermany_dir / "val" / "NORMAL").glob("*.jpeg"))[0]
    bad = tmp_path / "frames.dcm"
    bad.write_bytes(dicom_with({"NumberOfFrames": b"abc"}))
    ds = FileDataset([Item(film, 0), Item(bad, 1)], 64)
    x, _, err, _ = ds[0]
    assert err == "" and torch.isfinite(x).all()
    _, _, err, _ = ds[1]
    assert err == "frames.dcm: DICOM NumberOfFrames 'abc' is not a number"


def test_review_study_of_a_bad_dicom_is_an_error_not_an_exception(cxr_bundle):
    study = analyse_study(cxr_bundle, _dcm({"WindowCenter": b"x\\y", "RescaleSlope": b"NaN"})(), "nan.dcm")
    assert study.error == "nan.dcm: DICOM RescaleSlope is 'NaN', not a finite number"
    ok = analyse_study(cxr_bundle, dicom_with({"WindowCenter": b"x\\y", "WindowWidth": b"0"}), "w.dcm")
    assert ok.error is None and 0.0 <= ok.probability <= 1.0


def test_review_study_tells_dicom_by_content_not_by_name(cxr_bundle):
    png_as_dcm = analyse_study(cxr_bundle, png_bytes(phantom()), "film.dcm")
    dcm_as_png = analyse_study(cxr_bundle, _FULL, "study.png")
    assert png_as_dcm.error is None and not png_as_dcm.is_dicom  # no DICOM view for a PNG
    assert dcm_as_png.error is None and dcm_as_png.is_dicom
