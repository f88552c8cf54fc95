"""Reading radiographs: PNG, JPEG and DICOM, detected by content, to one grey float image.

Accepted formats are **PNG, JPEG and DICOM** (Part 10 with the ``DICM`` marker, or a bare data set
that starts with a group 0002/0008 element). The format is decided by the file's first bytes, never
by its name: a PNG named ``.dcm`` is read as a PNG; TIFF, WebP, BMP, GIF, JPEG 2000, HEIF, PDF and
anything else are refused, named by what they are.

The pixel contract (what every reader returns):

* a 2-D ``numpy.float32`` array ``(H, W)`` with finite values in ``[0, 1]`` (NaN or infinity never
  leaves this module);
* 0 is black and 1 is white *as a radiologist views the film* (bone bright): DICOM MONOCHROME1
  is inverted, the Modality LUT (rescale slope/intercept) and the VOI LUT or window are applied;
* 8-bit rasters are divided by 255. 16-bit greyscale PNGs are divided by the largest value of
  their *significant* bits, taken from the brightest pixel: PACS exports often store 10-, 12- or
  14-bit values unscaled in 16-bit samples (max 4095 means 12 bits, so divide by 4095), and
  dividing those by 65535 would leave 16 grey levels after the 8-bit step of the model's input.
  Colour is converted to grey with ITU-R 601 luma (Pillow's ``L``), alpha is flattened onto
  black (as the Kermany copies were made, see ``../shared/data/cxr/README.md``); the JPEG/PNG
  EXIF orientation is applied, so a phone photo of a film is upright. 16-bit *colour* PNGs with
  fewer than 14 significant bits are refused (Pillow keeps only their high byte);
* DICOM values are scaled by their min and max after the VOI LUT, since their range has no fixed
  meaning (``BitsStored`` masks the stored values, so a 12-bit image is read as 12 bits).

DICOM header values are checked before use (DICOM PS3.3 C.7.6.3, C.11.1, C.11.2):

* a value the pixels cannot be decoded without (Rows, Columns, NumberOfFrames, BitsAllocated,
  BitsStored, PhotometricInterpretation, RescaleSlope/Intercept, a Modality LUT Sequence) that is
  missing where required, not a number, not finite or out of range is an error naming the element
  and its value (a NaN slope says so; it is not reported as a "blank" image);
* an unusable *display* setting, i.e. a window whose centre or width is not a number, a width
  below 1 (PS3.3 C.11.2.1.2.1 requires ``>= 1``), a malformed VOI LUT Sequence, or a window/LUT
  that would turn the whole image into one grey, is ignored and the full value range is used,
  as a DICOM viewer does with a file that has no window. Only the radiologist's initial display
  of the film depends on it; the model equalises its input anyway.

Files that cannot be read raise :class:`ImageReadError`, whose message names the file and the
problem ("chest_07.dcm: DICOM has no pixel data"), never a traceback for the UI to show.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from cxr_model.imaging.dicom_pixels import read_dicom_bytes
from cxr_model.imaging.formats import (
    ACCEPTED, DICOM_SUFFIXES, MAX_PIXELS, MIN_SIDE, NOT_DICOM, ImageReadError, Source, _as_bytes, sniff_format,
)


# Pillow refuses images above 2x this with DecompressionBombError; we check the header size
# ourselves first and give a clearer message, and keep Pillow's guard as a second line.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# A truncated file must fail, not load with a grey bottom half.
ImageFile.LOAD_TRUNCATED_IMAGES = False


def read_image(source: Source, name: str | None = None) -> np.ndarray:
    """Read a radiograph file into the pixel contract.

    Args:
        source: a path, the file's bytes, or a binary file object (e.g. a Streamlit upload).
        name: the name used in error messages; defaults to the path's name or ``"<upload>"``.

    Returns:
        ``float32`` array ``(H, W)`` in ``[0, 1]``, finite, bone bright.

    Raises:
        ImageReadError: for every file that is not a readable PNG, JPEG or DICOM radiograph
            (never another exception type).
    """
    if name is None:
        name = Path(source).name if isinstance(source, (str, Path)) else getattr(source, "name", "<upload>")
    try:
        data = _as_bytes(source, name)
        fmt = sniff_format(data)
        if fmt == "DICOM":
            arr = read_dicom_bytes(data, name)
        elif fmt in ("PNG", "JPEG"):
            arr = read_raster_bytes(data, name)
        elif fmt:
            raise ImageReadError(name, f"{fmt} file: not an accepted format (accepted: {ACCEPTED})")
        elif Path(name).suffix.lower() in DICOM_SUFFIXES:
            raise ImageReadError(name, NOT_DICOM)
        else:
            raise ImageReadError(name, f"not a {ACCEPTED} image (unrecognised file content)")
    except ImageReadError:
        raise
    except Exception as exc:  # last line of defence: one bad file must never stop a batch
        raise ImageReadError(name, f"cannot be read ({type(exc).__name__}: {exc})") from None
    if arr.ndim != 2 or not np.isfinite(arr).all():
        raise ImageReadError(name, "decoded pixels are not a finite 2-D image")
    return arr


# ---------------------------------------------------------------------------------------- raster
def read_raster_bytes(data: bytes, name: str) -> np.ndarray:
    """Decode PNG/JPEG bytes (see :func:`read_image` for the contract)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=["PNG", "JPEG"])
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise ImageReadError(name, f"image is {w}x{h} pixels, above the {MAX_PIXELS:,}-pixel limit")
            if getattr(img, "n_frames", 1) > 1 and img.format not in ("JPEG",):
                raise ImageReadError(name, f"{img.format} has {img.n_frames} frames; one image expected")
            img.load()
    except ImageReadError:
        raise
    except UnidentifiedImageError:  # the signature says PNG/JPEG, but the header after it is broken
        raise ImageReadError(name, f"corrupt or truncated {sniff_format(data) or 'image'} "
                                   "(its header cannot be parsed)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(name, f"image too large ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow reports truncated/corrupt streams as OSError ("image file is truncated").
        raise ImageReadError(name, f"corrupt or truncated image ({exc})") from None
    if min(img.size) < MIN_SIDE:
        raise ImageReadError(name, f"image is only {img.size[0]}x{img.size[1]} pixels; not a radiograph")
    try:
        img = ImageOps.exif_transpose(img)
    except Exception as exc:  # a corrupt EXIF block: the orientation is unknown, so is left/right
        raise ImageReadError(name, f"EXIF orientation cannot be read ({exc})") from None
    gray = _pil_to_gray(img, name)
    if data.startswith(b"\x89PNG") and data[24] == 16 and data[25] in (2, 4, 6) and gray.max() < 64 / 255:
        # Pillow keeps only the high byte of 16-bit colour/grey+alpha PNG samples: data of fewer
        # than 14 significant bits would come out as a handful of grey levels.
        raise ImageReadError(name, "16-bit colour PNG whose values use fewer than 14 bits: its grey levels "
                                   "cannot be read; export it as a greyscale PNG")
    return gray


def significant_max(raw: np.ndarray) -> float:
    """Full-scale value of a 16-bit sample array: ``2**bits - 1`` for the fewest bits (at least 8)
    that hold its largest value (4095 -> 12 bits -> 4095; 40000 -> 16 bits -> 65535)."""
    bits = max(8, int(raw.max(initial=0)).bit_length())
    return float(2**bits - 1)


def _pil_to_gray(img: Image.Image, name: str) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        raw = np.asarray(img)
        if raw.min(initial=0) < 0:
            raise ImageReadError(name, f"{mode} image has negative samples")
        arr = raw.astype(np.float32) / significant_max(raw)
    else:
        if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
            img = Image.alpha_composite(black, rgba)
        arr = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    if arr.ndim != 2:
        raise ImageReadError(name, f"unexpected pixel layout {arr.shape}")
    return np.clip(arr, 0.0, 1.0).astype(np.float32, copy=False)


