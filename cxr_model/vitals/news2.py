"""NEWS2 per observation set, by the Royal College of Physicians chart (RCP, NEWS2, 2017, Chart 1).

One small function per parameter. Values are first rounded to the chart's resolution (whole
numbers; temperature to 0.1 C), so a band edge means what it says on the chart.

Missing is missing: a parameter with no observation in the last ``WINDOW_H`` hours (12 h, the
RCP's minimum observation frequency for a score of 0-4) scores no points, is reported as missing,
and the aggregate is flagged incomplete. Nothing is filled from normal values.

Stand-ins forced by the PhysioNet 2012 ICU data (named wherever NEWS2 is shown):
  * SpO2: arterial SaO2 stands in for pulse-oximetry SpO2. Scale 1, or scale 2 for a patient with
    hypercapnic respiratory failure, chosen per patient by the clinician (``spo2_scale``).
  * Air or oxygen: FiO2 and mechanical ventilation stand in for the oxygen prescription: oxygen
    when FiO2 > 0.21 or MechVent = 1, air when FiO2 = 0.21 was recorded without ventilation.
  * Consciousness: GCS stands in for ACVPU: GCS 15 is "alert", GCS < 15 "not alert" (3 points).
  * Systolic BP: invasive SysABP, or non-invasive NISysABP when it was measured more recently.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cxr_model.vitals.grid import Grid
from cxr_model.vitals.reader import channel_names

WINDOW_H = 12
PARAMETERS = ["respiration_rate", "spo2", "air_or_oxygen", "systolic_bp", "pulse", "consciousness", "temperature"]
LABELS = {"respiration_rate": "Respiration rate (/min)", "spo2": "SpO2 (%) [stand-in: SaO2]",
          "air_or_oxygen": "Air or oxygen [stand-in: FiO2 / ventilation]", "systolic_bp": "Systolic BP (mmHg)",
          "pulse": "Pulse (/min)", "consciousness": "Consciousness [stand-in: GCS]", "temperature": "Temperature (°C)"}
SOURCES = {"respiration_rate": ["RespRate"], "spo2": ["SaO2"], "air_or_oxygen": ["FiO2", "MechVent"],
           "systolic_bp": ["SysABP", "NISysABP"], "pulse": ["HR"], "consciousness": ["GCS"], "temperature": ["Temp"]}
STAND_INS = (f"SaO2 stands in for SpO2; FiO2 > 0.21 or mechanical ventilation stands in for oxygen; GCS < 15 "
             f"stands in for 'not alert' (CVPU). A parameter not measured in the last {WINDOW_H} h is missing: "
             "it scores nothing and the score is incomplete.")
LEVELS = ["low", "low-medium", "medium", "high"]
#: The aggregate's clinical triggers (RCP 2017): 5 = urgent ward response, 7 = emergency response.
NEWS2_TRIGGERS = (5, 7)
LEVEL_LABELS = {"low": "Low (0-4)", "low-medium": "Low-medium (a 3 in one parameter)", "medium": "Medium (5-6)",
                "high": "High (7 or more)"}
#: The same, short enough for a ward table's column (its header's help spells the rules out).
LEVEL_SHORT = {"low": "Low (0-4)", "low-medium": "Low-medium (one 3)", "medium": "Medium (5-6)", "high": "High (7+)"}
LEVEL_RULES = ("NEWS2 clinical response (RCP 2017): low 0-4; low-medium, a score of 3 in any single parameter; "
               "medium 5-6; high 7 or more")


def score_respiration(rate: float) -> int:
    """Respiration rate (per minute): <=8: 3, 9-11: 1, 12-20: 0, 21-24: 2, >=25: 3."""
    r = round(rate)
    return 3 if r <= 8 else 1 if r <= 11 else 0 if r <= 20 else 2 if r <= 24 else 3


def score_spo2_scale1(spo2: float) -> int:
    """SpO2 scale 1 (%): <=91: 3, 92-93: 2, 94-95: 1, >=96: 0."""
    s = round(spo2)
    return 3 if s <= 91 else 2 if s <= 93 else 1 if s <= 95 else 0


def score_spo2_scale2(spo2: float, on_oxygen: bool | None) -> int | None:
    """SpO2 scale 2 (%), for hypercapnic respiratory failure: <=83: 3, 84-85: 2, 86-87: 1, 88-92: 0,
    >=93 on air: 0; on oxygen 93-94: 1, 95-96: 2, >=97: 3. ``None`` when >=93 and air/oxygen is unknown."""
    s = round(spo2)
    if s <= 92:
        return 3 if s <= 83 else 2 if s <= 85 else 1 if s <= 87 else 0
    if on_oxygen is None:
        return None
    if not on_oxygen:
        return 0
    return 1 if s <= 94 else 2 if s <= 96 else 3


def score_air_or_oxygen(on_oxygen: bool) -> int:
    """Air: 0, oxygen: 2."""
    return 2 if on_oxygen else 0


def score_systolic_bp(sbp: float) -> int:
    """Systolic BP (mmHg): <=90: 3, 91-100: 2, 101-110: 1, 111-219: 0, >=220: 3."""
    s = round(sbp)
    return 3 if s <= 90 else 2 if s <= 100 else 1 if s <= 110 else 0 if s <= 219 else 3


def score_pulse(rate: float) -> int:
    """Pulse (per minute): <=40: 3, 41-50: 1, 51-90: 0, 91-110: 1, 111-130: 2, >=131: 3."""
    p = round(rate)
    return 3 if p <= 40 else 1 if p <= 50 else 0 if p <= 90 else 1 if p <= 110 else 2 if p <= 130 else 3


def score_consciousness(alert: bool) -> int:
    """Alert: 0; new confusion, voice, pain or unresponsive: 3."""
    return 0 if alert else 3


def score_temperature(temp_c: float) -> int:
    """Temperature (C): <=35.0: 3, 35.1-36.0: 1, 36.1-38.0: 0, 38.1-39.0: 1, >=39.1: 2."""
    t = round(temp_c, 1)
    return 3 if t <= 35.0 else 1 if t <= 36.0 else 0 if t <= 38.0 else 1 if t <= 39.0 else 2


def response_level(total: int, any_three: bool) -> str:
    """RCP clinical response: 'high' (>=7), 'medium' (5-6), 'low-medium' (a 3 in one parameter), 'low' (0-4)."""
    urgent, emergency = NEWS2_TRIGGERS
    if total >= emergency:
        return "high"
    if total >= urgent:
        return "medium"
    return "low-medium" if any_three else "low"


RISK_COLOURS = {"low": "#2e7d32", "low-medium": "#f9a825", "medium": "#ef6c00", "high": "#c62828"}


@dataclass
class Observation:
    """One parameter at one observation set: ``value`` and ``points`` are ``None`` when missing."""

    value: float | str | None
    points: int | None
    hours_since_measured: float | None


def _last(grid: Grid, step: int, channel: str) -> tuple[float | None, float | None]:
    """(value, hours since measured) of a channel at ``step``, or (None, None) if none within the window."""
    c = channel_names().index(channel)
    if grid.mask[: step + 1, c].max(initial=0) <= 0 or grid.delta[step, c] > WINDOW_H:
        return None, None
    # float32 grid values, shown to two decimals (37.1, not 37.099998); the chart bands need less
    return round(float(grid.values[step, c]), 2), float(grid.delta[step, c])


def observation_set(grid: Grid, step: int, spo2_scale: int = 1) -> dict[str, Observation]:
    """The seven NEWS2 parameters at hour index ``step`` (0-based), from observations up to it."""
    if spo2_scale not in (1, 2):
        raise ValueError(f"SpO2 scale must be 1 or 2, not {spo2_scale!r}")
    out: dict[str, Observation] = {}
    for name, scorer, channel in (("respiration_rate", score_respiration, "RespRate"), ("pulse", score_pulse, "HR"),
                                  ("temperature", score_temperature, "Temp")):
        v, h = _last(grid, step, channel)
        out[name] = Observation(v, None if v is None else scorer(v), h)
    inv, ni = _last(grid, step, "SysABP"), _last(grid, step, "NISysABP")
    sbp = ni if inv[0] is None or (ni[0] is not None and ni[1] < inv[1]) else inv  # the more recent; tie: invasive
    out["systolic_bp"] = Observation(sbp[0], None if sbp[0] is None else score_systolic_bp(sbp[0]), sbp[1])
    gcs, h = _last(grid, step, "GCS")
    out["consciousness"] = Observation(None if gcs is None else ("alert" if gcs >= 15 else "not alert"),
                                       None if gcs is None else score_consciousness(gcs >= 15), h)
    fio2, hf = _last(grid, step, "FiO2")
    vent, hv = _last(grid, step, "MechVent")
    on_o2 = True if (vent is not None and vent >= 1) or (fio2 is not None and fio2 > 0.21 + 1e-6) else (
        False if fio2 is not None else None)
    hours = min(x for x in (hf, hv, 1e9) if x is not None)
    out["air_or_oxygen"] = Observation(None if on_o2 is None else ("oxygen" if on_o2 else "air"),
                                       None if on_o2 is None else score_air_or_oxygen(on_o2),
                                       None if on_o2 is None else hours)
    s, h = _last(grid, step, "SaO2")
    pts = None if s is None else (score_spo2_scale1(s) if spo2_scale == 1 else score_spo2_scale2(s, on_o2))
    out["spo2"] = Observation(s, pts, h)
    return {p: out[p] for p in PARAMETERS}


@dataclass
class News2:
    """NEWS2 at every hour of a stay.

    Attributes:
        points: ``[48, 7]`` int, points per parameter (``PARAMETERS`` order); -1 where missing.
        total: ``[48]`` int, the aggregate of the points that could be scored.
        risk: response level per hour (``LEVELS``).
        incomplete: ``[48]`` bool, True where any parameter was missing.
    """

    points: np.ndarray
    total: np.ndarray
    risk: list[str]
    incomplete: np.ndarray

    def breakdown(self, step: int) -> dict[str, int | None]:
        return {p: (None if v < 0 else int(v)) for p, v in zip(PARAMETERS, self.points[step])}


def aggregate(obs: dict[str, Observation]) -> dict:
    """``{"aggregate", "level", "incomplete"}`` of one observation set."""
    pts = [o.points for o in obs.values() if o.points is not None]
    total = int(sum(pts))
    return {"aggregate": total, "level": response_level(total, 3 in pts),
            "incomplete": any(o.points is None for o in obs.values())}


def news2_grid(grid: Grid, spo2_scale: int = 1) -> News2:
    """NEWS2 at every hour of a stay."""
    n = grid.values.shape[0]
    points = np.full((n, len(PARAMETERS)), -1, dtype=np.int64)
    levels, incomplete = [], np.zeros(n, dtype=bool)
    for t in range(n):
        obs = observation_set(grid, t, spo2_scale)
        points[t] = [-1 if o.points is None else o.points for o in obs.values()]
        agg = aggregate(obs)
        levels.append(agg["level"])
        incomplete[t] = agg["incomplete"]
    return News2(points, np.where(points < 0, 0, points).sum(axis=1), levels, incomplete)


def news2_record(grid: Grid, hour: int, spo2_scale: int = 1) -> dict:
    """The CLI's JSON at ``hour`` (1-48): observations recorded up to the end of that hour."""
    if not 1 <= hour <= grid.values.shape[0]:
        raise ValueError(f"hour {hour} is outside 1-{grid.values.shape[0]}")
    obs = observation_set(grid, hour - 1, spo2_scale)
    return {"record_id": grid.record_id, "hour": hour,
            "parameters": {p: {"value": o.value, "points": o.points, "hours_since_measured": o.hours_since_measured}
                           for p, o in obs.items()}, **aggregate(obs)}


SCORERS = {"respiration_rate": score_respiration, "spo2": score_spo2_scale1, "systolic_bp": score_systolic_bp,
           "pulse": score_pulse, "temperature": score_temperature}
# Chart bands as (low, high, points) on the measured scale, for shading trend plots; the band
# edges sit halfway between the chart's whole numbers (tenths for temperature). A test checks
# that every band agrees with the scoring functions above.
BANDS = {
    "respiration_rate": [(0, 8.5, 3), (8.5, 11.5, 1), (11.5, 20.5, 0), (20.5, 24.5, 2), (24.5, 60, 3)],
    "spo2": [(40, 91.5, 3), (91.5, 93.5, 2), (93.5, 95.5, 1), (95.5, 100, 0)],
    "systolic_bp": [(20, 90.5, 3), (90.5, 100.5, 2), (100.5, 110.5, 1), (110.5, 219.5, 0), (219.5, 300, 3)],
    "pulse": [(0, 40.5, 3), (40.5, 50.5, 1), (50.5, 90.5, 0), (90.5, 110.5, 1), (110.5, 130.5, 2), (130.5, 300, 3)],
    "temperature": [(25, 35.05, 3), (35.05, 36.05, 1), (36.05, 38.05, 0), (38.05, 39.05, 1), (39.05, 45, 2)],
}
POINT_COLOURS = {0: "rgba(0,0,0,0)", 1: "rgba(249,168,37,0.15)", 2: "rgba(239,108,0,0.18)", 3: "rgba(198,40,40,0.18)"}
