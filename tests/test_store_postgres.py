"""The decision store and audit trail on a real PostgreSQL server (``pg`` fixture: Debian's
postgresql started for the session), including several processes writing at once."""
from __future__ import annotations

import json
import multiprocessing as mp
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from cxr_model import audit, db
from cxr_model import review_store as rs
from tests.test_db import HEAD, _revision, _save, _schema_diff

pytestmark = pytest.mark.postgres

PROCESSES, SAVES = 4, 25


@pytest.fixture
def url(pg, request):
    """A new empty database on the session's server for each test."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    return pg.create_database(name)


def test_store_runs_on_postgres_migrated_to_head_with_utc_times(url):
    assert url.startswith("postgresql+psycopg://")
    a = _save(url, note="consolidation right lower lobe")
    b = _save(url, reviewer="Dr B", decision="uncertain", image_sha256="cd" * 32)
    df = rs.list_decisions(url)
    assert list(df["id"]) == [b, a]
    assert str(df["created_at"].dt.tz) == "UTC"
    assert df.set_index("id").loc[a, "note"] == "consolidation right lower lobe"
    assert list(rs.list_decisions(url, reviewer="Dr B")["id"]) == [b]
    assert _revision(url) == HEAD
    assert _schema_diff(url) == []
    events = audit.list_events(url)
    assert events["action"].tolist() == ["decision.save"] * 2 and events["actor"].tolist() == ["Dr A", "Dr B"]


@pytest.mark.parametrize("statement", ["UPDATE audit_events SET actor = 'x'", "DELETE FROM audit_events",
                                       "TRUNCATE audit_events"])
def test_the_audit_trail_refuses_changes_on_postgres(url, statement):
    _save(url)
    with pytest.raises(DBAPIError, match="append-only"), db.engine_for(url).begin() as conn:
        conn.execute(text(statement))
    assert len(audit.list_events(url)) == 1


def _worker(url: str, worker: int, go, out) -> None:
    go.wait(60)  # every process reaches the empty database at once: the migration itself races
    failures, ids = [], []
    for k in range(SAVES):
        try:
            ids.append(_save(url, reviewer=f"Dr {worker}", note=f"{worker}-{k}"))
            audit.record(actor=f"Dr {worker}", role="reviewer", action="alert.acknowledge", subject=f"rec-{k}",
                         url=url)
        except Exception as exc:  # reported to the parent, which asserts there are none
            failures.append(f"{type(exc).__name__}: {exc}")
    out.put((worker, ids, failures))


def test_four_processes_writing_to_a_fresh_postgres_database_lose_nothing(url):
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, w, go, out)) for w in range(PROCESSES)]
    for p in procs:
        p.start()
    time.sleep(0.5)  # not an assertion: lets the interpreters finish importing before the start signal
    go.set()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(60)
    assert [f for _, _, f in results for f in f] == []
    ids = [i for _, got, _ in results for i in got]
    df = rs.list_decisions(url)
    assert len(ids) == len(set(ids)) == len(df) == PROCESSES * SAVES
    assert set(df["note"]) == {f"{w}-{k}" for w in range(PROCESSES) for k in range(SAVES)}
    events = audit.list_events(url)
    assert (events["action"] == "decision.save").sum() == (events["action"] == "alert.acknowledge").sum() == 100
    saved = {json.loads(d)["decision_id"] for d in events.loc[events["action"] == "decision.save", "detail"]}
    assert saved == set(ids)
    assert _revision(url) == HEAD


def test_an_unreachable_postgres_server_raises_an_operational_error_and_caches_nothing(pg):
    dead = pg.url().replace(f":{pg.port}/", ":1/")  # nothing listens on port 1
    with pytest.raises(OperationalError):
        _save(dead)
    assert dead not in db._ENGINES  # the next call tries the server again


def test_a_decision_and_its_audit_row_commit_together_or_not_at_all(url, monkeypatch):
    def broken(**kw):
        e = db.audit_event(**kw)
        e.actor = None  # NOT NULL: the audit insert fails inside the decision's transaction
        return e

    monkeypatch.setattr(rs, "audit_event", broken)
    with pytest.raises(DBAPIError):
        _save(url)
    monkeypatch.undo()
    assert rs.list_decisions(url).empty and audit.list_events(url).empty


def test_0004_adds_the_site_profile_and_keeps_old_rows_on_postgres(url):
    from tests.test_db import check_0004_keeps_old_rows, rows_at_0003

    rows_at_0003(url)
    assert _revision(url) == "0003_ward_alert_actions"
    check_0004_keeps_old_rows(url)
