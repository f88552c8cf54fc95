"""Reading radiographs: PNG/JPEG (8/16-bit, grey/RGB/RGBA) and DICOM, to one grey float image.

The pixel contract (what every reader returns):

* a 2-D ``numpy.float32`` array ``(H, W)`` with values in ``[0, 1]``;
* 0 is black and 1 is white *as a radiologist views the film* (bone bright): DICOM MONOCHROME1
  is inverted, the Modality LUT (rescale slope/intercept) and the VOI LUT or window are applied;
* 8-bit rasters are divided by 255, 16-bit ones by 65535; colour is converted to grey with
  ITU-R 601 luma (Pillow's ``L``), alpha is flattened onto black (as the Kermany copies were
  made, see ``../shared/data/cxr/README.md``); DICOM values are scaled by their min and max after
  the VOI LUT, since their range has no fixed meaning.

Files that cannot be read raise :class:`ImageReadError`, whose message names the file and the
problem ("chest_07.dcm: DICOM has no pixel data"), never a traceback for the UI to show.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

Source = Union[str, Path, bytes, BinaryIO]

#: Largest image accepted, in pixels. A 43 x 43 cm detector at 100 um is ~18.5 MP; anything far
#: above that is not a radiograph and may be a decompression bomb.
MAX_PIXELS = 40_000_000
RASTER_SUFFIXES = {".png", ".jpg", ".jpeg"}
DICOM_SUFFIXES = {".dcm", ".dicom"}

# Pillow refuses images above 2x this with DecompressionBombError; we check the header size
# ourselves first and give a clearer message, and keep Pillow's guard as a second line.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# A truncated file must fail, not load with a grey bottom half.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageReadError(ValueError):
    """A file that is not a readable radiograph. ``str(err)`` is ``"<file>: <problem>"``."""

    def __init__(self, name: str, problem: str):
        self.name = name
        self.problem = problem
        super().__init__(f"{name}: {problem}")


def _as_bytes(source: Source, name: str) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, Path)):
        try:
            data = Path(source).read_bytes()
        except FileNotFoundError:
            raise ImageReadError(name, "file not found") from None
        except IsADirectoryError:
            raise ImageReadError(name, "is a folder, not an image file") from None
        except OSError as exc:
            raise ImageReadError(name, f"cannot be read ({exc.strerror or exc})") from None
    else:
        data = source.read()
    if not data:
        raise ImageReadError(name, "file is empty (0 bytes)")
    return data


def is_dicom_bytes(data: bytes) -> bool:
    """True when ``data`` carries the DICOM Part 10 preamble magic ``DICM`` at offset 128."""
    return len(data) >= 132 and data[128:132] == b"DICM"


def read_image(source: Source, name: str | None = None) -> np.ndarray:
    """Read a radiograph file into the pixel contract.

    Args:
        source: a path, the file's bytes, or a binary file object (e.g. a Streamlit upload).
        name: the name used in error messages; defaults to the path's name or ``"<upload>"``.

    Returns:
        ``float32`` array ``(H, W)`` in ``[0, 1]``, bone bright.

    Raises:
        ImageReadError: empty, truncated, unknown-format, oversized, colour or multi-frame files.
    """
    if name is None:
        name = Path(source).name if isinstance(source, (str, Path)) else getattr(source, "name", "<upload>")
    data = _as_bytes(source, name)
    suffix = Path(name).suffix.lower()
    if is_dicom_bytes(data) or suffix in DICOM_SUFFIXES:
        return read_dicom_bytes(data, name)
    return read_raster_bytes(data, name)


# ---------------------------------------------------------------------------------------- raster
def read_raster_bytes(data: bytes, name: str) -> np.ndarray:
    """Decode PNG/JPEG bytes (see :func:`read_image` for the contract)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise ImageReadError(name, f"image is {w}x{h} pixels, above the {MAX_PIXELS:,}-pixel limit")
            if getattr(img, "n_frames", 1) > 1 and img.format not in ("JPEG",):
                raise ImageReadError(name, f"{img.format} has {img.n_frames} frames; one image expected")
            img.load()
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(name, "not a PNG, JPEG or DICOM image (unrecognised file content)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(name, f"image too large ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow reports truncated/corrupt streams as OSError ("image file is truncated").
        raise ImageReadError(name, f"corrupt or truncated image ({exc})") from None
    if min(img.size) < 16:
        raise ImageReadError(name, f"image is only {img.size[0]}x{img.size[1]} pixels; not a radiograph")
    return _pil_to_gray(img, name)


def _pil_to_gray(img: Image.Image, name: str) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(img, dtype=np.float32) / 65535.0
    elif mode == "I":
        raw = np.asarray(img)
        # 16-bit PNGs decode as "I" in recent Pillow; their values fit 0..65535.
        scale = 65535.0 if raw.max(initial=0) > 255 or img.format == "PNG" else 255.0
        arr = raw.astype(np.float32) / scale
    elif mode == "F":
        raw = np.asarray(img, dtype=np.float32)
        lo, hi = float(np.nanmin(raw)), float(np.nanmax(raw))
        arr = (raw - lo) / (hi - lo) if hi > lo else np.zeros_like(raw)
    else:
        if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
            img = Image.alpha_composite(black, rgba)
        arr = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    if arr.ndim != 2:
        raise ImageReadError(name, f"unexpected pixel layout {arr.shape}")
    return np.clip(arr, 0.0, 1.0).astype(np.float32, copy=False)


# ----------------------------------------------------------------------------------------- DICOM
def read_dicom_dataset(data: bytes, name: str):
    """Parse DICOM bytes into a pydicom Dataset (header and pixel data, not yet decoded)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(io.BytesIO(data), force=not is_dicom_bytes(data))
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ImageReadError(name, f"not a readable DICOM file ({exc})") from None


def dicom_to_array(ds, name: str, apply_voi: bool = True) -> np.ndarray:
    """Decode a DICOM dataset's pixels after the Modality LUT and, if asked, the VOI LUT.

    Returns:
        ``float32`` array ``(H, W)`` in the modality's units (``apply_voi=False``) or in the VOI
        output range, MONOCHROME1 *not* yet inverted.
    """
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise ImageReadError(name, "DICOM has no pixel data")
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ImageReadError(name, f"DICOM has {frames} frames; a single radiograph is expected")
    photometric = str(getattr(ds, "PhotometricInterpretation", "")).upper()
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ImageReadError(
            name, f"DICOM is colour ({photometric or 'unknown'}, {samples} samples); a greyscale radiograph is expected"
        )
    rows, cols = int(getattr(ds, "Rows", 0) or 0), int(getattr(ds, "Columns", 0) or 0)
    if rows * cols > MAX_PIXELS:
        raise ImageReadError(name, f"DICOM is {cols}x{rows} pixels, above the {MAX_PIXELS:,}-pixel limit")
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for missing decoders and bad streams
        tsyntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise ImageReadError(name, f"DICOM pixel data cannot be decoded (transfer syntax {tsyntax}: {exc})") from None
    if pixels.ndim != 2:
        raise ImageReadError(name, f"DICOM pixel array has shape {pixels.shape}; one 2-D image expected")
    arr = apply_modality_lut(pixels, ds)
    if apply_voi:
        arr = apply_voi_lut(arr, ds, prefer_lut=True)
    return np.asarray(arr, dtype=np.float32)


def read_dicom_bytes(data: bytes, name: str) -> np.ndarray:
    """Decode DICOM bytes into the pixel contract (see :func:`read_image`)."""
    ds = read_dicom_dataset(data, name)
    arr = dicom_to_array(ds, name)
    lo, hi = float(arr.min()), float(arr.max())
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        raise ImageReadError(name, "DICOM image is blank (all pixels equal)")
    arr = (arr - lo) / (hi - lo)
    if str(ds.PhotometricInterpretation).upper() == "MONOCHROME1":
        arr = 1.0 - arr  # MONOCHROME1: low values are white; the contract is bone bright
    return arr.astype(np.float32, copy=False)
