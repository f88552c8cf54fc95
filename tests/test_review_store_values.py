"""What the decision store keeps, exactly: defaults, boundaries, exact messages, UTC times and the
newest-first order (pinned after mutation testing found them loose)."""
from __future__ import annotations

import io
import re
import time
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from cxr_model import review_store as rs

SHA = "ef" * 32


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'reviews.sqlite'}"


def _save(url, **kw):
    args = dict(reviewer="Dr A", image_sha256=SHA, model_id="m", model_version="1", probability=0.5,
                threshold=0.73, cam_method="GradCAM", decision="agree", url=url, site_profile=None)
    args.update(kw)
    return rs.save_decision(**args)


def test_every_field_is_stored_as_given_and_the_note_defaults_to_empty(url):
    _save(url, reviewer="  Dr A  ", probability=0.25, threshold=0.734, cam_method="EigenCAM", decision="disagree",
          model_id="cxr-pneumonia-resnet18", model_version="1.1.0")
    row = rs.list_decisions(url).iloc[0]
    assert row[["reviewer", "image_sha256", "model_id", "model_version", "cam_method", "decision", "note"]].tolist() == [
        "Dr A", SHA, "cxr-pneumonia-resnet18", "1.1.0", "EigenCAM", "disagree", ""]
    assert (row["probability"], row["threshold"]) == (0.25, 0.734)


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_probabilities_zero_and_one_are_accepted(url, p):
    _save(url, probability=p)
    assert rs.list_decisions(url)["probability"].tolist() == [p]


def test_a_note_of_exactly_the_maximum_is_kept_and_a_long_name_is_cut_to_120(url):
    _save(url, note="n" * rs.NOTE_MAX, reviewer="R" * 130)
    row = rs.list_decisions(url).iloc[0]
    assert len(row["note"]) == rs.NOTE_MAX and row["reviewer"] == "R" * 120


@pytest.mark.parametrize("kw, message", [
    ({"reviewer": None}, "no reviewer: sign in before saving a decision"),
    ({"decision": "maybe"}, "decision must be one of agree, disagree, uncertain, not 'maybe'"),
    ({"image_sha256": SHA.upper()}, "image_sha256 must be a 64-character lowercase hex SHA-256"),
])
def test_refusals_say_exactly_what_to_do(url, kw, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        _save(url, **kw)


def test_times_are_utc_whatever_the_servers_zone(url, monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        before = datetime.now(timezone.utc)
        _save(url)
        after = datetime.now(timezone.utc)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    t = rs.list_decisions(url)["created_at"].iloc[0]
    assert pd.Timestamp(before) - pd.Timedelta(seconds=1) <= t <= pd.Timestamp(after) + pd.Timedelta(seconds=1)


class _Clock:
    """Stands in for ``datetime`` in the store: ``now()`` returns the times given, in turn."""

    def __init__(self, *times):
        self.times = list(times)

    def now(self, tz=None):
        return self.times.pop(0)


def test_newest_first_by_time_then_by_id(url, monkeypatch):
    t0 = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    # saved in the order a, b, c, d; b is stamped before a (a clock step back), c and d at once
    monkeypatch.setattr(rs, "datetime", _Clock(t0, t0 - timedelta(hours=1), t0 + timedelta(hours=1),
                                               t0 + timedelta(hours=1)))
    a, b, c, d = (_save(url, note=n) for n in "abcd")
    assert rs.list_decisions(url)["id"].tolist() == [d, c, a, b]


def test_csv_export_reads_the_store_it_is_given(url, tmp_path, monkeypatch):
    monkeypatch.setenv("CXR_DB_URL", f"sqlite:///{tmp_path / 'default.sqlite'}")  # another, empty store
    _save(url, note="from the given store")
    back = pd.read_csv(io.BytesIO(rs.decisions_csv(url)))
    assert back["note"].tolist() == ["from the given store"]
    assert list(back.columns) == rs.COLUMNS  # no index column
