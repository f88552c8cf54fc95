"""DICOM viewing helpers: the header panel with PHI masked, and window/level for display.

PHI: every element whose keyword is in :data:`PHI_KEYWORDS` (names, IDs, dates, addresses,
institution, UIDs; after DICOM PS3.15 Annex E, Basic Application Level Confidentiality Profile),
and every element with value representation PN (person name), DA, DT or TM, is masked unless
the caller asks to show it. Masking happens here, not in the page, so no other view can forget it.

Window/level is for display only: the model always sees the reader's output (the file's own VOI
LUT, see ``io.read_image``), whatever window the reviewer picks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MASK = "•••••• (hidden)"
PHI_KEYWORDS = frozenset({
    "PatientName", "PatientID", "PatientBirthDate", "PatientBirthTime", "OtherPatientIDs",
    "OtherPatientIDsSequence", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName",
    "PatientAddress", "PatientTelephoneNumbers", "PatientInsurancePlanCodeSequence", "MedicalRecordLocator",
    "EthnicGroup", "PatientReligiousPreference", "MilitaryRank", "BranchOfService", "CountryOfResidence",
    "RegionOfResidence", "PatientComments", "AdditionalPatientHistory", "IssuerOfPatientID",
    "AccessionNumber", "StudyID", "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName",
    "ReferringPhysicianName", "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers",
    "PerformingPhysicianName", "NameOfPhysiciansReadingStudy", "OperatorsName", "RequestingPhysician",
    "PhysiciansOfRecord", "StationName", "DeviceSerialNumber", "StudyInstanceUID", "SeriesInstanceUID",
    "SOPInstanceUID", "MediaStorageSOPInstanceUID", "FrameOfReferenceUID", "StudyDate", "SeriesDate",
    "AcquisitionDate", "ContentDate", "StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime",
    "InstanceCreationDate", "InstanceCreationTime", "RequestAttributesSequence", "ReferencedPatientSequence",
})
_PHI_VR = frozenset({"PN", "DA", "DT", "TM"})
_SKIP_VR = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN", "SQ"})


@dataclass(frozen=True)
class HeaderField:
    """One row of the header panel. ``value`` is :data:`MASK` for a hidden PHI field."""

    tag: str
    keyword: str
    name: str
    value: str
    phi: bool


def is_phi(keyword: str, vr: str) -> bool:
    return keyword in PHI_KEYWORDS or vr in _PHI_VR


def header_fields(ds, show_phi: bool = False, max_len: int = 80) -> list[HeaderField]:
    """The dataset's top-level elements (file meta included) as rows, PHI masked unless asked.

    Args:
        ds: a pydicom Dataset (e.g. from ``io.read_dicom_dataset``).
        show_phi: show identifying values instead of :data:`MASK`.

    Returns:
        One :class:`HeaderField` per element; pixel data, binary and sequence elements are left
        out (sequences may nest PHI; they are not shown at all).
    """
    rows: list[HeaderField] = []
    elements = list(getattr(ds, "file_meta", None) or []) + list(ds)
    for el in elements:
        if el.keyword == "PixelData" or el.VR in _SKIP_VR:
            continue
        phi = is_phi(el.keyword, el.VR)
        value = MASK if phi and not show_phi and not _empty(el.value) else _text(el.value, max_len)
        rows.append(HeaderField(f"({el.tag.group:04X},{el.tag.element:04X})", el.keyword, el.name, value, phi))
    return rows


def _empty(value) -> bool:
    return value is None or str(value).strip() == ""


def _text(value, max_len: int) -> str:
    s = str(value)
    return s if len(s) <= max_len else s[: max_len - 1] + "…"


# --------------------------------------------------------------------------------- window/level
@dataclass(frozen=True)
class Window:
    """A display window in the image's modality units: ``center`` and ``width``."""

    center: float
    width: float


def window_presets(raw: np.ndarray, ds=None) -> dict[str, Window]:
    """Windows to offer for a raw (modality-LUT) image.

    Projection radiographs have no fixed units (unlike CT Hounsfield units), so the presets are
    the file's own window, the full range, and percentile windows of this image's values.

    Args:
        raw: ``(H, W)`` values after the modality LUT (``io.dicom_to_array(..., apply_voi=False)``).
        ds: the dataset, for its WindowCenter/WindowWidth (first value when several; left out when
            unusable (see ``dicom_pixels.file_window``) or centred far outside the image's values).
    """
    from cxr_model.imaging.dicom_pixels import file_window

    lo, hi = float(np.min(raw)), float(np.max(raw))
    p = np.percentile(raw, [1, 99, 10, 90, 50, 99.5])
    presets: dict[str, Window] = {}
    window = file_window(ds) if ds is not None else None
    span = max(hi - lo, 1.0)
    if window is not None and lo - span / 2 <= window[0] <= hi + span / 2:  # a centre far off the values shows one grey
        presets["File window (header)"] = Window(*window)
    presets["Full range"] = Window((lo + hi) / 2, max(hi - lo, 1.0))
    presets["Auto (1st-99th percentile)"] = Window((p[0] + p[1]) / 2, max(p[1] - p[0], 1.0))
    presets["High contrast (10th-90th)"] = Window((p[2] + p[3]) / 2, max(p[3] - p[2], 1.0))
    presets["Dense structures (median-99.5th)"] = Window((p[4] + p[5]) / 2, max(p[5] - p[4], 1.0))
    return presets


def apply_window(raw: np.ndarray, window: Window, monochrome1: bool = False) -> np.ndarray:
    """Linear window (DICOM PS3.3 C.11.2.1.2, simplified) to ``float32 (H, W)`` in [0, 1], bone bright."""
    lo = window.center - window.width / 2
    out = np.clip((raw.astype(np.float32) - lo) / max(window.width, 1e-6), 0, 1)
    return (1.0 - out) if monochrome1 else out
