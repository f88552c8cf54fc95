"""Reviewer decisions on model outputs, stored through SQLAlchemy 2 (SQLite by default).

One row per decision: who reviewed, which image (by its SHA-256 only), which model and output,
which CAM they looked at, and their call. No pixels and no DICOM header values are stored, so the
table holds no PHI (the free-text note is the reviewer's responsibility and is capped in length).
The URL comes from ``Settings.db_url``; any SQLAlchemy URL works (e.g. ``postgresql+psycopg://``),
since only portable column types are used.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Collection
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from sqlalchemy import DateTime, Float, Integer, String, Text, create_engine, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.schema import CreateIndex, CreateTable

from cxr_model.settings import get_settings

DECISIONS = ("agree", "disagree", "uncertain")
NOTE_MAX = 2000
#: Shown instead of a note saved by another session (notes may hold PHI despite the warning).
NOTE_HIDDEN = "(note hidden: saved in another session)"
#: A cell starting with one of these is a formula in spreadsheet programs (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SQLITE_BUSY_TIMEOUT_S = 30.0
COLUMNS = ["id", "created_at", "reviewer", "image_sha256", "model_id", "model_version", "probability",
           "threshold", "cam_method", "decision", "note"]


class Base(DeclarativeBase):
    pass


class Decision(Base):
    """One reviewer's call on one image and model output."""

    __tablename__ = "review_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    reviewer: Mapped[str] = mapped_column(String(120), nullable=False)
    image_sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    model_id: Mapped[str] = mapped_column(String(200), nullable=False)
    model_version: Mapped[str] = mapped_column(String(50), nullable=False)
    probability: Mapped[float] = mapped_column(Float, nullable=False)
    threshold: Mapped[float] = mapped_column(Float, nullable=False)
    cam_method: Mapped[str] = mapped_column(String(40), nullable=False)
    decision: Mapped[str] = mapped_column(String(20), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(url: str) -> Engine:
    """One engine per URL (pooled connections); creates the SQLite folder and the schema once.

    Safe under concurrency: one lock per process makes the first caller create the engine and the
    schema while the others wait, and ``CREATE ... IF NOT EXISTS`` keeps another process doing the
    same at the same moment from failing with "table already exists" (``create_all`` checks, then
    creates: two sessions could both see no table).
    """
    engine = _ENGINES.get(url)
    if engine is not None:
        return engine
    with _ENGINES_LOCK:
        if url not in _ENGINES:
            u = make_url(url)
            connect_args = {}
            if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
                Path(u.database).parent.mkdir(parents=True, exist_ok=True)
                # Writers queue on SQLite's file lock; the 5 s default wait was too short for four
                # sessions saving at once on a busy server ("database is locked").
                connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_S
            engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
            with engine.begin() as conn:
                for table in Base.metadata.sorted_tables:
                    conn.execute(CreateTable(table, if_not_exists=True))
                    for index in sorted(table.indexes, key=lambda i: i.name or ""):
                        conn.execute(CreateIndex(index, if_not_exists=True))
            _ENGINES[url] = engine
        return _ENGINES[url]


def _url(url: str | None) -> str:
    if url:
        return url

    return get_settings().db_url


def save_decision(
    *, reviewer: str, image_sha256: str, model_id: str, model_version: str, probability: float,
    threshold: float, cam_method: str, decision: str, note: str = "", url: str | None = None,
) -> int:
    """Store one decision and return its id.

    Raises:
        ValueError: with a message a person can act on (no reviewer name, unknown decision, ...).
    """
    reviewer = (reviewer or "").strip()
    if not reviewer:
        raise ValueError("enter your name in the sidebar (Reviewer name) before saving a decision")
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
    if not re.fullmatch(r"[0-9a-f]{64}", image_sha256 or ""):
        raise ValueError("image_sha256 must be a 64-character lowercase hex SHA-256")
    if not 0.0 <= float(probability) <= 1.0:
        raise ValueError(f"probability {probability} is outside [0, 1]")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ValueError(f"the note is {len(note)} characters; at most {NOTE_MAX} are kept")
    row = Decision(created_at=datetime.now(timezone.utc), reviewer=reviewer[:120], image_sha256=image_sha256,
                   model_id=model_id, model_version=model_version, probability=float(probability),
                   threshold=float(threshold), cam_method=cam_method, decision=decision, note=note)
    with Session(engine_for(_url(url))) as session, session.begin():
        session.add(row)
        session.flush()
        return int(row.id)


def list_decisions(url: str | None = None, image_sha256: str | None = None,
                   notes_of: Collection[int] | None = None) -> pd.DataFrame:
    """All decisions (or one image's), newest first, with :data:`COLUMNS`; ``created_at`` in UTC.

    Args:
        notes_of: when given, only the notes of these decision ids are returned; every other
            non-empty note reads :data:`NOTE_HIDDEN` (a session sees its own notes only).
    """
    stmt = select(Decision).order_by(Decision.created_at.desc(), Decision.id.desc())
    if image_sha256:
        stmt = stmt.where(Decision.image_sha256 == image_sha256)
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


def neutralise_formula(value):
    """A string cell that a spreadsheet would run as a formula, prefixed with ``'``; others unchanged."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def decisions_csv(url: str | None = None, notes_of: Collection[int] | None = None) -> bytes:
    """CSV export of :func:`list_decisions` (UTF-8, ISO 8601 times), safe to open in a spreadsheet.

    Text cells starting with ``= + - @``, a tab or a carriage return get a leading ``'`` so that
    Excel, LibreOffice or Sheets show them as text instead of evaluating ``=HYPERLINK(...)``.
    """
    df = list_decisions(url, notes_of=notes_of)
    df["created_at"] = df["created_at"].map(lambda t: t.isoformat(timespec="seconds"))
    return df.map(neutralise_formula).to_csv(index=False).encode("utf-8")
