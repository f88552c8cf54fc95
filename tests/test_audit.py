"""The audit trail: every kind of action is one row, the export (CSV and CLI) holds them all."""
from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from cxr_model import audit
from cxr_model.cli import main
from tests.test_db import SHA, _save


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'reviews.sqlite'}"


def _trail(url):
    rid = _save(url, reviewer="ann@h.org")
    audit.record(actor="ann@h.org", role="reviewer", action="alert.acknowledge", subject="record 132539",
                 detail={"alert": "NEWS2 >= 7"}, url=url)
    audit.record(actor="bob@h.org", role="lead", action="alert.escalate", subject="record 132539", url=url)
    audit.record(actor="bob@h.org", role="lead", action="model.load", subject="cxr-pneumonia-resnet18",
                 detail={"version": "1.1.0", "sha256": "0f" * 32}, url=url)
    audit.record(actor="=cmd|' /C calc'!A0", role="reviewer", action="report.export", subject=SHA, url=url)
    return rid


def test_each_action_is_one_row_in_the_order_written(url):
    rid = _trail(url)
    df = audit.list_events(url)
    assert df["action"].tolist() == ["decision.save", "alert.acknowledge", "alert.escalate", "model.load",
                                     "report.export"]
    assert json.loads(df["detail"].iloc[0])["decision_id"] == rid and df["subject"].iloc[0] == SHA
    assert json.loads(df["detail"].iloc[3]) == {"version": "1.1.0", "sha256": "0f" * 32}
    assert str(df["created_at"].dt.tz) == "UTC"
    assert audit.list_events(url, actor="bob@h.org")["action"].tolist() == ["alert.escalate", "model.load"]
    assert audit.list_events(url, action="model.load")["actor"].tolist() == ["bob@h.org"]
    later = datetime.now(timezone.utc) + timedelta(minutes=5)
    assert audit.list_events(url, since=later).empty


def test_csv_export_holds_every_row_and_neutralises_formulas(url):
    _trail(url)
    back = pd.read_csv(io.BytesIO(audit.audit_csv(url)), keep_default_na=False)
    assert list(back.columns) == audit.COLUMNS and len(back) == 5
    assert back["actor"].iloc[4] == "'=cmd|' /C calc'!A0"
    assert back["created_at"].str.endswith("+00:00").all()


def test_cli_audit_export_writes_the_file_and_filters(url, tmp_path, capsys):
    _trail(url)
    out = tmp_path / "audit.csv"
    assert main(["audit", "export", "--db", url, "--out", str(out)]) == 0
    assert "5 audit events written" in capsys.readouterr().err
    assert pd.read_csv(out)["action"].tolist()[0] == "decision.save"
    assert main(["audit", "export", "--db", url, "--action", "alert.escalate"]) == 0
    back = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert back["actor"].tolist() == ["bob@h.org"]


def test_cli_db_upgrade_migrates_a_new_database(tmp_path):
    from tests.test_db import HEAD, _revision

    url = f"sqlite:///{tmp_path / 'ops' / 'new.sqlite'}"
    assert main(["db", "upgrade", "--db", url]) == 0
    assert _revision(url) == HEAD
