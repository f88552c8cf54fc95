"""FHIR R4 stays: a Bundle of one patient's Observations -> the :class:`reader.Record` the ward scores.

Hospitals hand out vital signs and laboratory results as FHIR ``Observation`` resources coded in
LOINC, not as PhysioNet 2012 files. One JSON ``Bundle`` per stay is read here: its ``Patient``
(age from ``birthDate``, sex from ``gender``), an optional ``Encounter`` whose ``period.start`` is the
stay's hour 0 (without it, the first reading is), and each ``Observation`` (or component of
one, as in the blood-pressure panel 85354-9) whose LOINC code is in :data:`LOINC` and whose unit is
one that code's channel accepts (converted to the unit the model was trained on). The readings
become the challenge's ``Time,Parameter,Value`` lines and go through :func:`reader.parse_record`,
so the cleaning rules, the 48 h window and the admission descriptors are the files' own.

What is not read is counted, never guessed: a code without a channel, a unit not listed for its
channel, a reading without a time of day, one entered in error, one before hour 0. Not read at
all: the ICU type and mechanical ventilation (no common FHIR coding), magnesium (sites report it
in mg/dL or mmol/L under the same name). Pulse oximetry (59408-5) is read into the SaO2 channel,
the arterial saturation that NEWS2 here scores as SpO2; the model itself saw arterial values only.
"""
from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from cxr_model.vitals.reader import Record, RecordError, parse_record

LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"
_PER_MIN = {"/min": 1.0}
_MMHG = {"mm[Hg]": 1.0}
_KPA_TO_MMHG = 7.50062
_MMOL = {"mmol/L": 1.0, "meq/L": 1.0}
_PER_NL = {"10*3/uL": 1.0, "10*9/L": 1.0, "/nL": 1.0}
_ENZYME = {"U/L": 1.0}
_TROPONIN = {"ug/L": 1.0, "ng/mL": 1.0, "ng/L": 0.001}

#: LOINC code -> (channel of ``channels.json``, {UCUM unit: factor to the channel's unit}). Temperature in
#: [degF] is converted by formula (:func:`_convert`).
LOINC: dict[str, tuple[str, dict[str, float]]] = {
    "8867-4": ("HR", _PER_MIN),                      # heart rate
    "9279-1": ("RespRate", _PER_MIN),                # respiratory rate
    "8480-6": ("NISysABP", _MMHG),                   # systolic blood pressure (cuff)
    "8462-4": ("NIDiasABP", _MMHG),                  # diastolic blood pressure (cuff)
    "8478-0": ("NIMAP", _MMHG),                      # mean blood pressure
    "76215-3": ("SysABP", _MMHG),                    # invasive systolic arterial pressure
    "76213-8": ("DiasABP", _MMHG),                   # invasive diastolic arterial pressure
    "76214-6": ("MAP", _MMHG),                       # invasive mean arterial pressure
    "8310-5": ("Temp", {"Cel": 1.0, "[degF]": 1.0}),  # body temperature
    "2708-6": ("SaO2", {"%": 1.0}),                  # oxygen saturation in arterial blood
    "59408-5": ("SaO2", {"%": 1.0}),                 # ... by pulse oximetry (SpO2)
    "3150-0": ("FiO2", {"%": 0.01, "1": 1.0}),       # inhaled oxygen concentration
    "9269-2": ("GCS", {"{score}": 1.0, "1": 1.0, "": 1.0}),  # Glasgow Coma Scale total
    "29463-7": ("Weight", {"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237}),
    "8302-2": ("Height", {"cm": 1.0, "m": 100.0, "[in_i]": 2.54}),
    "9187-6": ("Urine", {"mL": 1.0, "L": 1000.0}),   # urine output
    "32693-4": ("Lactate", {"mmol/L": 1.0}),         # in blood
    "2524-7": ("Lactate", {"mmol/L": 1.0}),          # in serum or plasma
    "2744-1": ("pH", {"[pH]": 1.0, "1": 1.0, "": 1.0}),  # arterial blood
    "11558-4": ("pH", {"[pH]": 1.0, "1": 1.0, "": 1.0}),  # blood
    "2703-7": ("PaO2", {"mm[Hg]": 1.0, "kPa": _KPA_TO_MMHG}),
    "2019-8": ("PaCO2", {"mm[Hg]": 1.0, "kPa": _KPA_TO_MMHG}),
    "3094-0": ("BUN", {"mg/dL": 1.0}),               # urea nitrogen
    "2160-0": ("Creatinine", {"mg/dL": 1.0, "umol/L": 1 / 88.42}),
    "14682-9": ("Creatinine", {"umol/L": 1 / 88.42}),
    "2345-7": ("Glucose", {"mg/dL": 1.0, "mmol/L": 18.016}),
    "14749-6": ("Glucose", {"mmol/L": 18.016}),
    "1963-8": ("HCO3", _MMOL),
    "2951-2": ("Na", _MMOL),
    "2823-3": ("K", _MMOL),
    "6690-2": ("WBC", _PER_NL),
    "777-3": ("Platelets", _PER_NL),
    "4544-3": ("HCT", {"%": 1.0}),
    "1975-2": ("Bilirubin", {"mg/dL": 1.0, "umol/L": 1 / 17.1}),
    "1751-7": ("Albumin", {"g/dL": 1.0, "g/L": 0.1}),
    "1742-6": ("ALT", _ENZYME),
    "1920-8": ("AST", _ENZYME),
    "6768-6": ("ALP", _ENZYME),
    "10839-9": ("TroponinI", _TROPONIN),
    "6598-7": ("TroponinT", _TROPONIN),
    "2093-3": ("Cholesterol", {"mg/dL": 1.0, "mmol/L": 38.67}),
}
#: Unit strings seen in exports instead of UCUM codes (compared case-insensitively, like the codes).
UNIT_ALIASES = {"bpm": "/min", "beats/min": "/min", "breaths/min": "/min", "mmhg": "mm[Hg]", "°c": "Cel",
                "degc": "Cel", "°f": "[degF]", "degf": "[degF]", "iu/l": "U/L", "meq/l": "meq/L", "score": "{score}"}
DESCRIPTOR_CODES = ("29463-7", "8302-2")  # weight, height: the admission descriptors of the stay
_SKIPPED_STATUS = ("entered-in-error", "cancelled")


def parse_fhir(data: bytes | str, source: str) -> Record:
    """One stay as a FHIR R4 JSON Bundle -> :class:`Record`; raises :class:`RecordError` naming ``source``."""
    try:
        bundle = json.loads(data)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{source}:{exc.lineno}: not JSON ({exc.msg}, column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise RecordError(f"{source}: not a UTF-8 text file (byte {exc.start} is 0x{exc.object[exc.start]:02x}); "
                          "expected a FHIR R4 JSON Bundle") from None  # as the uploads say it
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise RecordError(f"{source}: not a FHIR Bundle (resourceType {_kind(bundle)!r}); expected one stay's "
                          "Patient and Observations in a Bundle")
    resources = [e.get("resource") for e in _list(bundle.get("entry")) if isinstance(e, dict)]
    resources = [r for r in resources if isinstance(r, dict)]
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    encounters = [r for r in resources if r.get("resourceType") == "Encounter"]
    if len(patients) != 1 or len(encounters) > 1:
        raise RecordError(f"{source}: holds {len(patients)} Patient and {len(encounters)} Encounter resources; "
                          "expected one stay: one Patient and at most one Encounter")
    reasons: dict[str, int] = {}
    readings = []  # (time, channel, value)
    for obs in (r for r in resources if r.get("resourceType") == "Observation"):
        readings += _readings(obs, reasons)
    start = _start(encounters, readings, source)
    patient = patients[0]
    sex = {"female": 0, "male": 1}.get(str(patient.get("gender")), -1)
    lines = ["Time,Parameter,Value", f"00:00,RecordID,{_record_id(patient, source)}",
             f"00:00,Age,{_age(patient.get('birthDate'), start)}", f"00:00,Gender,{sex}", "00:00,ICUType,-1"]
    heights = sorted((t, v) for t, ch, v in readings if ch == "Height")
    if heights:  # the patient's height, whenever it was measured
        lines.append(f"00:00,Height,{heights[0][1]!r}")
    for t, channel, value in sorted(readings, key=lambda r: r[0]):  # stable: same-time readings keep their order
        minutes = math.floor((t - start).total_seconds() / 60)
        if minutes < 0 and channel != "Height":
            _count(reasons, f"{channel}: before the stay's hour 0")
        elif channel != "Height":  # past hour 48 too: the reader counts what it does not model
            lines.append(f"{minutes // 60:02d}:{minutes % 60:02d},{channel},{value!r}")
    rec = parse_record(lines, source=source)
    for why, n in reasons.items():
        rec.drop_reasons[why] = rec.drop_reasons.get(why, 0) + n
    rec.n_dropped += sum(reasons.values())
    return rec


def _readings(obs: dict, reasons: dict[str, int]) -> list[tuple[datetime, str, float]]:
    """The readings of one Observation: itself and each of its components, those with a channel."""
    if obs.get("status") in _SKIPPED_STATUS:
        _count(reasons, f"observation {obs.get('status')}")
        return []
    parts = [obs] + [c for c in _list(obs.get("component")) if isinstance(c, dict)]
    coded = [(p, _loinc(p)) for p in parts]
    coded = [(p, code) for p, code in coded if code]
    if not coded:
        _count(reasons, f"code {_code_text(obs)!r} is not read")
        return []
    t = _time(obs)
    if t is None:
        _count(reasons, "observation without a date and time of day")
        return []
    out = []
    for part, code in coded:
        channel, units = LOINC[code]
        q = part.get("valueQuantity")
        q = q if isinstance(q, dict) else {}
        value = _convert(q, units, channel)
        if value is None:
            unit = q.get("code") or q.get("unit")
            _count(reasons, f"{channel}: no numeric value" if _number(q.get("value")) is None
                   else f"{channel}: unit {unit!r} not accepted (LOINC {code}: {', '.join(u for u in units if u)})")
            continue
        out.append((t, channel, value))
    return out


def _loinc(part: dict) -> str | None:
    for c in _list(_dict(part.get("code")).get("coding")):
        if isinstance(c, dict) and c.get("system") == LOINC_SYSTEM and isinstance(c.get("code"), str) and c["code"] in LOINC:
            return c["code"]
    return None


def _code_text(obs: dict) -> str:
    code = _dict(obs.get("code"))
    codings = [c for c in _list(code.get("coding")) if isinstance(c, dict)]
    return str(code.get("text") or (codings[0].get("code") if codings else "none"))[:40]


def _convert(q: dict, units: dict[str, float], channel: str) -> float | None:
    """The quantity in the channel's unit, or ``None`` (no number, or a unit the channel does not accept)."""
    value = _number(q.get("value"))
    if value is None:
        return None
    unit = str(q.get("code") or q.get("unit") or "").strip()
    unit = UNIT_ALIASES.get(unit.lower(), unit)
    factor = next((f for u, f in units.items() if u.lower() == unit.lower()), None)
    if factor is None:
        return None
    if channel == "Temp" and unit.lower() == "[degf]":
        return (value - 32.0) * 5.0 / 9.0
    return value * factor


def _number(value) -> float | None:
    return None if isinstance(value, bool) or not isinstance(value, (int, float)) else float(value)


def _time(res: dict, key: str = "effective") -> datetime | None:
    """``effectiveDateTime`` / ``effectiveInstant`` / ``effectivePeriod.start`` as a naive UTC (or local) time;
    ``None`` without a time of day."""
    text = res.get(f"{key}DateTime") or res.get(f"{key}Instant") or _dict(res.get(f"{key}Period")).get("start")
    return _datetime(text)


def _datetime(text) -> datetime | None:
    if not isinstance(text, str) or len(text) <= 10:  # a date (or year) alone has no time of day
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return t.astimezone(timezone.utc).replace(tzinfo=None) if t.tzinfo else t


def _start(encounters: list[dict], readings: list, source: str) -> datetime:
    """Hour 0: the Encounter's ``period.start`` (with a time of day), else the first reading."""
    start = _datetime(_dict(encounters[0].get("period")).get("start")) if encounters else None
    if start is not None:
        return start
    times = [t for t, ch, _ in readings if ch != "Height"]
    if not times:
        raise RecordError(f"{source}: no Observation with a LOINC code read here, a value and a time "
                          f"(codes read: {len(LOINC)}, e.g. 8867-4 heart rate, 9279-1 respiratory rate)")
    return min(times)


def _record_id(patient: dict, source: str) -> int:
    """The first all-digit Patient.identifier value, else Patient.id, else the file's name (RecordID)."""
    ids = [i.get("value") for i in _list(patient.get("identifier")) if isinstance(i, dict)]
    for v in ids + [patient.get("id"), Path(source).stem]:
        if isinstance(v, str) and v.isdigit() and int(v) > 0:
            return int(v)
    raise RecordError(f"{source}: no numeric patient number (Patient.identifier, Patient.id or the file name) "
                      "to use as the record's id")


def _age(birth, start: datetime) -> int:
    try:
        born = date.fromisoformat(birth) if isinstance(birth, str) and len(birth) == 10 else None
    except ValueError:
        born = None
    if born is None:
        return -1  # unknown, as in the challenge files
    return start.year - born.year - ((start.month, start.day) < (born.month, born.day))


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _count(reasons: dict[str, int], why: str) -> None:
    reasons[why] = reasons.get(why, 0) + 1


def _kind(obj) -> str:
    return str(obj.get("resourceType")) if isinstance(obj, dict) else type(obj).__name__


#: The code written for each channel by :func:`record_to_fhir` (the first code read for it) and its unit.
EXPORT = {ch: (code, next(u for u, f in units.items() if f == 1.0))
          for code, (ch, units) in reversed(list(LOINC.items())) if 1.0 in units.values()}


def record_to_fhir(record: Record, start: datetime) -> dict:
    """A record as a FHIR R4 Bundle that :func:`parse_fhir` reads back (hour 0 = ``start``, UTC): Patient,
    Encounter and one Observation per reading of a channel in :data:`LOINC` (the others, e.g. MechVent,
    and the ICU type have no code here and are left out)."""
    rid = str(record.record_id)
    d = record.descriptors

    def obs(code: str, unit: str, minutes: int, value: float) -> dict:
        t = (start + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{rid}"},
                "code": {"coding": [{"system": LOINC_SYSTEM, "code": code}]}, "effectiveDateTime": t,
                "valueQuantity": {"value": value, "system": UCUM_SYSTEM, "code": unit}}

    patient = {"resourceType": "Patient", "id": rid, "identifier": [{"value": rid}]}
    if math.isfinite(d.get("Age", math.nan)):
        patient["birthDate"] = start.date().replace(year=start.year - int(d["Age"]), day=min(start.day, 28)).isoformat()
    if math.isfinite(d.get("Gender", math.nan)):
        patient["gender"] = "male" if d["Gender"] == 1 else "female"
    resources = [patient, {"resourceType": "Encounter", "subject": {"reference": f"Patient/{rid}"},
                           "period": {"start": start.strftime("%Y-%m-%dT%H:%M:%SZ")}}]
    for name in ("Height", "Weight"):
        if math.isfinite(d.get(name, math.nan)):
            resources.append(obs(*EXPORT[name], 0, d[name]))
    resources += [obs(*EXPORT[p], m, v) for m, p, v in record.events if p in EXPORT]
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
