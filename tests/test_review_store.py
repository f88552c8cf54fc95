"""Decision store: save and read back, CSV export, validation, no PHI columns."""
from __future__ import annotations

import io

import pandas as pd
import pytest

from cxr_model import review_store as rs

SHA = "ab" * 32


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'nested' / 'reviews.sqlite'}"


def _save(url, **kw):
    args = dict(reviewer="Dr A", image_sha256=SHA, model_id="cxr-pneumonia-resnet18", model_version="1.0.0",
                probability=0.81, threshold=0.5, cam_method="GradCAM", decision="agree", note="", url=url)
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
    ({"reviewer": "  "}, "Reviewer name"),
    ({"decision": "maybe"}, "decision must be one of"),
    ({"image_sha256": "xyz"}, "SHA-256"),
    ({"probability": 1.5}, "outside"),
    ({"note": "x" * (rs.NOTE_MAX + 1)}, "characters"),
])
def test_invalid_decisions_are_refused_with_a_message(url, kw, message):
    with pytest.raises(ValueError, match=message):
        _save(url, **kw)
    assert rs.list_decisions(url).empty
