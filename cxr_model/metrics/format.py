"""Numbers as text for tables, cards and reports, and nested metric groups as rows."""
from __future__ import annotations

import math


# ----------------------------------------------------------------------------------- HTML pieces
def fmt(v, digits: int = 3) -> str:
    """A number for a table: ``n/a`` for nan/None, integers as integers."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, bool) or isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(x is None or isinstance(x, (int, float)) for x in v):
        # an interval; strict JSON stores an undefined one as [null, null]
        return "n/a" if any(x is None or math.isnan(float(x)) for x in v) else f"{v[0]:.{digits}f}-{v[1]:.{digits}f}"
    return str(v)


def fmt_metric(v, digits: int = 3) -> str:
    """A metric for a model card: ``n/a`` for None, nan and inf, else fixed-point (ints too)."""
    if v is None or not math.isfinite(float(v)):
        return "n/a"
    return f"{float(v):.{digits}f}"


def fmt_threshold(v, digits: int = 3) -> str:
    """An alert threshold: a whole-number score (NEWS2 5, SAPS-I 21) as that number, a risk as ``0.312``."""
    if v is None or not math.isfinite(float(v)):
        return "n/a"
    return str(int(v)) if float(v).is_integer() and abs(float(v)) >= 1 else f"{float(v):.{digits}f}"


def fmt_lead_time(hours) -> str:
    """Hours from first alert to death, with days beside them (deaths come days after a 48 h window):
    ``167 (7.0 days)``; ``-`` where no death had a lead time."""
    if hours is None or not math.isfinite(float(hours)):
        return "-"
    return f"{float(hours):.0f} ({float(hours) / 24:.1f} days)"


def vitals_groups(metrics: dict, prefix: str = "") -> list[dict]:
    """Flatten a vitals metrics dict into rows, one per group that has an ``auroc``.

    Accepts ``cxr-model vitals evaluate``'s metrics.json (groups ``lstm_24h``, ``news2_48h``,
    ``saps1``, ...) or a model card's ``metrics`` block, nested any depth.
    """
    rows = []
    for k, v in metrics.items():
        if not isinstance(v, dict):
            continue
        name = f"{prefix}{k}"
        if "auroc" in v:
            rows.append({"group": name, **{m: x for m, x in v.items() if isinstance(x, (int, float, list, str))}})
        else:
            rows.extend(vitals_groups(v, prefix=f"{name} / "))
    return rows
