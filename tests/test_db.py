"""Schema migrations: a fresh database reaches head, a pre-migration SQLite file upgrades without
losing a row, the migrated schema is exactly the models, and the audit table refuses changes."""
from __future__ import annotations

import importlib
import re
import sqlite3
from datetime import datetime, timezone

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from cxr_model import audit, db
from cxr_model import review_store as rs
from cxr_model.settings import PROJECT_ROOT

SHA = "ab" * 32
HEAD = ScriptDirectory.from_config(db.alembic_config()).get_current_head()

# The DDL the code before migrations ran (CreateTable/CreateIndex of review_decisions, SQLite dialect),
# written out so that this test keeps meaning what it says when the models change.
LEGACY_DDL = [
    """CREATE TABLE IF NOT EXISTS review_decisions (
        id INTEGER NOT NULL, created_at DATETIME NOT NULL, reviewer VARCHAR(120) NOT NULL,
        image_sha256 VARCHAR(64) NOT NULL, model_id VARCHAR(200) NOT NULL, model_version VARCHAR(50) NOT NULL,
        probability FLOAT NOT NULL, threshold FLOAT NOT NULL, cam_method VARCHAR(40) NOT NULL,
        decision VARCHAR(20) NOT NULL, note TEXT NOT NULL, PRIMARY KEY (id))""",
    "CREATE INDEX IF NOT EXISTS ix_review_decisions_image_sha256 ON review_decisions (image_sha256)",
]


def table_modules() -> list[str]:
    """Every module of the package that declares a table on ``db.Base`` (found by reading the source)."""
    found = []
    for path in sorted((PROJECT_ROOT / "cxr_model").rglob("*.py")):
        if "migrations" not in path.parts and re.search(r"^class \w+\(Base\):", path.read_text(), re.M):
            found.append(".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts))
    return found


for _module in table_modules():  # every table joins the metadata, whichever tests ran before
    importlib.import_module(_module)


def _save(url, **kw):
    args = dict(reviewer="Dr A", image_sha256=SHA, model_id="cxr-pneumonia-resnet18", model_version="1.1.0",
                probability=0.81, threshold=0.5, cam_method="GradCAM", decision="agree", note="", url=url,
                site_profile=None)
    args.update(kw)
    return rs.save_decision(**args)


def _schema_diff(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.Base.metadata)
    finally:
        engine.dispose()


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return db.current_revision(conn)
    finally:
        engine.dispose()


def test_a_fresh_sqlite_database_is_migrated_to_head_and_matches_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'new' / 'reviews.sqlite'}"
    _save(url)
    assert HEAD == "0004_decision_site_profile"
    assert _revision(url) == HEAD
    assert _schema_diff(url) == []


def test_alembic_env_imports_every_module_that_declares_a_table():
    env = (db.MIGRATIONS_DIR / "env.py").read_text()
    imported = set(re.findall(r"^from (cxr_model[\w.]*) import ([\w, ]+)", env, re.M))
    names = {f"{pkg}.{m.strip()}" for pkg, mods in imported for m in mods.split(",")} | {p for p, _ in imported}
    assert {"cxr_model.review_store", "cxr_model.db"} <= set(table_modules())
    assert set(table_modules()) <= names, "add the module to cxr_model/migrations/env.py (autogenerate sees it)"


def test_a_database_made_before_migrations_is_stamped_and_upgraded_keeping_its_rows(tmp_path):
    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    for ddl in LEGACY_DDL:
        con.execute(ddl)
    con.execute("INSERT INTO review_decisions (created_at, reviewer, image_sha256, model_id, model_version, "
                "probability, threshold, cam_method, decision, note) VALUES "
                "('2026-01-02 03:04:05.000000', 'Dr Old', ?, 'm', '1.0.0', 0.7, 0.5, 'GradCAM', 'agree', 'kept')",
                (SHA,))
    con.commit()
    con.close()
    url = f"sqlite:///{path}"
    new = _save(url, reviewer="Dr New")
    df = rs.list_decisions(url)
    assert list(df["reviewer"]) == ["Dr New", "Dr Old"]
    assert df.set_index("id").loc[1, "note"] == "kept" and new == 2
    assert _revision(url) == HEAD
    assert _schema_diff(url) == []
    assert audit.list_events(url)["subject"].tolist() == [SHA]  # the new save is audited


def test_an_existing_database_at_head_is_left_as_it_is(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    _save(url)
    db._ENGINES.pop(url).dispose()  # a second process opening the same file
    _save(url, decision="disagree")
    assert list(rs.list_decisions(url)["decision"]) == ["disagree", "agree"]
    assert _revision(url) == HEAD


def test_every_revision_downgrades_and_upgrades_again(tmp_path):
    from alembic import command

    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    cfg = db.alembic_config(url)
    command.upgrade(cfg, "head")
    command.downgrade(cfg, "base")
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()
    command.upgrade(cfg, "head")
    assert _schema_diff(url) == []


@pytest.mark.parametrize("statement", ["UPDATE audit_events SET actor = 'someone else'", "DELETE FROM audit_events"])
def test_the_audit_trail_refuses_updates_and_deletes_on_sqlite(tmp_path, statement):
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    _save(url)
    with pytest.raises(DBAPIError, match="append-only"), db.engine_for(url).begin() as conn:
        conn.execute(text(statement))
    assert audit.list_events(url)["actor"].tolist() == ["Dr A"]


def test_the_unreachable_database_raises_and_is_tried_again_next_time(tmp_path):
    url = f"sqlite:///{tmp_path / 'file-not-folder'}/r.sqlite"
    (tmp_path / "file-not-folder").write_text("a file where the folder should be")
    with pytest.raises(OSError):
        _save(url)
    assert url not in db._ENGINES
    (tmp_path / "file-not-folder").unlink()
    _save(url)
    assert len(rs.list_decisions(url)) == 1


def test_audit_event_needs_an_actor_and_a_known_action():
    with pytest.raises(ValueError, match="no identity"):
        db.audit_event(actor=" ", role="reviewer", action="decision.save", subject=SHA)
    with pytest.raises(ValueError, match="audit action must be one of"):
        db.audit_event(actor="a", role="reviewer", action="decision.delete", subject=SHA)
    e = db.audit_event(actor="a", role="lead", action="model.load", subject="m", detail={"sha256": "00"})
    assert e.detail == '{"sha256": "00"}' and e.created_at.tzinfo is timezone.utc
    assert abs((datetime.now(timezone.utc) - e.created_at).total_seconds()) < 60


def rows_at_0003(url: str) -> None:
    """A database at revision 0003 holding one decision, as saved before the site profile was recorded."""
    from alembic import command

    command.upgrade(db.alembic_config(url), "0003_ward_alert_actions")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO review_decisions (created_at, reviewer, image_sha256, model_id, model_version, "
                          "probability, threshold, cam_method, decision, note) VALUES (:t, 'Dr Old', :sha, 'm', "
                          "'2.0.0', 0.7, 0.5, 'GradCAM', 'agree', 'kept')"),
                     {"t": datetime(2026, 11, 29, 3, 4, 5, tzinfo=timezone.utc), "sha": SHA})
    engine.dispose()


def check_0004_keeps_old_rows(url: str) -> None:
    """After the upgrade: the old row is whole and reads 'not recorded'; new rows hold the profile or ''."""
    profile_sha = "0f" * 32
    new = _save(url, reviewer="Dr New", site_profile="ward-3", site_profile_sha256=profile_sha)
    bundled = _save(url, reviewer="Dr Bundled")
    assert _revision(url) == HEAD and _schema_diff(url) == []
    df = rs.list_decisions(url).set_index("id")
    old = df.loc[1]
    assert (old["reviewer"], old["note"], old["model_version"], old["probability"]) == ("Dr Old", "kept", "2.0.0", 0.7)
    assert pd.isna(old["site_profile"]) and pd.isna(old["site_profile_sha256"])  # NULL: not ""
    assert (df.loc[new, "site_profile"], df.loc[new, "site_profile_sha256"]) == ("ward-3", profile_sha)
    assert df.loc[bundled, "site_profile"] == "" and pd.isna(df.loc[bundled, "site_profile_sha256"])
    words = {i: rs.site_profile_text(r["site_profile"], r["site_profile_sha256"]) for i, r in df.iterrows()}
    assert words == {1: rs.NOT_RECORDED, new: "ward-3 (profile sha256 0f0f0f0f0f0f)", bundled: rs.NO_PROFILE}


def test_0004_adds_the_site_profile_and_keeps_the_rows_saved_before_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'at0003.sqlite'}"
    rows_at_0003(url)
    assert _revision(url) == "0003_ward_alert_actions"
    check_0004_keeps_old_rows(url)
