"""The one database of the dashboard: its declarative base, the append-only audit table, engines
and schema migrations (Alembic, ``cxr_model/migrations``).

Every table lives on :class:`Base` (``review_store.Decision``, :class:`AuditEvent`, the vitals
alert actions) and is created or changed by a migration, never by ``create_all``. The first use of
a URL in a process upgrades its database to the newest revision (``upgrade head``) under a lock,
so several app processes starting at once against one PostgreSQL server, or one SQLite file, do
not race. A database made by the code before migrations existed (``review_decisions`` and no
``alembic_version``) is stamped at the first revision, whose table is exactly that one, and then
upgraded.

Adding a table or column: change the model, then write a revision (see the README, "Database
migrations"); ``tests/test_db.py`` fails while the models and the migrated schema differ.
"""
from __future__ import annotations

import fcntl
import json
import threading
import zlib
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, Integer, String, Text, create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Revision whose schema is the one the pre-migration code created (``review_decisions`` only).
LEGACY_REVISION = "0001_review_decisions"
SQLITE_BUSY_TIMEOUT_S = 30.0
#: Key of the PostgreSQL advisory lock held while one process migrates (any fixed 64-bit number).
_PG_LOCK_KEY = zlib.crc32(b"cxr_model.db.migrate")
ACTIONS = ("decision.save", "alert.acknowledge", "alert.escalate", "model.load", "report.export")


class Base(DeclarativeBase):
    pass


class AuditEvent(Base):
    """One accountable action: who did what, when, on which image hash or record.

    Append-only: the migration installs triggers that refuse ``UPDATE`` and ``DELETE`` on this
    table (SQLite and PostgreSQL alike), so a row, once written, stays as written.
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
    actor: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    action: Mapped[str] = mapped_column(String(40), nullable=False, index=True)
    subject: Mapped[str] = mapped_column(String(200), nullable=False)
    detail: Mapped[str] = mapped_column(Text, nullable=False, default="{}")


def audit_event(*, actor: str, role: str, action: str, subject: str, detail: dict | None = None) -> AuditEvent:
    """A new audit row (not yet added to a session), stamped now in UTC.

    Raises:
        ValueError: no actor, or an action not in :data:`ACTIONS`.
    """
    actor = (actor or "").strip()
    if not actor:
        raise ValueError("an audit event needs the person who acted (no identity)")
    if action not in ACTIONS:
        raise ValueError(f"audit action must be one of {', '.join(ACTIONS)}, not {action!r}")
    return AuditEvent(created_at=datetime.now(timezone.utc), actor=actor[:200], role=role[:20], action=action,
                      subject=str(subject)[:200], detail=json.dumps(detail or {}, sort_keys=True, default=str))


def alembic_config(url: str | None = None) -> Config:
    """Alembic configuration pointing at ``cxr_model/migrations`` (no ini file needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@contextmanager
def _migration_lock(engine: Engine):
    """One migrating process at a time: a lock file beside a SQLite file, an advisory lock on PostgreSQL."""
    u = engine.url
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        with open(f"{u.database}.migrate.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                with engine.begin() as conn:
                    yield conn
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    with engine.begin() as conn:
        if u.get_backend_name() == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        yield conn


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest revision; a pre-migration database is stamped first."""
    with _migration_lock(engine) as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        tables = set(inspect(conn).get_table_names())
        if "alembic_version" not in tables and "review_decisions" in tables:
            command.stamp(cfg, LEGACY_REVISION)
        command.upgrade(cfg, "head")


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at (``None`` before the first migration)."""
    if "alembic_version" not in inspect(conn).get_table_names():
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(url: str) -> Engine:
    """One pooled engine per URL; the first call in a process migrates the database to head.

    Raises:
        sqlalchemy.exc.OperationalError: the database cannot be reached (the engine is not cached,
            so the next call tries again).
    """
    engine = _ENGINES.get(url)
    if engine is not None:
        return engine
    with _ENGINES_LOCK:
        if url not in _ENGINES:
            u = make_url(url)
            connect_args: dict = {}
            if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
                Path(u.database).parent.mkdir(parents=True, exist_ok=True)
                # Writers queue on SQLite's file lock; the 5 s default wait was too short for four
                # sessions saving at once on a busy server ("database is locked").
                connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_S
            elif u.get_backend_name() == "postgresql":
                connect_args["connect_timeout"] = 5  # an unreachable server fails in seconds, not minutes
            engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
            try:
                upgrade(engine)
            except Exception:
                engine.dispose()
                raise
            _ENGINES[url] = engine
        return _ENGINES[url]
