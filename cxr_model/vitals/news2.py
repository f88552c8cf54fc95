"""NEWS2 from the hourly grid, by the Royal College of Physicians chart (RCP, NEWS2, 2017, Chart 1).

One small function per parameter. Values are first rounded to the chart's resolution (whole
numbers; temperature to 0.1 C), so a band edge means what it says on the chart.

Substitutions forced by the PhysioNet 2012 data (stated wherever NEWS2 is shown):
  * SpO2: arterial SaO2 stands in for pulse-oximetry SpO2; scale 1 is used throughout.
  * Air or oxygen: "oxygen" when FiO2 > 0.21 or the patient is mechanically ventilated.
  * Systolic BP: invasive SysABP, or non-invasive NISysABP when it was measured more recently.
  * Consciousness: GCS < 15 is taken as "not alert" (new confusion, V, P or U: 3 points).
  * A parameter never measured so far carries its normal value (0 points); RespRate is absent for
    ventilated stays, so their respiration scores 0 while oxygen scores 2.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cxr_model.vitals.grid import Grid
from cxr_model.vitals.reader import channel_names

PARAMETERS = ["respiration", "spo2", "air_or_oxygen", "systolic_bp", "pulse", "consciousness", "temperature"]
SUBSTITUTIONS = (
    "SaO2 stands in for SpO2 (scale 1); oxygen = FiO2 > 0.21 or ventilated; "
    "GCS < 15 counts as not alert; a parameter not yet measured scores 0."
)


def score_respiration(rate: float) -> int:
    """Respiration rate (per minute): <=8: 3, 9-11: 1, 12-20: 0, 21-24: 2, >=25: 3."""
    r = round(rate)
    if r <= 8:
        return 3
    if r <= 11:
        return 1
    if r <= 20:
        return 0
    if r <= 24:
        return 2
    return 3


def score_spo2_scale1(spo2: float) -> int:
    """SpO2 scale 1 (%): <=91: 3, 92-93: 2, 94-95: 1, >=96: 0."""
    s = round(spo2)
    if s <= 91:
        return 3
    if s <= 93:
        return 2
    if s <= 95:
        return 1
    return 0


def score_air_or_oxygen(on_oxygen: bool) -> int:
    """Air: 0, oxygen: 2."""
    return 2 if on_oxygen else 0


def score_systolic_bp(sbp: float) -> int:
    """Systolic BP (mmHg): <=90: 3, 91-100: 2, 101-110: 1, 111-219: 0, >=220: 3."""
    s = round(sbp)
    if s <= 90:
        return 3
    if s <= 100:
        return 2
    if s <= 110:
        return 1
    if s <= 219:
        return 0
    return 3


def score_pulse(rate: float) -> int:
    """Pulse (per minute): <=40: 3, 41-50: 1, 51-90: 0, 91-110: 1, 111-130: 2, >=131: 3."""
    p = round(rate)
    if p <= 40:
        return 3
    if p <= 50:
        return 1
    if p <= 90:
        return 0
    if p <= 110:
        return 1
    if p <= 130:
        return 2
    return 3


def score_consciousness(alert: bool) -> int:
    """Alert: 0; new confusion, voice, pain or unresponsive: 3."""
    return 0 if alert else 3


def score_temperature(temp_c: float) -> int:
    """Temperature (C): <=35.0: 3, 35.1-36.0: 1, 36.1-38.0: 0, 38.1-39.0: 1, >=39.1: 2."""
    t = round(temp_c, 1)
    if t <= 35.0:
        return 3
    if t <= 36.0:
        return 1
    if t <= 38.0:
        return 0
    if t <= 39.0:
        return 1
    return 2


def clinical_risk(total: int, any_three: bool) -> str:
    """RCP clinical risk: 'high' (>=7), 'medium' (5-6), 'low-medium' (a single 3), 'low' (0-4)."""
    if total >= 7:
        return "high"
    if total >= 5:
        return "medium"
    if any_three:
        return "low-medium"
    return "low"


RISK_COLOURS = {"low": "#2e7d32", "low-medium": "#f9a825", "medium": "#ef6c00", "high": "#c62828"}


@dataclass
class News2:
    """NEWS2 per hour for one stay.

    Attributes:
        points: ``[48, 7]`` int, points per parameter (columns in ``PARAMETERS`` order).
        total: ``[48]`` int, the aggregate score.
        risk: clinical risk band per hour.
    """

    points: np.ndarray
    total: np.ndarray
    risk: list[str]

    def breakdown(self, step: int) -> dict[str, int]:
        return {p: int(v) for p, v in zip(PARAMETERS, self.points[step])}


def news2_inputs(grid: Grid, step: int) -> dict[str, float | bool]:
    """The seven NEWS2 inputs at one step of the grid (see the module docstring for substitutions)."""
    idx = {n: i for i, n in enumerate(channel_names())}
    v, d = grid.values[step], grid.delta[step]
    ever = grid.mask[: step + 1].max(axis=0) > 0
    use_ni = ever[idx["NISysABP"]] and (not ever[idx["SysABP"]] or d[idx["NISysABP"]] < d[idx["SysABP"]])
    sbp = v[idx["NISysABP"]] if use_ni else v[idx["SysABP"]]
    return {
        "respiration": float(v[idx["RespRate"]]),
        "spo2": float(v[idx["SaO2"]]),
        "air_or_oxygen": bool(v[idx["FiO2"]] > 0.21 + 1e-6 or v[idx["MechVent"]] >= 1),
        "systolic_bp": float(sbp),
        "pulse": float(v[idx["HR"]]),
        "consciousness": bool(v[idx["GCS"]] >= 15),
        "temperature": float(v[idx["Temp"]]),
    }


SCORERS = {
    "respiration": score_respiration,
    "spo2": score_spo2_scale1,
    "air_or_oxygen": score_air_or_oxygen,
    "systolic_bp": score_systolic_bp,
    "pulse": score_pulse,
    "consciousness": score_consciousness,
    "temperature": score_temperature,
}


def news2_grid(grid: Grid) -> News2:
    """NEWS2 at every hour of a stay."""
    n = grid.values.shape[0]
    points = np.zeros((n, len(PARAMETERS)), dtype=np.int64)
    for t in range(n):
        inputs = news2_inputs(grid, t)
        points[t] = [SCORERS[p](inputs[p]) for p in PARAMETERS]
    total = points.sum(axis=1)
    risk = [clinical_risk(int(total[t]), bool((points[t] == 3).any())) for t in range(n)]
    return News2(points, total, risk)


def max_news2(grid: Grid, hours: int) -> int:
    """The highest NEWS2 total in the first ``hours`` hours (the comparator score)."""
    return int(news2_grid(grid).total[:hours].max())


# Chart bands as (low, high, points) on the measured scale, for shading trend plots; the band
# edges sit halfway between the chart's whole numbers (tenths for temperature). A test checks
# that every band agrees with the scoring functions above.
BANDS = {
    "respiration": [(0, 8.5, 3), (8.5, 11.5, 1), (11.5, 20.5, 0), (20.5, 24.5, 2), (24.5, 60, 3)],
    "spo2": [(40, 91.5, 3), (91.5, 93.5, 2), (93.5, 95.5, 1), (95.5, 100, 0)],
    "systolic_bp": [(20, 90.5, 3), (90.5, 100.5, 2), (100.5, 110.5, 1), (110.5, 219.5, 0), (219.5, 300, 3)],
    "pulse": [(0, 40.5, 3), (40.5, 50.5, 1), (50.5, 90.5, 0), (90.5, 110.5, 1), (110.5, 130.5, 2), (130.5, 300, 3)],
    "temperature": [(25, 35.05, 3), (35.05, 36.05, 1), (36.05, 38.05, 0), (38.05, 39.05, 1), (39.05, 45, 2)],
}
POINT_COLOURS = {0: "rgba(0,0,0,0)", 1: "rgba(249,168,37,0.15)", 2: "rgba(239,108,0,0.18)", 3: "rgba(198,40,40,0.18)"}
