"""Score record files with a vitals bundle: the model's risk and NEWS2 at one hour of each stay.

What ``cxr-model vitals predict`` prints: for each stay, the calibrated risk at the hour asked for
(default: the stay's last observed hour), whether it is at or above the bundle's alert threshold,
the first hour it got there, and NEWS2 from the observations up to that hour.
"""
from __future__ import annotations

import math

from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.lstm import first_crossing
from cxr_model.vitals.news2 import news2_record
from cxr_model.vitals.reader import N_HOURS, Record


def last_hour(record: Record) -> int:
    """The hour (1-48) holding the record's last observation in the first 48 h; 1 for a record without any."""
    last = max((m for m, _, _ in record.events), default=60)
    return min(max(math.ceil(last / 60), 1), N_HOURS)


def predict_records(bundle, records: list[Record], hour: int | None = None) -> list[dict]:
    """One row per record, in order: ``record_id``, ``source``, ``hour``, ``risk``, ``alerting``,
    ``first_alert_hour`` (1-based, up to ``hour``; ``None`` if not crossed by then) and ``news2``
    (``aggregate``, ``level``, ``incomplete``).

    Raises:
        ValueError: ``hour`` outside 1-48.
    """
    if hour is not None and not 1 <= hour <= N_HOURS:
        raise ValueError(f"hour {hour} is outside 1-{N_HOURS}")
    grids = [to_grid(r) for r in records]
    risk = bundle.risk(grids) if grids else []
    rows = []
    for rec, grid, r in zip(records, grids, risk):
        h = hour or last_hour(rec)
        crossed = first_crossing(r[:h], bundle.threshold)
        news2 = news2_record(grid, h)
        rows.append({"record_id": rec.record_id, "source": rec.source, "hour": h, "risk": float(r[h - 1]),
                     "alerting": bool(r[h - 1] >= bundle.threshold),
                     "first_alert_hour": None if crossed is None else crossed + 1,
                     "news2": {k: news2[k] for k in ("aggregate", "level", "incomplete")}})
    return rows
