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
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

Source = Union[str, Path, bytes, BinaryIO]

#: Largest image accepted, in pixels. A 43 x 43 cm detector at 100 um is ~18.5 MP; anything far
#: above that is not a radiograph and may be a decompression bomb.
MAX_PIXELS = 40_000_000
MIN_SIDE = 16
ACCEPTED = "PNG, JPEG or DICOM"
RASTER_SUFFIXES = {".png", ".jpg", ".jpeg"}
DICOM_SUFFIXES = {".dcm", ".dicom"}
NOT_DICOM = "not a DICOM file (no 'DICM' marker at byte 128 and no DICOM header at the start), nor a PNG or JPEG"

# Pillow refuses images above 2x this with DecompressionBombError; we check the header size
# ourselves first and give a clearer message, and keep Pillow's guard as a second line.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# A truncated file must fail, not load with a grey bottom half.
ImageFile.LOAD_TRUNCATED_IMAGES = False

# Formats refused by content: (magic, offset, name). Checked after PNG, JPEG and DICOM.
_OTHER_FORMATS = (
    (b"II*\x00", 0, "TIFF"), (b"MM\x00*", 0, "TIFF"), (b"II+\x00", 0, "BigTIFF"), (b"MM\x00+", 0, "BigTIFF"),
    (b"WEBP", 8, "WebP"), (b"GIF87a", 0, "GIF"), (b"GIF89a", 0, "GIF"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "JPEG 2000"), (b"\xff\x4f\xff\x51", 0, "JPEG 2000"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", 0, "JPEG XL"), (b"\xff\x0a", 0, "JPEG XL"),
    (b"ftypheic", 4, "HEIF"), (b"ftypheix", 4, "HEIF"), (b"ftypmif1", 4, "HEIF"), (b"ftypavif", 4, "AVIF"),
    (b"8BPS", 0, "Photoshop"), (b"qoif", 0, "QOI"), (b"\x00\x00\x01\x00", 0, "ICO"),
    (b"%PDF", 0, "PDF"), (b"PK\x03\x04", 0, "ZIP archive"), (b"\x1f\x8b", 0, "gzip archive"),
)


class ImageReadError(ValueError):
    """A file that is not a readable radiograph. ``str(err)`` is ``"<file>: <problem>"``, on one line
    (a decoder's multi-line message is joined), so a batch can log one row per bad file."""

    def __init__(self, name: str, problem: str):
        self.name = name
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{' '.join(str(name).splitlines())}: {self.problem}")


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


def sniff_format(data: bytes) -> str:
    """The file's format from its first bytes: ``"PNG"``, ``"JPEG"``, ``"DICOM"``, the name of a
    refused format (``"TIFF"``, ``"WebP"``, ...), or ``""`` when unrecognised."""
    if is_dicom_bytes(data):
        return "DICOM"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    for magic, offset, fmt in _OTHER_FORMATS:
        if data[offset : offset + len(magic)] == magic:
            return fmt
    if data[:2] == b"BM" and int.from_bytes(data[14:18], "little") in (12, 40, 52, 56, 64, 108, 124):  # + DIB size
        return "BMP"
    if len(data) >= 8 and data[:2] in (b"\x02\x00", b"\x08\x00"):
        return "DICOM"  # a DICOM data set without the 128-byte preamble (group 0002 or 0008 first)
    return ""


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
            from cxr_model.imaging.dicom_pixels import read_dicom_bytes

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


def __getattr__(attr: str):
    # The DICOM reader lives in dicom_pixels (which imports this module); its public names stay
    # importable from here, resolved lazily to avoid an import cycle (PEP 562).
    if attr in ("read_dicom_dataset", "dicom_to_array", "read_dicom_bytes"):
        from cxr_model.imaging import dicom_pixels

        return getattr(dicom_pixels, attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
