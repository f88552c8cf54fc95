"""Decision store: save and read back, CSV export, validation, no PHI columns."""
from __future__ import annotations

import csv
import io
import json
import re

import pandas as pd
import pytest

from cxr_model import review_store as rs

SHA = "ab" * 32


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'nested' / 'reviews.sqlite'}"


def _save(url, **kw):
    args = dict(reviewer="Dr A", image_sha256=SHA, model_id="cxr-pneumonia-resnet18", model_version="1.0.0",
                probability=0.81, threshold=0.5, cam_method="GradCAM", decision="agree", note="", url=url,
                site_profile=None)
    args.update(kw)
    return rs.save_decision(**args)


def test_save_and_read_back_newest_first(url):
    a = _save(url, decision="agree", note="consolidation right lower lobe")
    b = _save(url, decision="uncertain", reviewer="Dr B", image_sha256="cd" * 32)
    df = rs.list_decisions(url)
    assert list(df["id"]) == [b, a]
    first = df.iloc[1]
    assert (first["reviewer"], first["decision"], first["note"]) == ("Dr A", "agree", "consolidation right lower lobe")
    assert first["probability"] == pytest.approx(0.81)
    assert str(df["created_at"].dt.tz) == "UTC"
    assert list(rs.list_decisions(url, image_sha256=SHA)["id"]) == [a]


def test_csv_export_round_trips(url):
    _save(url, note='comma, "quote"')
    back = pd.read_csv(io.BytesIO(rs.decisions_csv(url)))
    assert list(back.columns) == rs.COLUMNS
    assert back.loc[0, "note"] == 'comma, "quote"'
    assert back.loc[0, "created_at"].endswith("+00:00")


def test_empty_store_gives_empty_frame_with_columns(url):
    df = rs.list_decisions(url)
    assert df.empty and list(df.columns) == rs.COLUMNS


def test_table_has_no_pixel_or_phi_columns(url):
    _save(url)
    cols = {c.lower() for c in rs.Decision.__table__.columns.keys()}
    for bad in ("patient", "name", "birth", "accession", "institution", "pixel", "image_bytes", "physician"):
        assert not any(bad in c for c in cols - {"reviewer"}), bad
    assert cols == set(rs.COLUMNS)


@pytest.mark.parametrize("kw, message", [
    ({"reviewer": "  "}, "sign in"),
    ({"decision": "maybe"}, "decision must be one of"),
    ({"image_sha256": "xyz"}, "SHA-256"),
    ({"probability": 1.5}, "outside"),
    ({"note": "x" * (rs.NOTE_MAX + 1)}, "characters"),
])
def test_invalid_decisions_are_refused_with_a_message(url, kw, message):
    with pytest.raises(ValueError, match=message):
        _save(url, **kw)
    assert rs.list_decisions(url).empty


def _four_threads(url: str, saves: int) -> tuple[list[str], list[int]]:
    """4 threads start together on ``url`` and save ``saves`` decisions each; (failures, ids)."""
    import threading

    start, failures, ids = threading.Barrier(4), [], []
    lock = threading.Lock()

    def worker(t: int) -> None:
        start.wait()  # all four reach the empty database together
        for k in range(saves):
            try:
                rid = _save(url, reviewer=f"Dr {t}", note=f"{t}-{k}")
            except Exception as exc:
                with lock:
                    failures.append(f"{type(exc).__name__}: {exc}")
            else:
                with lock:
                    ids.append(rid)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return failures, ids


def test_four_threads_saving_to_a_fresh_database_lose_nothing(tmp_path):
    """The schema is created once: 0 of 400 concurrent saves fail (was 'table already exists')."""
    url = f"sqlite:///{tmp_path / 'fresh' / 'reviews.sqlite'}"
    failures, ids = _four_threads(url, 100)
    assert failures == []
    df = rs.list_decisions(url)
    assert len(ids) == len(set(ids)) == len(df) == 400
    assert set(df["note"]) == {f"{t}-{k}" for t in range(4) for k in range(100)}


def test_first_saves_racing_on_twenty_fresh_databases_all_succeed(tmp_path):
    """The race is at the very first save: repeat just that moment, 4 threads x 20 new databases."""
    failures = []
    for n in range(20):
        failures += _four_threads(f"sqlite:///{tmp_path / str(n) / 'reviews.sqlite'}", 1)[0]
    assert failures == []


def test_a_viewer_may_not_save_and_nothing_is_stored(url):
    with pytest.raises(PermissionError, match="may read but not save"):
        _save(url, role="viewer")
    assert rs.list_decisions(url).empty


def test_a_reviewer_lists_only_their_own_decisions_when_asked(url):
    a = _save(url, reviewer="a@hospital.org")
    _save(url, reviewer="b@hospital.org")
    assert rs.list_decisions(url, reviewer="a@hospital.org")["id"].tolist() == [a]
    assert len(rs.list_decisions(url)) == 2  # a lead's view
    assert b"b@hospital.org" not in rs.decisions_csv(url, reviewer="a@hospital.org")


@pytest.mark.parametrize("cell", ['=HYPERLINK("https://evil.example","click")', "+1+1", "-2+3", "@SUM(A1)"])
def test_csv_export_neutralises_formula_cells(url, cell):
    _save(url, reviewer=cell, note=cell)
    raw = rs.decisions_csv(url)
    back = pd.read_csv(io.BytesIO(raw), keep_default_na=False)
    assert back.loc[0, "reviewer"] == back.loc[0, "note"] == "'" + cell
    for line in raw.decode().splitlines()[1:]:
        for value in next(csv.reader([line])):
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value


@pytest.mark.parametrize("cell, expected", [("=1+1", "'=1+1"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("@A1", "'@A1"),
                                            ("a=1", "a=1"), ("", ""), (-0.5, -0.5), (3, 3)])
def test_neutralise_formula_prefixes_only_formula_text(cell, expected):
    # save_decision strips names and notes, so tab/CR starts are checked here, on the cell function
    assert rs.neutralise_formula(cell) == expected


def test_csv_export_leaves_ordinary_cells_and_numbers_alone(url):
    _save(url, note="no consolidation = normal", probability=0.25)
    back = pd.read_csv(io.BytesIO(rs.decisions_csv(url)))
    assert back.loc[0, "note"] == "no consolidation = normal"
    assert back.loc[0, "probability"] == pytest.approx(0.25)


def test_a_session_sees_only_its_own_notes_by_default(url):
    mine = _save(url, note="my note")
    theirs = _save(url, note="Jane Doe MRN 0042, looks fine")
    quiet = _save(url, note="")
    df = rs.list_decisions(url, notes_of={mine}).set_index("id")
    assert df.loc[mine, "note"] == "my note"
    assert df.loc[theirs, "note"] == rs.NOTE_HIDDEN
    assert df.loc[quiet, "note"] == ""
    assert "Jane Doe" not in rs.decisions_csv(url, notes_of={mine}).decode()
    assert rs.list_decisions(url).set_index("id").loc[theirs, "note"].startswith("Jane Doe")  # all, when asked


def test_the_site_profile_of_the_call_is_stored_audited_and_exported_in_words(url):
    from cxr_model import audit

    profile_sha = "1a" * 32
    a = _save(url, site_profile="ward-3", site_profile_sha256=profile_sha)
    b = _save(url, site_profile=None)
    df = rs.list_decisions(url).set_index("id")
    assert (df.loc[a, "site_profile"], df.loc[a, "site_profile_sha256"]) == ("ward-3", profile_sha)
    assert df.loc[b, "site_profile"] == "" and pd.isna(df.loc[b, "site_profile_sha256"])
    details = [json.loads(d) for d in audit.list_events(url)["detail"]]
    assert [(d["site_profile"], d["site_profile_sha256"]) for d in details] == [("ward-3", profile_sha), ("", None)]
    back = pd.read_csv(io.BytesIO(rs.decisions_csv(url)), keep_default_na=False).set_index("id")
    assert (back.loc[a, "site_profile"], back.loc[a, "site_profile_sha256"]) == ("ward-3", profile_sha)
    assert (back.loc[b, "site_profile"], back.loc[b, "site_profile_sha256"]) == (rs.NO_PROFILE, "")


@pytest.mark.parametrize("name, sha, message", [
    ("ward-3", None, "expected a profile name and its 64-character SHA-256"),
    ("ward-3", "XYZ", "expected a profile name and its 64-character SHA-256"),
    ("../etc", "1a" * 32, "expected a profile name"),
    (None, "1a" * 32, "SHA-256 was given without the profile's name"),
])
def test_a_site_profile_without_its_hash_or_with_a_bad_name_is_refused(url, name, sha, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _save(url, site_profile=name, site_profile_sha256=sha)
    assert rs.list_decisions(url).empty


def test_the_site_profile_cannot_be_left_out_by_a_caller():
    args = dict(reviewer="Dr A", image_sha256=SHA, model_id="m", model_version="1", probability=0.5, threshold=0.5,
                cam_method="GradCAM", decision="agree")
    with pytest.raises(TypeError, match="site_profile"):
        rs.save_decision(**args)
