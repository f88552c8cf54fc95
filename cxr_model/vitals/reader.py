"""PhysioNet/CinC Challenge 2012 records: reader -> cleaning -> hourly grid -> normaliser.

The stages follow mimic3-benchmarks: a reader that turns one ``<RecordID>.txt`` into events, a
discretiser onto a fixed hourly grid (48 steps) with observation masks, time since the last
observation and forward filling that starts from documented normal values, and a normaliser fitted
on training stays only. Channel names, units, normal values and valid ranges live in
``channels.json`` beside this module.

Record format (challenge README, Silva et al., CinC 2012;39:245-248): CSV ``Time,Parameter,Value``;
``Time`` is ``HH:MM`` since ICU admission; the first rows at 00:00 are descriptors (RecordID, Age,
Gender, Height, ICUType, Weight); -1 means unknown.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np


N_HOURS = 48
CHANNELS_FILE = Path(__file__).with_name("channels.json")


class RecordError(ValueError):
    """A record that cannot be read; the message names the file and, where known, the line."""


@lru_cache(maxsize=1)
def channel_table() -> dict:
    """The channel table from ``channels.json`` (names, units, normal values, valid ranges)."""
    return json.loads(CHANNELS_FILE.read_text())


def channel_names() -> list[str]:
    return [c["name"] for c in channel_table()["channels"]]


def normal_values() -> np.ndarray:
    """Normal value per channel, shape ``[C]`` float32, in channel order."""
    return np.array([c["normal"] for c in channel_table()["channels"]], dtype=np.float32)


@dataclass
class Record:
    """One ICU stay as read from its file.

    Attributes:
        record_id: the challenge RecordID.
        descriptors: Age (years), Gender (0 female, 1 male), Height (cm), ICUType (1-4),
            Weight (kg); ``nan`` when unknown (-1) or implausible.
        events: ``(minutes since admission, parameter, cleaned value)``, time series only.
        source: the file it came from (for messages).
        n_dropped: readings removed: values outside the cleaning rules, and rows whose parameter
            name is not a challenge parameter even after stripping spaces, NUL bytes and BOMs.
        drop_reasons: ``{reason: count}`` behind ``n_dropped``.
        n_after_window: readings of known parameters past hour 48: not modelled, and not dropped
            (the stay goes on), counted so that a longer stay can be told what was not read.
    """

    record_id: int
    descriptors: dict[str, float]
    events: list[tuple[int, str, float]]
    source: str = ""
    n_dropped: int = 0
    drop_reasons: dict[str, int] = field(default_factory=dict)
    n_after_window: int = 0


def clean_value(param: str, value: float) -> float:
    """One observation after the documented cleaning rules; ``nan`` when it is not usable.

    Rules (the challenge README lists the quirks: sentinels, implausible values, pH x100):
      * -1 is the challenge's "unknown" sentinel (except where -1 cannot occur, all values are >= 0).
      * pH recorded x100 (e.g. 735) is divided by 100; other pH values outside 6.5-8.0 (e.g. 94,
        100, apparently saturations) are dropped.
      * FiO2 recorded as a percentage (> 1 and <= 100) is divided by 100.
      * Temperature -17.8 (0 F converted to C) and other values outside 25-45 C are dropped.
      * Blood pressures of 0 are monitoring artefacts (line flushes, cuff failures) and dropped.
      * Anything else outside the channel's ``valid`` range in ``channels.json`` is dropped.
    """
    if not math.isfinite(value) or value == -1:
        return math.nan
    if param == "pH" and 650 <= value <= 800:
        value = value / 100.0
    elif param == "FiO2" and 1 < value <= 100:
        value = value / 100.0
    spec = _spec(param)
    if spec is None:
        return math.nan
    lo, hi = spec["valid"]
    if not lo <= value <= hi:
        return math.nan
    return float(value)


@lru_cache(maxsize=None)
def _spec(param: str) -> dict | None:
    for c in channel_table()["channels"]:
        if c["name"] == param:
            return c
    return None


def _minutes(text: str) -> int:
    hh, mm = text.split(":")
    h, m = int(hh), int(mm)
    if h < 0 or not 0 <= m < 60:
        raise ValueError(f"time {text!r} is not HH:MM")
    return h * 60 + m


#: Stripped from both ends of every field: whitespace, NUL bytes and byte order marks (exports
#: from spreadsheets and some hospital systems carry them; " HR" or "\ufeffHR" is still HR).
_JUNK = " \t\r\n\v\f\x00\ufeff\u00a0"


def _whole_number(value: float) -> bool:
    return math.isfinite(value) and value == int(value) and value > 0


def parse_record(lines: list[str], source: str = "<record>") -> Record:
    """Parse the text lines of one record; raises :class:`RecordError` naming ``source:line``."""
    table = channel_table()
    known = set(channel_names())
    desc_names = table["descriptors"]
    if not lines or lines[0].strip(_JUNK).replace(" ", "") != "Time,Parameter,Value":
        raise RecordError(f"{source}:1: header is not 'Time,Parameter,Value'")
    descriptors: dict[str, float] = {}
    events: list[tuple[int, str, float]] = []
    reasons: dict[str, int] = {}
    n_after = 0
    id_line, first_id = 0, 0.0
    for lineno, line in enumerate(lines[1:], start=2):
        line = line.strip(_JUNK)
        if not line:
            continue
        parts = [f.strip(_JUNK) for f in line.split(",")]
        if len(parts) != 3:
            raise RecordError(f"{source}:{lineno}: expected 3 comma-separated fields, got {len(parts)}: {line[:60]!r}")
        t_text, param, v_text = parts
        try:
            minutes = _minutes(t_text)
        except ValueError:
            raise RecordError(f"{source}:{lineno}: time {t_text!r} is not HH:MM") from None
        try:
            value = float(v_text)
        except ValueError:
            raise RecordError(f"{source}:{lineno}: value {v_text!r} of {param} is not a number") from None
        if param == "RecordID":
            if not _whole_number(value):
                raise RecordError(f"{source}:{lineno}: RecordID {v_text!r} is not a positive whole number")
            if not id_line:
                id_line, first_id = lineno, value
            elif value != first_id:
                raise RecordError(f"{source}:{lineno}: a second RecordID {v_text} (line {id_line} says {int(first_id)})")
        if minutes == 0 and param in desc_names and param not in descriptors:
            descriptors[param] = value
            continue
        if param not in known:
            if param not in desc_names:  # not a challenge parameter at all: count it, never drop silently
                why = f"unknown parameter {param[:40]!r}"
                reasons[why] = reasons.get(why, 0) + 1
            continue  # descriptors repeated later in the stay are not modelled
        if minutes > N_HOURS * 60:
            n_after += 1  # times past 48 h are not modelled
            continue
        cleaned = clean_value(param, value)
        if math.isnan(cleaned):
            why = f"{param}: unknown (-1), non-finite or implausible value"
            reasons[why] = reasons.get(why, 0) + 1
            continue
        events.append((minutes, param, cleaned))
    if "RecordID" not in descriptors:
        raise RecordError(f"{source}:2: no RecordID descriptor at 00:00")
    record_id = int(descriptors.pop("RecordID"))
    valid = table["descriptor_valid"]
    clean_desc = {}
    for name in desc_names[1:]:
        v = descriptors.get(name, math.nan)
        lo, hi = valid[name]
        clean_desc[name] = float(v) if (math.isfinite(v) and v != -1 and lo <= v <= hi) else math.nan
    return Record(record_id, clean_desc, events, source, sum(reasons.values()), reasons, n_after)


def read_record(path: str | Path) -> Record:
    """Read one ``<RecordID>.txt``; raises :class:`RecordError` naming the file and line.

    A file named by a number must hold that RecordID (a copied or renamed file would otherwise
    be scored against another patient's outcome).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordError(f"{path.name}: cannot read ({exc.__class__.__name__}: {exc})") from None
    return check_name(path.name, parse_record(text.splitlines(), source=path.name))


def check_name(name: str, rec: Record) -> Record:
    """``rec`` itself; raises :class:`RecordError` if the file's name is a number other than its RecordID."""
    stem = Path(name).stem
    if stem.isdigit() and int(stem) != rec.record_id:
        raise RecordError(f"{name}: holds RecordID {rec.record_id}, not {int(stem)} as its name says")
    return rec


def load_outcomes(path: str | Path) -> dict[int, dict[str, float]]:
    """``Outcomes-*.txt`` -> ``{RecordID: {"SAPS-I", "SOFA", "Length_of_stay", "Survival", "In-hospital_death"}}``.

    Raises:
        RecordError: naming the file and line, for anything that would make a label wrong: an empty
            file, a RecordID that is not a positive whole number, a label other than 0/1, a
            non-finite value, or a RecordID on two lines (both named). Outcomes are labels, so a bad
            file stops the run instead of being scored in part.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise RecordError(f"{path.name}: not a text file ({exc})") from None
    return parse_outcomes(lines, path.name)


def parse_outcomes(lines: list[str], name: str) -> dict[int, dict[str, float]]:
    """The lines of an outcomes file (see :func:`load_outcomes`); errors name ``name`` and the line."""
    if not any(line.strip(_JUNK) for line in lines):
        raise RecordError(f"{name}: file is empty; expected a header with RecordID and In-hospital_death")
    header = [h.strip(_JUNK) for h in lines[0].split(",")]
    if "RecordID" not in header or "In-hospital_death" not in header:
        raise RecordError(f"{name}:1: header lacks RecordID or In-hospital_death")
    out, seen = {}, {}
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip(_JUNK):
            continue
        parts = [p.strip(_JUNK) for p in line.split(",")]
        if len(parts) != len(header):
            raise RecordError(f"{name}:{lineno}: expected {len(header)} fields, got {len(parts)}")
        try:
            row = {h: float(p) for h, p in zip(header, parts)}
        except ValueError:
            raise RecordError(f"{name}:{lineno}: non-numeric field in {line[:60]!r}") from None
        bad = [h for h, v in row.items() if not math.isfinite(v)]
        if not _whole_number(row["RecordID"]):
            raise RecordError(f"{name}:{lineno}: RecordID {parts[header.index('RecordID')]!r} is not a positive whole number")
        if row["In-hospital_death"] not in (0.0, 1.0):
            raise RecordError(f"{name}:{lineno}: In-hospital_death {parts[header.index('In-hospital_death')]!r} is not 0 or 1")
        if bad:
            raise RecordError(f"{name}:{lineno}: non-finite {', '.join(bad)}")
        rid = int(row.pop("RecordID"))
        if rid in seen:
            raise RecordError(f"{name}:{lineno}: RecordID {rid} already has an outcome on line {seen[rid]}")
        seen[rid] = lineno
        out[rid] = row
    if not out:
        raise RecordError(f"{name}: no outcome rows after the header")
    return out


def read_dir(records_dir: str | Path, record_ids: list[int] | None = None) -> tuple[list[Record], list[str]]:
    """Read every ``*.txt`` record in a folder (or only ``record_ids``); errors are collected.

    Returns:
        ``(records, errors)``; each error is ``"<file>:<line>: <problem>"`` and the batch carries on.
        A RecordID found in more than one file is one error naming every such file, and none of
        them is scored (which holds the right stay is unknown).
    """
    records_dir = Path(records_dir)
    if record_ids is None:
        paths = sorted(p for p in records_dir.glob("*.txt") if not p.name.lower().startswith("outcomes"))
    else:
        paths = [records_dir / f"{rid}.txt" for rid in record_ids]
    return read_batch([(p.name, lambda p=p: read_record(p)) for p in paths])


def read_batch(readers: list[tuple[str, object]]) -> tuple[list[Record], list[str]]:
    """Run each ``(name, read)`` (``read()`` returns one :class:`Record`); collect the records and one error
    per failure, then refuse RecordIDs held by more than one file (see :func:`read_dir`)."""
    records, errors = [], []
    for name, read in readers:
        try:
            records.append(read())
        except RecordError as exc:
            errors.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - one unreadable record must not stop the batch
            errors.append(f"{name}: cannot read ({type(exc).__name__}: {exc})")
    by_id: dict[int, list[Record]] = {}
    for r in records:
        by_id.setdefault(r.record_id, []).append(r)
    for rid, same in by_id.items():
        if len(same) > 1:
            errors.append(f"{', '.join(r.source for r in same)}: the same RecordID {rid} in {len(same)} files; "
                          "none of them is scored")
    return [r for r in records if len(by_id[r.record_id]) == 1], errors

