"""Record files a user uploads to the ward page: read as :func:`reader.read_dir` reads a folder.

Two formats: PhysioNet 2012 text (``Time,Parameter,Value``) and, for a file named ``*.json``, one stay
as a FHIR R4 Bundle (:mod:`cxr_model.vitals.fhir`). Each bad file is one error naming it (and its
line, where known); the others are still read, and a RecordID held by more than one file is refused
in all of them.
"""
from __future__ import annotations

from pathlib import Path

from cxr_model.vitals.fhir import parse_fhir
from cxr_model.vitals.reader import N_HOURS, Record, RecordError, check_name, parse_outcomes, parse_record, read_batch

#: An uploaded record larger than this is refused before it is decoded: a 48 h PhysioNet 2012 record
#: is 5-60 kB, so anything near this is not one (and would only cost memory).
MAX_UPLOAD_BYTES = 5 * 1024 * 1024


def parse_upload(name: str, data: bytes) -> Record:
    """One uploaded record file (its name and bytes); raises :class:`RecordError` naming the file.

    The same rules as :func:`reader.read_record`: UTF-8 text (a byte order mark is allowed), the
    challenge's ``Time,Parameter,Value`` lines (or, named ``*.json``, a FHIR Bundle), and a file named
    by a number must hold that RecordID.
    """
    if Path(name).suffix.lower() == ".json":
        text = "\n".join(_text(name, data, "one stay", "a FHIR R4 JSON Bundle"))
        return check_name(name, parse_fhir(text, name))
    lines = _text(name, data, "one 48 h record", "PhysioNet 2012 'Time,Parameter,Value' lines")
    return check_name(name, parse_record(lines, source=name))


def read_record_file(path: str | Path) -> Record:
    """A record file on disk in either format (see :func:`parse_upload`); errors name the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordError(f"{path.name}: cannot read ({exc.__class__.__name__}: {exc})") from None
    return parse_upload(path.name, data)


def parse_outcomes_upload(name: str, data: bytes) -> dict[int, dict[str, float]]:
    """An uploaded outcomes file (``Outcomes-a.txt`` layout: a header with RecordID and In-hospital_death);
    raises :class:`RecordError` naming the file and line. Outcomes are labels: a bad file is refused whole."""
    return parse_outcomes(_text(name, data, "an outcomes file", "an outcomes table (RecordID,...,In-hospital_death)"), name)


def _text(name: str, data: bytes, kind: str, expected: str) -> list[str]:
    """The lines of an uploaded file: refused over :data:`MAX_UPLOAD_BYTES` (before decoding) or if not UTF-8."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise RecordError(f"{name}: {len(data) / 2**20:.1f} MB is too large for {kind} "
                          f"(at most {MAX_UPLOAD_BYTES // 2**20} MB)")
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise RecordError(f"{name}: not a UTF-8 text file (byte {exc.start} is 0x{data[exc.start]:02x}); "
                          f"expected {expected}") from None


def read_uploads(files: list[tuple[str, bytes]]) -> tuple[list[Record], list[str]]:
    """Uploaded record files ``[(name, bytes), ...]`` -> ``(records, errors)``."""
    return read_batch([(name, lambda name=name, data=data: parse_upload(name, data)) for name, data in files])


def unused_readings(records: list[Record]) -> list[str]:
    """One line per record with readings that were not used, by reason (most frequent first), e.g.
    ``"132556.json: 2 readings not used: code 'Magnesium' is not read (2)"``; readings past hour 48, which
    the model does not read, are counted as such."""
    lines = []
    for r in records:
        reasons = dict(r.drop_reasons)
        if r.n_after_window:
            reasons[f"after hour {N_HOURS} (the model reads the first {N_HOURS} h)"] = r.n_after_window
        n = r.n_dropped + r.n_after_window
        if n:
            why = "; ".join(f"{k} ({c})" for k, c in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
            lines.append(f"{r.source}: {n} reading{'s' if n != 1 else ''} not used: {why}")
    return lines
