"""Generated image fixtures: synthetic radiograph-like arrays, DICOM and broken files.

Nothing here is real data; real radiographs are read from ``../shared/data`` by the tests.
"""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def phantom(h: int = 256, w: int = 320) -> np.ndarray:
    """A chest-like phantom in [0, 1]: bright body, two darker lung fields, a bright spine."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.full((h, w), 0.15)
    body = ((xx - w / 2) / (0.45 * w)) ** 2 + ((yy - h / 2) / (0.48 * h)) ** 2 < 1
    img[body] = 0.7
    for cx in (0.32, 0.68):
        lung = ((xx - cx * w) / (0.14 * w)) ** 2 + ((yy - 0.45 * h) / (0.3 * h)) ** 2 < 1
        img[lung] = 0.3
    img[np.abs(xx - w / 2) < 0.03 * w] = 0.9
    return img.astype(np.float32)


def png_bytes(arr: np.ndarray, mode: str = "L") -> bytes:
    buf = io.BytesIO()
    if mode == "I;16":
        Image.fromarray((arr * 65535).astype(np.uint16)).save(buf, format="PNG")
    elif mode == "RGB":
        Image.fromarray((np.stack([arr] * 3, -1) * 255).astype(np.uint8), "RGB").save(buf, format="PNG")
    elif mode == "RGBA":
        rgb = (np.stack([arr] * 3, -1) * 255).astype(np.uint8)
        alpha = np.full(arr.shape + (1,), 255, np.uint8)
        alpha[: arr.shape[0] // 2] = 0  # top half transparent -> flattened onto black
        Image.fromarray(np.concatenate([rgb, alpha], -1), "RGBA").save(buf, format="PNG")
    else:
        Image.fromarray((arr * 255).astype(np.uint8), "L").save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(arr: np.ndarray, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((arr * 255).astype(np.uint8), "L").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def huge_png(path: Path, side: int = 20000) -> Path:
    """A valid all-black ``side`` x ``side`` 8-bit grey PNG, written without holding it in memory."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + pixels
    idat = bytearray()
    for _ in range(side):
        idat += comp.compress(row)
    idat += comp.flush()
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.write(chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)))
        fh.write(chunk(b"IDAT", bytes(idat)))
        fh.write(chunk(b"IEND", b""))
    return path


def dicom_bytes(
    pixels: np.ndarray | None,
    photometric: str = "MONOCHROME2",
    bits: int = 16,
    frames: int = 1,
    samples: int = 1,
    window: tuple[float, float] | None = None,
    rescale: tuple[float, float] | None = None,
    phi: bool = True,
) -> bytes:
    """An uncompressed DICOM (Explicit VR Little Endian) built from ``pixels`` (stored values).

    ``pixels=None`` makes a DICOM with every image attribute but no PixelData element.
    """
    from pydicom.dataset import FileMetaDataset
    from pydicom.dataset import Dataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    if phi:
        ds.PatientName = "Doe^Jane"
        ds.PatientID = "MRN-0042"
        ds.PatientBirthDate = "19800101"
        ds.AccessionNumber = "ACC123"
        ds.InstitutionName = "General Hospital"
        ds.ReferringPhysicianName = "House^Gregory"
    ds.PhotometricInterpretation = photometric
    ds.SamplesPerPixel = samples
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    if rescale:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    if pixels is not None:
        arr = np.asarray(pixels)
        ds.Rows, ds.Columns = arr.shape[-2] if samples == 1 else arr.shape[-3], arr.shape[-1] if samples == 1 else arr.shape[-2]
        if frames > 1:
            ds.NumberOfFrames = frames
        if samples > 1:
            ds.PlanarConfiguration = 0
        dtype = np.uint16 if bits == 16 else np.uint8
        ds.PixelData = arr.astype(dtype).tobytes()
    else:
        ds.Rows, ds.Columns = 64, 64
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def dicom_with(
    raw: dict[str, bytes | None] | None = None,
    sequences: dict[str, list] | None = None,
    pixels: np.ndarray | None = None,
    preamble: bool = True,
    **kwargs,
) -> bytes:
    """A DICOM from :func:`dicom_bytes` whose header holds values as a broken writer stores them.

    Args:
        raw: keyword -> the element's raw bytes, written unchecked with the dictionary VR
            (``{"RescaleSlope": b"abc", "Rows": b"\\x00\\x00"}``); ``None`` deletes the element.
        sequences: keyword -> list of item Datasets (e.g. a VOI LUT Sequence with a bad descriptor).
        pixels: stored values; defaults to a 64 x 64 phantom scaled to 0..4000.
        preamble: ``False`` writes a bare data set without the 128-byte preamble, ``DICM`` and meta.
        kwargs: passed to :func:`dicom_bytes` (``window``, ``rescale``, ``photometric`` ...).
    """
    import pydicom
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    from pydicom.dataelem import RawDataElement
    from pydicom.sequence import Sequence
    from pydicom.tag import Tag

    if pixels is None:
        pixels = (phantom(64, 64) * 4000).astype(np.uint16)
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(pixels, **kwargs)))
    for keyword, value in (raw or {}).items():
        tag = Tag(tag_for_keyword(keyword))
        if value is None:
            if tag in ds:
                del ds[tag]
            continue
        value = value + (b" " if len(value) % 2 else b"")
        ds[tag] = RawDataElement(tag, dictionary_VR(tag), len(value), value, 0, False, True)
    for keyword, items in (sequences or {}).items():
        setattr(ds, keyword, Sequence(items))
    buf = io.BytesIO()
    if preamble:
        ds.save_as(buf, enforce_file_format=True)
    else:
        del ds.file_meta
        ds.preamble = None
        ds.save_as(buf, implicit_vr=False, little_endian=True)
    return buf.getvalue()


def png16_bytes(values: np.ndarray, colour: bool = False) -> bytes:
    """A 16-bit PNG holding ``values`` (uint16, unscaled), grey or RGB, written by hand.

    Pillow cannot write 16-bit RGB; PACS exports write 10/12/14-bit values unscaled like this.
    """
    h, w = values.shape
    samples = np.stack([values] * 3, -1) if colour else values
    data = np.ascontiguousarray(samples.astype(">u2"))
    raw = b"".join(b"\x00" + data[i].tobytes() for i in range(h))

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2 if colour else 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def oriented(arr: np.ndarray, orientation: int, fmt: str = "JPEG") -> bytes:
    """``arr`` (upright, [0, 1]) stored as a camera would with EXIF Orientation ``orientation``:
    the pixels are turned the other way, and the tag says how to turn them upright again."""
    inverse = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
               4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
               7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}[orientation]
    img = Image.fromarray((arr * 255).astype(np.uint8), "L")
    if inverse is not None:
        img = img.transpose(inverse)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, format=fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()
