"""DICOM to the pixel contract of :mod:`cxr_model.imaging.io`: header checks, Modality LUT, VOI.

Every header value is interpreted here, inside checks that turn a bad value into an
:class:`~cxr_model.imaging.io.ImageReadError` naming the element and its value (see the io
module's docstring for which bad values are errors and which are ignored). pydicom hands back
invalid numbers as strings (``RescaleSlope`` ``"abc"``) and accepts ``NaN``, so nothing is taken
from it unchecked.
"""
from __future__ import annotations

import io
import warnings

import numpy as np

from cxr_model.imaging.dicom_header import _show, _value, file_window, header_int, header_number
from cxr_model.imaging.formats import MAX_PIXELS, MIN_SIDE, NOT_DICOM, ImageReadError, is_dicom_bytes, sniff_format

_BITS_ALLOCATED = (1, 8, 16, 32, 64)


def read_dicom_dataset(data: bytes, name: str):
    """Parse DICOM bytes into a pydicom Dataset (header and pixel data, not yet decoded)."""
    import pydicom

    if sniff_format(data) != "DICOM":
        raise ImageReadError(name, NOT_DICOM)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about each odd value; we check the ones we use
            ds = pydicom.dcmread(io.BytesIO(data), force=not is_dicom_bytes(data))
    except Exception as exc:  # pydicom raises many types for a damaged stream
        raise ImageReadError(name, f"not a readable DICOM file ({type(exc).__name__}: {exc})") from None
    if len(ds) == 0 and is_dicom_bytes(data):
        raise ImageReadError(name, "DICOM file holds no data elements after its file meta (truncated header)")
    if len(ds) == 0 or not (is_dicom_bytes(data) or any(k in ds for k in ("SOPClassUID", "Modality", "Rows"))):
        # a forced read of a file without the preamble parses almost anything: ask for a real header
        raise ImageReadError(name, NOT_DICOM)
    _infer_transfer_syntax(ds)
    return ds


def _infer_transfer_syntax(ds) -> None:
    """A bare data set (no file meta) is uncompressed; record the encoding pydicom read it with."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None or little is None:
        return  # left to the decoder, which names the missing Transfer Syntax UID
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else (
        ExplicitVRLittleEndian if little else ExplicitVRBigEndian)


def _window(arr: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """PS3.3 C.11.2.1.2: LINEAR (default), LINEAR_EXACT or SIGMOID window, output in [0, 1]."""
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(np.clip(-4.0 * (arr - center) / width, -50, 50)))
    if function == "LINEAR_EXACT":
        return np.clip((arr - (center - width / 2)) / width, 0.0, 1.0)
    if width == 1:
        return (arr > center - 0.5).astype(np.float64)
    return np.clip((arr - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _usable(out: np.ndarray) -> bool:
    return out.size > 0 and bool(np.isfinite(out).all()) and float(out.max()) > float(out.min())


def apply_file_voi(arr: np.ndarray, ds) -> np.ndarray:
    """The VOI LUT Sequence, else the file window, else ``arr`` unchanged.

    An unusable VOI LUT or window (malformed, or turning the whole image into one grey) is skipped
    for the next one, as a viewer falls back to the full range (see the io module's docstring).
    """
    from pydicom.pixels import apply_voi as pydicom_apply_voi

    if "VOILUTSequence" in ds:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = np.asarray(pydicom_apply_voi(arr, ds, index=0), dtype=np.float64)
            if out.shape == arr.shape and _usable(out):
                return out
        except Exception:  # a malformed sequence: skipped, see above
            pass
    window = file_window(ds)
    if window is not None:
        function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
        out = _window(arr.astype(np.float64), *window, function)
        if _usable(out):
            return out
    return arr


def _modality(pixels: np.ndarray, ds, name: str) -> np.ndarray:
    """PS3.3 C.11.1: the Modality LUT Sequence or RescaleSlope/RescaleIntercept, checked."""
    if "ModalityLUTSequence" in ds:
        from pydicom.pixels import apply_modality_lut

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = np.asarray(apply_modality_lut(pixels, ds), dtype=np.float64)
        except Exception as exc:
            problem = f"DICOM Modality LUT Sequence is malformed ({type(exc).__name__}: {exc})"
            raise ImageReadError(name, problem) from None
        if out.shape != pixels.shape:
            raise ImageReadError(name, "DICOM Modality LUT Sequence is malformed (wrong output shape)")
        return out
    slope = header_number(ds, "RescaleSlope", name, 1.0)
    intercept = header_number(ds, "RescaleIntercept", name, 0.0)
    if slope == 0:
        raise ImageReadError(name, "DICOM RescaleSlope is 0: every pixel would have the same value")
    with np.errstate(over="ignore", invalid="ignore"):
        out = pixels.astype(np.float64) * slope + intercept
        if not np.isfinite(out.astype(np.float32)).all():
            raise ImageReadError(name, f"DICOM RescaleSlope {slope:g} and RescaleIntercept {intercept:g} take the "
                                       "pixel values beyond the float32 range (infinite)")
    return out


def dicom_to_array(ds, name: str, apply_voi: bool = True) -> np.ndarray:
    """Decode a DICOM dataset's pixels after the Modality LUT and, if asked, the VOI LUT.

    Returns:
        ``float32`` array ``(H, W)`` in the modality's units (``apply_voi=False``) or in the VOI
        output range, MONOCHROME1 *not* yet inverted; every value finite.

    Raises:
        ImageReadError: for any header value or pixel stream that cannot be interpreted.
    """
    try:
        return _dicom_to_array(ds, name, apply_voi)
    except ImageReadError:
        raise
    except Exception as exc:  # a value no check above foresaw: still one clear error for this file
        raise ImageReadError(name, f"DICOM header cannot be interpreted ({type(exc).__name__}: {exc})") from None


def _dicom_to_array(ds, name: str, apply_voi_lut: bool) -> np.ndarray:
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise ImageReadError(name, "DICOM has no pixel data")
    frames = header_int(ds, "NumberOfFrames", name, 1, 0, 2**31 - 1)  # 0 is invalid but read as 1, as pydicom does
    if frames > 1:
        raise ImageReadError(name, f"DICOM has {frames} frames; a single radiograph is expected")
    photometric = str(_value(ds, "PhotometricInterpretation", name) or "").strip().upper()
    samples = header_int(ds, "SamplesPerPixel", name, 1, 1, 4)
    if samples != 1 or photometric.startswith(("RGB", "YBR", "PALETTE", "HSV", "ARGB", "CMYK")):
        raise ImageReadError(
            name, f"DICOM is colour ({photometric or 'unknown'}, {samples} samples); a greyscale radiograph is expected"
        )
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        problem = f"{_show(photometric)} is not" if photometric else "is missing; expected"
        raise ImageReadError(name, f"DICOM PhotometricInterpretation {problem} MONOCHROME1 or MONOCHROME2")
    rows = header_int(ds, "Rows", name, 0, 0, 2**16 - 1)
    cols = header_int(ds, "Columns", name, 0, 0, 2**16 - 1)
    if rows * cols > MAX_PIXELS:
        raise ImageReadError(name, f"DICOM is {cols}x{rows} pixels, above the {MAX_PIXELS:,}-pixel limit")
    if min(rows, cols) < MIN_SIDE:
        raise ImageReadError(name, f"DICOM is only {cols}x{rows} pixels (Rows, Columns); not a radiograph")
    if "PixelData" in ds:
        allocated = header_int(ds, "BitsAllocated", name, 0, 0, 64)
        if allocated not in _BITS_ALLOCATED:
            raise ImageReadError(name, f"DICOM BitsAllocated is {allocated}; expected one of {_BITS_ALLOCATED}")
        header_int(ds, "BitsStored", name, allocated, 1, allocated)
        header_int(ds, "PixelRepresentation", name, 0, 0, 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pixels = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for missing decoders and bad streams
        tsyntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise ImageReadError(name, f"DICOM pixel data cannot be decoded (transfer syntax {tsyntax}: {exc})") from None
    if pixels.shape != (rows, cols):
        raise ImageReadError(name, f"DICOM pixel array has shape {pixels.shape}; one {rows}x{cols} image expected")
    bad = int(np.size(pixels) - np.count_nonzero(np.isfinite(pixels)))
    if bad:  # NaN or infinity in float pixel data: never passed on to the model
        plural = "s" if bad > 1 else ""
        raise ImageReadError(name, f"DICOM float pixel data include {bad:,} NaN or infinite value{plural}")
    arr = _modality(pixels, ds, name)
    if not np.isfinite(arr).all():  # e.g. a Modality LUT Sequence of float values
        raise ImageReadError(name, "DICOM values are NaN or infinite after the Modality LUT")
    if apply_voi_lut:
        arr = apply_file_voi(arr, ds)
    return np.asarray(arr, dtype=np.float32)


def read_dicom_bytes(data: bytes, name: str) -> np.ndarray:
    """Decode DICOM bytes into the pixel contract (see :func:`cxr_model.imaging.io.read_image`)."""
    ds = read_dicom_dataset(data, name)
    arr = dicom_to_array(ds, name)
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        raise ImageReadError(name, f"DICOM image is blank (every pixel is {lo:g})")
    arr = (arr.astype(np.float64) - lo) / (hi - lo)
    if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1":
        arr = 1.0 - arr  # MONOCHROME1: low values are white; the contract is bone bright
    return arr.astype(np.float32, copy=False)
