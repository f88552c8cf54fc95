"""Ward alerts as a ward runs them: NEWS2 response triggers or the model's risk threshold.

An alert is raised
  * by NEWS2 when its clinical response level rises to low-medium, medium or high (RCP 2017:
    a 3 in one parameter, aggregate 5-6, aggregate 7+): a rise from low, or an escalation from a
    lower trigger level, is a new alert; staying at or falling from a level is the same alert;
  * by the model when its risk crosses the alert threshold from below (or starts above it).
Each alert names its source. Acknowledge/escalate actions are stored by :mod:`alert_store`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RANK = {"low": 0, "low-medium": 1, "medium": 2, "high": 3}
LEVEL_TEXT = {"low-medium": "low-medium (a 3 in one parameter)", "medium": "medium (5-6)", "high": "high (7+)"}


@dataclass(frozen=True)
class Alert:
    """One alert on one patient.

    Attributes:
        alert_id: stable id ``<record>-<kind>-h<hour>`` (what acknowledgements refer to).
        kind: ``"news2-low-medium"``, ``"news2-medium"``, ``"news2-high"`` or ``"model-risk"``.
        source: ``"NEWS2"`` or ``"Model"``.
        hour: hour of stay (1-48) when it was raised.
        active: the trigger still holds at the hour asked about.
        severity: 3 high, 2 medium, 1 low-medium; the model's risk alert counts as 2.
        text: what a person reads.
    """

    alert_id: str
    record_id: int
    bed: str
    kind: str
    source: str
    hour: int
    active: bool
    severity: int
    text: str


def news2_alerts(record_id: int, bed: str, levels: list[str], totals, step: int) -> list[Alert]:
    """NEWS2 alerts raised at hours ``0..step`` (0-based), from the hourly response levels."""
    out, prev = [], 0
    for t in range(step + 1):
        rank = RANK[levels[t]]
        if rank >= 1 and rank > prev:
            out.append([t, levels[t]])
        prev = rank
    alerts = []
    for i, (t, level) in enumerate(out):
        active = i == len(out) - 1 and RANK[levels[step]] >= 1
        alerts.append(Alert(f"{record_id}-news2-{level}-h{t + 1}", record_id, bed, f"news2-{level}", "NEWS2", t + 1,
                            active, RANK[level], f"NEWS2 {int(totals[t])}: response level {LEVEL_TEXT[level]}"))
    return alerts


def model_alerts(record_id: int, bed: str, risk, threshold: float, step: int) -> list[Alert]:
    """Risk alerts raised at hours ``0..step``: each upward crossing of ``threshold``."""
    r = np.asarray(risk[: step + 1], dtype=np.float64)
    above = r >= threshold
    starts = [t for t in range(len(r)) if above[t] and (t == 0 or not above[t - 1])]
    return [Alert(f"{record_id}-model-risk-h{t + 1}", record_id, bed, "model-risk", "Model", t + 1,
                  i == len(starts) - 1 and bool(above[-1]), 2,
                  f"Model risk {100 * r[t]:.0f}% crossed the alert threshold {100 * threshold:.0f}%")
            for i, t in enumerate(starts)]


def still_triggering(alert: Alert, level_now: str) -> str:
    """What the alert list says of an alert at the hour shown: ``"no"``, ``"yes"``, or for an open NEWS2
    alert whose score has since moved to another trigger level, ``"yes, now medium"``."""
    if not alert.active:
        return "no"
    if alert.source == "NEWS2" and RANK[level_now] != alert.severity:
        return f"yes, now {level_now}"
    return "yes"


def sort_alerts(alerts: list[Alert], acknowledged: set[str]) -> list[Alert]:
    """Unacknowledged first; then active before past, higher severity, most recent."""
    return sorted(alerts, key=lambda a: (a.alert_id in acknowledged, not a.active, -a.severity, -a.hour, a.bed))


def status_of(actions: list[dict]) -> str:
    """``"new"``, ``"acknowledged"`` or ``"escalated"`` from an alert's actions (oldest first)."""
    done = {a["action"] for a in actions}
    return "escalated" if "escalate" in done else "acknowledged" if "acknowledge" in done else "new"
