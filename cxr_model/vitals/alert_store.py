"""Acknowledge / escalate actions on ward alerts, in the same database as the review decisions.

One row per action: who, when, which patient (the record id), which alert (its id and kind) and
what was done, with an optional note. The table is declared on ``db.Base`` (migration 0003) so it lives
beside ``review_decisions`` (same URL from ``Settings.db_url``, same engine); it is self-contained
(no foreign keys) so a migration can add it on its own.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from cxr_model.access import can_review
from cxr_model.db import Base, audit_event, engine_for
from cxr_model.review_store import NOTE_MAX
from cxr_model.settings import get_settings

ACTIONS = ("acknowledge", "escalate")


class AlertAction(Base):
    """One reviewer's action on one ward alert."""

    __tablename__ = "ward_alert_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    reviewer: Mapped[str] = mapped_column(String(120), nullable=False)
    record_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    alert_id: Mapped[str] = mapped_column(String(120), nullable=False, index=True)
    alert_kind: Mapped[str] = mapped_column(String(40), nullable=False)
    action: Mapped[str] = mapped_column(String(20), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")


def _engine(url: str | None):
    return engine_for(url or get_settings().db_url)


def record_action(*, reviewer: str, record_id: int, alert_id: str, alert_kind: str, action: str,
                  note: str = "", role: str = "reviewer", url: str | None = None) -> int:
    """Store one action and its audit row (one transaction: both or neither) and return its id.

    Args:
        reviewer: the signed-in identity (``access.Identity.name``).
        role: the reviewer's role; a ``viewer`` may not act on alerts.

    Raises:
        ValueError: a message a person can act on (no reviewer, unknown action, note too long).
        PermissionError: the role may not acknowledge or escalate.
    """
    reviewer = (reviewer or "").strip()
    if not reviewer:
        raise ValueError("no reviewer: sign in before acknowledging or escalating an alert")
    if not can_review(role):
        raise PermissionError(f"{reviewer} has the role {role!r}, which may read but not act on alerts")
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ValueError(f"the note is {len(note)} characters; at most {NOTE_MAX} are kept")
    row = AlertAction(created_at=datetime.now(timezone.utc), reviewer=reviewer[:120], record_id=int(record_id),
                      alert_id=str(alert_id)[:120], alert_kind=str(alert_kind)[:40], action=action, note=note)
    with Session(_engine(url)) as session, session.begin():
        session.add(row)
        session.flush()
        session.add(audit_event(actor=row.reviewer, role=role, action=f"alert.{action}",
                                subject=f"record {row.record_id}",
                                detail={"action_id": row.id, "alert_id": row.alert_id, "alert_kind": row.alert_kind}))
        return int(row.id)


def actions_for(alert_ids, url: str | None = None) -> dict[str, list[dict]]:
    """Actions on the given alerts, oldest first: ``{alert_id: [{"action", "reviewer", "created_at", "note"}]}``."""
    ids = [str(a) for a in alert_ids]
    if not ids:
        return {}
    out: dict[str, list[dict]] = {a: [] for a in ids}
    with Session(_engine(url)) as session:
        rows = session.scalars(select(AlertAction).where(AlertAction.alert_id.in_(ids)).order_by(AlertAction.id))
        for r in rows:
            out[r.alert_id].append({"action": r.action, "reviewer": r.reviewer, "created_at": r.created_at,
                                    "note": r.note, "record_id": r.record_id, "alert_kind": r.alert_kind})
    return out
