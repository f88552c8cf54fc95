"""The ward: every stay scored at every hour (NEWS2 and LSTM risk), and a snapshot table per hour.

The page lays these out; no model math lives in the page.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxr_model.vitals.grid import Grid, to_grid
from cxr_model.vitals.lstm import first_crossing
from cxr_model.vitals.news2 import News2, news2_grid, news2_inputs
from cxr_model.vitals.reader import Record, channel_names, read_dir
from cxr_model.vitals.splits import read_split

VITAL_CHANNELS = ["HR", "RespRate", "SysABP", "NISysABP", "Temp", "SaO2", "GCS"]


@dataclass
class WardPatient:
    """One stay on the ward.

    Attributes:
        bed: display label.
        grid: the hourly grid.
        news2: NEWS2 per hour.
        risk: ``[48]`` calibrated LSTM risk per hour.
        first_alert: first hour index with risk >= threshold, or ``None``.
    """

    bed: str
    grid: Grid
    news2: News2
    risk: np.ndarray
    first_alert: int | None

    @property
    def record_id(self) -> int:
        return self.grid.record_id

    def hours_since_vitals(self, step: int) -> float:
        """Hours since any bedside vital sign was last observed at ``step``."""
        idx = [channel_names().index(c) for c in VITAL_CHANNELS]
        return float(self.grid.delta[step, idx].min())

    def trend(self, channel: str, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Hourly values of one channel up to ``step`` (inclusive) and where they were observed.

        ``"SBP"`` is the systolic pressure NEWS2 scores (invasive or non-invasive, whichever is more
        recent, see :func:`news2_inputs`), observed when either was measured that hour.

        Returns:
            ``(values, observed)``: float ``[step + 1]`` (carried forward between observations) and a
            ``[step + 1]`` array that is > 0 at observed hours.
        """
        names = channel_names()
        if channel == "SBP":
            values = np.array([news2_inputs(self.grid, t)["systolic_bp"] for t in range(step + 1)])
            observed = (self.grid.mask[: step + 1, names.index("SysABP")]
                        + self.grid.mask[: step + 1, names.index("NISysABP")])
            return values, observed
        return self.grid.values[: step + 1, names.index(channel)], self.grid.mask[: step + 1, names.index(channel)]


def build_ward(records: list[Record], bundle) -> list[WardPatient]:
    grids = [to_grid(r) for r in records]
    risk = bundle.risk(grids)
    return [WardPatient(f"Bed {i + 1:02d}", g, news2_grid(g), risk[i], first_crossing(risk[i], bundle.threshold))
            for i, g in enumerate(grids)]


def has_real_ward(physionet_dir: str | Path, bundle_dir: str | Path) -> bool:
    """PhysioNet set A is present and the bundle names its held-out stays (``splits.csv``)."""
    return (Path(physionet_dir) / "set-a").is_dir() and (Path(bundle_dir) / "splits.csv").exists()


def real_ward_records(physionet_dir: str | Path, bundle, n: int = 30) -> tuple[list[Record], list[str]]:
    """The first ``n`` held-out test stays of the bundle's split, read from ``<dir>/set-a``."""
    ids = read_split(Path(bundle.path) / "splits.csv", "test")[:n]
    return read_dir(Path(physionet_dir) / "set-a", ids)


def snapshot(patients: list[WardPatient], step: int, threshold: float, trend_hours: int = 4) -> list[dict]:
    """One row per patient at hour index ``step``, sorted by current risk (highest first)."""
    rows = []
    for p in patients:
        prev = p.risk[max(0, step - trend_hours)]
        alerting = p.risk[step] >= threshold
        since = p.first_alert if p.first_alert is not None and p.first_alert <= step else None
        rows.append({
            "bed": p.bed, "record_id": p.record_id,
            "news2": int(p.news2.total[step]), "news2_band": p.news2.risk[step],
            "risk": float(p.risk[step]), "trend": float(p.risk[step] - prev),
            "last_obs_h": p.hours_since_vitals(step),
            "alert": ("ALERT" if alerting else "was alerting") if since is not None else "-",
            "alert_since_h": None if since is None else since + 1,
        })
    return sorted(rows, key=lambda r: -r["risk"])
