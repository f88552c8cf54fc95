"""Reviewer decisions on model outputs, stored through SQLAlchemy 2 (SQLite by default).

One row per decision: who reviewed, which image (by its SHA-256 only), which model and output,
which site profile produced that output (name and content SHA-256; ``""`` for the bundled model as
is, NULL for rows saved before migration 0004 recorded it), which CAM they looked at, and their call. No pixels and no DICOM header values are stored, so the
table holds no PHI (the free-text note is the reviewer's responsibility and is capped in length).
The URL comes from ``Settings.db_url``; any SQLAlchemy URL works (SQLite by default, PostgreSQL as
``postgresql+psycopg://``), since only portable column types are used. The table is made by the
migrations (``cxr_model.db``); each saved decision also appends an ``audit_events`` row.
"""
from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime, timezone

import pandas as pd
from sqlalchemy import DateTime, Float, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from cxr_model.access import can_review
from cxr_model.db import Base, audit_event, engine_for
from cxr_model.files import FORMULA_START, neutralise_formula
from cxr_model.settings import get_settings

__all__ = ["Base", "Decision", "engine_for", "save_decision", "list_decisions", "decisions_csv", "neutralise_formula",
           "FORMULA_START", "DECISIONS", "NOTE_MAX", "NOTE_HIDDEN", "COLUMNS", "site_profile_text"]

DECISIONS = ("agree", "disagree", "uncertain")
NOTE_MAX = 2000
#: Shown instead of a note saved by another session (notes may hold PHI despite the warning).
NOTE_HIDDEN = "(note hidden: saved in another session)"
COLUMNS = ["id", "created_at", "reviewer", "image_sha256", "model_id", "model_version", "site_profile",
           "site_profile_sha256", "probability", "threshold", "cam_method", "decision", "note"]
#: A site profile's name (``cxr_model.imaging.site``); the store checks it without importing the model code.
_PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NO_PROFILE = "bundled model (no site profile)"
NOT_RECORDED = "not recorded (saved before site profiles were recorded)"


class Decision(Base):
    """One reviewer's call on one image and model output (created by migration 0001)."""

    __tablename__ = "review_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    reviewer: Mapped[str] = mapped_column(String(120), nullable=False)
    image_sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    model_id: Mapped[str] = mapped_column(String(200), nullable=False)
    model_version: Mapped[str] = mapped_column(String(50), nullable=False)
    #: Site profile of the call (migration 0004): its name, ``""`` for none; NULL in older rows.
    site_profile: Mapped[str | None] = mapped_column(String(64), nullable=True)
    site_profile_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    probability: Mapped[float] = mapped_column(Float, nullable=False)
    threshold: Mapped[float] = mapped_column(Float, nullable=False)
    cam_method: Mapped[str] = mapped_column(String(40), nullable=False)
    decision: Mapped[str] = mapped_column(String(20), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")


def _url(url: str | None) -> str:
    if url:
        return url

    return get_settings().db_url


def save_decision(
    *, reviewer: str, image_sha256: str, model_id: str, model_version: str, probability: float,
    threshold: float, cam_method: str, decision: str, site_profile: str | None,
    site_profile_sha256: str | None = None, note: str = "", role: str = "reviewer", url: str | None = None,
) -> int:
    """Store one decision and its audit row (one transaction: both or neither) and return its id.

    Args:
        reviewer: the signed-in identity (``access.Identity.name``); at most 120 characters kept.
        site_profile: the site profile whose call the reviewer saw, ``None`` for the bundled model
            as is. Required: a caller cannot leave it out by accident.
        site_profile_sha256: that profile's content (``CxrBundle.site_profile_sha256``); required
            with a profile, refused without one.
        role: the reviewer's role; a ``viewer`` may not save.

    Raises:
        ValueError: with a message a person can act on (no reviewer, unknown decision, ...).
        PermissionError: the role may not save decisions.
    """
    reviewer = (reviewer or "").strip()
    if not reviewer:
        raise ValueError("no reviewer: sign in before saving a decision")
    if not can_review(role):
        raise PermissionError(f"{reviewer} has the role {role!r}, which may read but not save decisions")
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
    if not re.fullmatch(r"[0-9a-f]{64}", image_sha256 or ""):
        raise ValueError("image_sha256 must be a 64-character lowercase hex SHA-256")
    if not 0.0 <= float(probability) <= 1.0:
        raise ValueError(f"probability {probability} is outside [0, 1]")
    if site_profile is None:
        if site_profile_sha256 is not None:
            raise ValueError("a site profile SHA-256 was given without the profile's name")
        site_profile = ""
    elif not _PROFILE_NAME.fullmatch(site_profile) or not re.fullmatch(r"[0-9a-f]{64}", site_profile_sha256 or ""):
        raise ValueError(f"site profile {site_profile!r}: expected a profile name and its 64-character SHA-256")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ValueError(f"the note is {len(note)} characters; at most {NOTE_MAX} are kept")
    row = Decision(created_at=datetime.now(timezone.utc), reviewer=reviewer[:120], image_sha256=image_sha256,
                   model_id=model_id, model_version=model_version, site_profile=site_profile,
                   site_profile_sha256=site_profile_sha256, probability=float(probability),
                   threshold=float(threshold), cam_method=cam_method, decision=decision, note=note)
    with Session(engine_for(_url(url))) as session, session.begin():
        session.add(row)
        session.flush()
        session.add(audit_event(actor=row.reviewer, role=role, action="decision.save", subject=image_sha256,
                                detail={"decision_id": row.id, "decision": decision, "model_id": model_id,
                                        "model_version": model_version, "site_profile": site_profile,
                                        "site_profile_sha256": site_profile_sha256, "probability": row.probability,
                                        "threshold": row.threshold, "cam_method": cam_method}))
        return int(row.id)


def list_decisions(url: str | None = None, image_sha256: str | None = None,
                   notes_of: Collection[int] | None = None, reviewer: str | None = None) -> pd.DataFrame:
    """All decisions (or one image's, or one reviewer's), newest first, with :data:`COLUMNS`; times in UTC.

    Args:
        reviewer: only this reviewer's decisions (what a reviewer who is not a lead sees).
        notes_of: when given, only the notes of these decision ids are returned; every other
            non-empty note reads :data:`NOTE_HIDDEN` (a session sees its own notes only).
    """
    stmt = select(Decision).order_by(Decision.created_at.desc(), Decision.id.desc())
    if image_sha256:
        stmt = stmt.where(Decision.image_sha256 == image_sha256)
    if reviewer is not None:
        stmt = stmt.where(Decision.reviewer == reviewer[:120])
    with Session(engine_for(_url(url))) as session:
        rows = [{c: getattr(d, c) for c in COLUMNS} for d in session.scalars(stmt)]
    df = pd.DataFrame(rows, columns=COLUMNS)
    # SQLite drops the zone; every value was written in UTC.
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
    if notes_of is not None:
        own = {int(i) for i in notes_of}
        hide = ~df["id"].isin(own) & (df["note"] != "")
        df.loc[hide, "note"] = NOTE_HIDDEN
    return df


def site_profile_text(name, sha256=None) -> str:
    """A stored ``site_profile`` in words: the name (with the start of its SHA-256 when given),
    :data:`NO_PROFILE` for ``""``, :data:`NOT_RECORDED` for NULL (a row saved before migration 0004)."""
    if name is None or (isinstance(name, float) and name != name):  # NULL, or NaN in a pandas column
        return NOT_RECORDED
    if name == "":
        return NO_PROFILE
    return f"{name} (profile sha256 {sha256[:12]})" if isinstance(sha256, str) and sha256 else str(name)


def decisions_csv(url: str | None = None, notes_of: Collection[int] | None = None,
                  reviewer: str | None = None) -> bytes:
    """CSV export of :func:`list_decisions` (UTF-8, ISO 8601 times), safe to open in a spreadsheet.

    ``site_profile`` is written by :func:`site_profile_text` (the full SHA-256 is its own column).

    Text cells starting with ``= + - @``, a tab or a carriage return get a leading ``'`` so that
    Excel, LibreOffice or Sheets show them as text instead of evaluating ``=HYPERLINK(...)``.
    """
    df = list_decisions(url, notes_of=notes_of, reviewer=reviewer)
    df["created_at"] = df["created_at"].map(lambda t: t.isoformat(timespec="seconds"))
    # in words, so that "no profile" and "not recorded" do not both read as an empty cell
    df["site_profile"] = df["site_profile"].map(site_profile_text).astype(object)
    return df.map(neutralise_formula).to_csv(index=False).encode("utf-8")
