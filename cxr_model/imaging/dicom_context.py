"""What a DICOM header says about a film that the model's call depends on: age and view.

* **PatientAge** (0010,1010, AS ``"045Y"``) -> the population whose operating point applies
  (under 18 years = child, :func:`~cxr_model.imaging.operating.population_from_age`); a file
  without a readable age keeps the image-based estimate.
* **View**: the model is made for frontal (PA/AP) films. A header that says the film is a
  lateral view makes it out of scope, whatever the image looks like; the reason is named (and
  applied by the one scope rule, :meth:`cxr_model.imaging.ood.OodModel.outside`). Read in order,
  the first that speaks decides: ViewPosition (0018,5101: ``LL``, ``RL``, ``LAT``, ``LATERAL`` are
  lateral; ``PA``, ``AP`` frontal), the ViewCodeSequence's meaning (0054,0220, CID 4010 "left
  lateral" / "right lateral"), PatientOrientation (0020,0020: rows running anterior-posterior, ``A``
  or ``P`` first, is a lateral projection), then SeriesDescription / ProtocolName /
  StudyDescription naming a lateral and no frontal view (``"CHEST LAT"``).

Only the header is read here (no pixels); a file that is no DICOM, or whose header cannot be
parsed, says nothing (the reader reports broken files on its own).
"""
from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from cxr_model.imaging.formats import sniff_format
from cxr_model.imaging.operating import population_from_age

LATERAL_POSITIONS = frozenset({"LL", "RL", "LAT", "LATERAL"})
FRONTAL_POSITIONS = frozenset({"PA", "AP"})
_LATERAL_WORD = re.compile(r"\b(LAT|LATERAL|LL|RL)\b", re.I)
_FRONTAL_WORD = re.compile(r"\b(PA|AP|FRONTAL|POSTERO-?ANTERIOR|ANTERO-?POSTERIOR)\b", re.I)
_TEXT_TAGS = ("SeriesDescription", "ProtocolName", "StudyDescription")


@dataclass(frozen=True)
class HeaderContext:
    """``population``: ``"child"``/``"adult"`` from PatientAge, else ``None``; ``scope_reason``: why
    the header puts the film out of scope (a lateral view), else ``None``."""

    population: str | None = None
    scope_reason: str | None = None


NO_CONTEXT = HeaderContext()


def header_context(data: bytes) -> HeaderContext:
    """The context of a file's bytes (:data:`NO_CONTEXT` for a non-DICOM or an unreadable header)."""
    if sniff_format(data) != "DICOM":
        return NO_CONTEXT
    try:
        import pydicom

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        return context_of(ds)
    except Exception:  # noqa: BLE001 - a broken header says nothing; the pixel reader names the problem
        return NO_CONTEXT


def path_context(path: str | Path) -> HeaderContext:
    """:func:`header_context` of a file on disk, reading its pixels only when it is a DICOM."""
    try:
        with open(path, "rb") as fh:
            if sniff_format(fh.read(132)) != "DICOM":
                return NO_CONTEXT
            fh.seek(0)
            return header_context(fh.read())
    except OSError:
        return NO_CONTEXT


def context_of(ds) -> HeaderContext:
    """Age -> population and view -> scope reason of a pydicom dataset."""
    return HeaderContext(population_from_age(_text(ds, "PatientAge") or None), lateral_reason(ds))


def lateral_reason(ds) -> str | None:
    """Why the header says this is a lateral view (see the module docstring), else ``None``."""
    pos = _text(ds, "ViewPosition").upper()
    if pos in LATERAL_POSITIONS:
        return f"lateral view (DICOM ViewPosition {pos}); the model is made for frontal (PA/AP) films"
    if pos in FRONTAL_POSITIONS:
        return None
    for item in _get(ds, "ViewCodeSequence") or []:
        meaning = _text(item, "CodeMeaning")
        if "lateral" in meaning.lower() and "decubitus" not in meaning.lower():
            return f"lateral view (DICOM ViewCodeSequence '{meaning}'); the model is made for frontal (PA/AP) films"
    orient = _get(ds, "PatientOrientation")
    if orient is not None and not isinstance(orient, str) and len(orient) >= 1 and str(orient[0]).upper()[:1] in ("A", "P"):
        return (f"lateral projection (DICOM PatientOrientation {'/'.join(map(str, orient))}: rows run front to back); "
                "the model is made for frontal (PA/AP) films")
    for tag in _TEXT_TAGS:
        text = _text(ds, tag)
        if _LATERAL_WORD.search(text) and not _FRONTAL_WORD.search(text):
            return f"lateral view (DICOM {tag} '{text[:40]}'); the model is made for frontal (PA/AP) films"
    return None


def _get(ds, keyword: str):
    try:
        return ds.get(keyword)
    except Exception:  # noqa: BLE001 - an unparsable element says nothing
        return None


def _text(ds, keyword: str) -> str:
    value = _get(ds, keyword)
    return "" if value is None else str(value).strip()
