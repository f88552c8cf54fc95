"""The audit trail: record an accountable action, list the trail, export it as CSV.

Rows are :class:`cxr_model.db.AuditEvent` (append-only, in the same database as the decisions).
A decision writes its audit row in its own transaction (``review_store.save_decision``); the other
actions (an alert acknowledged or escalated, a model loaded, a report exported) call
:func:`record`. ``cxr-model audit export`` writes :func:`audit_csv` to a file.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from cxr_model.db import ACTIONS, AuditEvent, audit_event, engine_for
from cxr_model.files import neutralise_formula, write_text
from cxr_model.settings import get_settings

COLUMNS = ["id", "created_at", "actor", "role", "action", "subject", "detail"]

__all__ = ["ACTIONS", "COLUMNS", "record", "list_events", "audit_csv", "export"]


def _url(url: str | None) -> str:
    return url or get_settings().db_url


def record(*, actor: str, role: str, action: str, subject: str, detail: dict | None = None,
           url: str | None = None) -> int:
    """Append one audit row and return its id.

    Args:
        actor: who acted (the signed-in identity, e.g. an e-mail address).
        role: their role at the time (``viewer``, ``reviewer``, ``lead``).
        action: one of :data:`ACTIONS`.
        subject: what it was done to: an image SHA-256, a record id, a model id.
        detail: JSON-serialisable particulars (model version and sha256, decision id, ...).

    Raises:
        ValueError: no actor or an unknown action.
    """
    row = audit_event(actor=actor, role=role, action=action, subject=subject, detail=detail)
    with Session(engine_for(_url(url))) as session, session.begin():
        session.add(row)
        session.flush()
        return int(row.id)


def list_events(url: str | None = None, *, actor: str | None = None, action: str | None = None,
                since: datetime | None = None) -> pd.DataFrame:
    """The trail in the order it was written (oldest first), with :data:`COLUMNS`; times in UTC."""
    stmt = select(AuditEvent).order_by(AuditEvent.id)
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if since is not None:
        stmt = stmt.where(AuditEvent.created_at >= since)
    with Session(engine_for(_url(url))) as session:
        rows = [{c: getattr(e, c) for c in COLUMNS} for e in session.scalars(stmt)]
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True)  # SQLite drops the zone; all written in UTC
    return df


def _csv(df: pd.DataFrame) -> str:
    df = df.copy()
    df["created_at"] = df["created_at"].map(lambda t: t.isoformat(timespec="seconds"))
    return df.map(neutralise_formula).to_csv(index=False)


def audit_csv(url: str | None = None, **filters) -> bytes:
    """CSV of :func:`list_events` (UTF-8, ISO 8601 times), formula cells neutralised with a leading ``'``."""
    return _csv(list_events(url, **filters)).encode("utf-8")


def export(path: Path, url: str | None = None, **filters) -> int:
    """Write :func:`audit_csv` to ``path`` (atomically replaced); returns the number of rows written."""
    df = list_events(url, **filters)
    write_text(Path(path), _csv(df))
    return len(df)
