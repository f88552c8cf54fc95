"""File formats told apart by content, and the reader's error (the floor of io and dicom_pixels)."""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Union


Source = Union[str, Path, bytes, BinaryIO]
#: Largest image accepted, in pixels. A 43 x 43 cm detector at 100 um is ~18.5 MP; anything far
#: above that is not a radiograph and may be a decompression bomb.
MAX_PIXELS = 40_000_000
MIN_SIDE = 16
ACCEPTED = "PNG, JPEG or DICOM"
RASTER_SUFFIXES = {".png", ".jpg", ".jpeg"}
DICOM_SUFFIXES = {".dcm", ".dicom"}
NOT_DICOM = "not a DICOM file (no 'DICM' marker at byte 128 and no DICOM header at the start), nor a PNG or JPEG"
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
