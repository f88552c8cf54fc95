"""The ward: every stay scored at every hour (NEWS2 and model risk), alerts, and a snapshot table.

Each patient keeps their own clock: the replay runs a ward clock, and patient ``i`` was admitted
``admitted_at`` hours after it started, so their hour of stay is the ward hour minus that offset.
The page lays these out; no model math lives in the page.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cxr_model.vitals.alerts import RANK, Alert, model_alerts, news2_alerts
from cxr_model.vitals.grid import Grid, to_grid
from cxr_model.vitals.lstm import first_crossing
from cxr_model.vitals.news2 import News2, news2_grid, observation_set
from cxr_model.vitals.reader import N_HOURS, Record, channel_names, read_dir
from cxr_model.vitals.splits import read_split

VITAL_CHANNELS = ["HR", "RespRate", "SysABP", "NISysABP", "Temp", "SaO2", "GCS"]
ADMISSION_SPREAD_H = 24  # patients are admitted over the replay's first day


@dataclass
class WardPatient:
    """One stay on the ward.

    Attributes:
        bed: display label.
        grid: the hourly grid.
        news2: NEWS2 per hour (missing parameters score nothing).
        risk: ``[48]`` calibrated model risk per hour.
        first_alert: first hour index with risk >= threshold, or ``None``.
        vital_minutes: sorted minutes since admission of every bedside vital-sign observation.
        admitted_at: ward-clock hour at which this stay's hour 0 starts.
        spo2_scale: the NEWS2 SpO2 scale a clinician chose for this patient (1, or 2 for hypercapnic
            respiratory failure).
    """

    bed: str
    grid: Grid
    news2: News2
    risk: np.ndarray
    first_alert: int | None
    vital_minutes: np.ndarray
    admitted_at: int = 0
    spo2_scale: int = 1

    def with_spo2_scale(self, scale: int) -> "WardPatient":
        """This patient with NEWS2 rescored on SpO2 ``scale`` (itself when unchanged; never mutated)."""
        if scale == self.spo2_scale:
            return self
        return replace(self, news2=news2_grid(self.grid, scale), spo2_scale=scale)

    @property
    def record_id(self) -> int:
        return self.grid.record_id

    def step_at(self, ward_hour: int) -> int | None:
        """0-based hour of stay at ward-clock hour ``ward_hour`` (1-based), ``None`` before admission.

        After 48 h the record ends; the last hour is shown."""
        step = ward_hour - self.admitted_at - 1
        return None if step < 0 else min(step, N_HOURS - 1)

    def minutes_since_vitals(self, step: int) -> int | None:
        """Minutes from the last bedside vital sign to the end of hour ``step``; ``None`` if none yet."""
        end = (step + 1) * 60
        seen = self.vital_minutes[self.vital_minutes <= end]
        return None if seen.size == 0 else int(end - seen[-1])

    def alerts(self, step: int, threshold: float) -> list[Alert]:
        """NEWS2 and model alerts raised up to ``step``, each labelled with its source."""
        return (news2_alerts(self.record_id, self.bed, self.news2.risk, self.news2.total, step)
                + model_alerts(self.record_id, self.bed, self.risk, threshold, step))

    def trend(self, channel: str, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Hourly values of one channel up to ``step`` (inclusive), ``nan`` where not measured that hour.

        ``"SBP"`` is the systolic pressure NEWS2 scores (invasive or non-invasive, whichever is more
        recent). Only measured hours carry a value: nothing is carried forward or defaulted.

        Returns:
            ``(values, observed)``: float ``[step + 1]`` (``nan`` = not measured) and bool ``[step + 1]``.
        """
        names = channel_names()
        if channel == "SBP":
            observed = (self.grid.mask[: step + 1, names.index("SysABP")]
                        + self.grid.mask[: step + 1, names.index("NISysABP")]) > 0
            values = np.array([observation_set(self.grid, t)["systolic_bp"].value if observed[t] else np.nan
                               for t in range(step + 1)], dtype=np.float64)
            return values, observed
        c = names.index(channel)
        observed = self.grid.mask[: step + 1, c] > 0
        return np.where(observed, self.grid.values[: step + 1, c], np.nan).astype(np.float64), observed


def _vital_minutes(record: Record) -> np.ndarray:
    return np.array(sorted(m for m, p, _ in record.events if p in VITAL_CHANNELS), dtype=np.int64)


def build_ward(records: list[Record], bundle) -> list[WardPatient]:
    grids = [to_grid(r) for r in records]
    risk = bundle.risk(grids)
    return [WardPatient(f"Bed {i + 1:02d}", g, news2_grid(g), risk[i], first_crossing(risk[i], bundle.threshold),
                        _vital_minutes(r), (i * 5) % ADMISSION_SPREAD_H)
            for i, (g, r) in enumerate(zip(grids, records))]


def has_real_ward(physionet_dir: str | Path, bundle_dir: str | Path) -> bool:
    """PhysioNet set A is present and the bundle names its held-out stays (``splits.csv``)."""
    return (Path(physionet_dir) / "set-a").is_dir() and (Path(bundle_dir) / "splits.csv").exists()


def real_ward_records(physionet_dir: str | Path, bundle, n: int = 30) -> tuple[list[Record], list[str]]:
    """The first ``n`` held-out test stays of the bundle's split, read from ``<dir>/set-a``."""
    ids = read_split(Path(bundle.path) / "splits.csv", "test")[:n]
    return read_dir(Path(physionet_dir) / "set-a", ids)


def h_min(minutes: int | None) -> str:
    """``125`` -> ``"2 h 05 min"``; ``None`` -> ``"no vitals yet"``."""
    return "no vitals yet" if minutes is None else f"{minutes // 60} h {minutes % 60:02d} min"


def snapshot(patients: list[WardPatient], ward_hour: int, threshold: float, trend_hours: int = 4) -> list[dict]:
    """One row per admitted patient at ward-clock hour ``ward_hour``, most urgent first: by ``severity``
    now (the NEWS2 response level at this hour, 3 high to 1 low-medium; 2 while the model's risk alert
    holds), then by risk. A NEWS2 alert raised at a higher level stays open while the score still
    triggers, but the row is ranked by where the patient is now."""
    rows = []
    for p in patients:
        step = p.step_at(ward_hour)
        if step is None:
            continue
        active = [a for a in p.alerts(step, threshold) if a.active]
        rows.append({
            "bed": p.bed, "record_id": p.record_id, "hour_of_stay": step + 1,
            "news2": int(p.news2.total[step]), "news2_level": p.news2.risk[step],
            "news2_incomplete": bool(p.news2.incomplete[step]),
            "risk": float(p.risk[step]), "trend": float(p.risk[step] - p.risk[max(0, step - trend_hours)]),
            "since_vitals": h_min(p.minutes_since_vitals(step)),
            "alerting": " + ".join(sorted({a.source for a in active})) or "no",
            "severity": max([RANK[p.news2.risk[step]]] + [a.severity for a in active if a.source == "Model"]),
        })
    return sorted(rows, key=lambda r: (-r["severity"], -r["risk"]))
