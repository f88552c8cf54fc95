"""Hostile input through the pages: Markdown in file names, PHI by default,
oversized uploads, burned-in text, and an evaluation run crafted to show server files.

Each test drives the real page with AppTest (real Kermany films and RSNA DICOMs from the shared
data) and asserts what a user would see.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cxr_model.settings import PROJECT_ROOT
from dashboard.text import plain, unescape

APP = str(PROJECT_ROOT / "app.py")
EVIL = "[Sign in again](https://evil.example) ![b](https://evil.example/beacon.png)"
#: Markdown that would render as a link or an image, or a bare URL that GFM would turn into a link.
LINK_MARKUP = re.compile(r"!?\[[^\]]*\]\(|https?://|www\.")


def _markdown_bodies(at) -> list[str]:
    """The Markdown source of every element that renders Markdown."""
    kinds = ("error", "warning", "info", "success", "caption", "markdown", "subheader", "title", "header")
    return [str(el.value) for kind in kinds for el in at.get(kind)]


def _rendered_links(md: str) -> list[str]:
    """Link/image/autolink markup Markdown would render: escaped characters cannot take part."""
    return LINK_MARKUP.findall(re.sub(r"\\[!-/:-@\[-`{-~]", "\x00", md))


def _everything_shown(at) -> str:
    """Text of the page a user can read: Markdown elements, tables, widget options and values."""
    parts = [unescape(m) for m in _markdown_bodies(at)]
    parts += [df.value.to_csv() for df in at.dataframe]
    for sb in at.selectbox:
        parts += [str(o) for o in sb.options]
    return "\n".join(parts)


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("CXR_STATE_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    assert not at.exception
    return at


def _film(kermany_dir: Path, i: int = 0) -> bytes:
    return sorted((kermany_dir / "val" / "PNEUMONIA").glob("*.jpeg"))[i].read_bytes()


# ------------------------------------------------------------------------------- Markdown names
def test_file_names_with_markdown_show_as_plain_text(app, kermany_dir):
    at = app
    up = at.file_uploader(key="xray_upload")
    up.upload(f"{EVIL}.png", b"\x89PNG\r\n\x1a\n not really a png", "image/png")  # its error names it
    up.upload(f"{EVIL} 2.jpeg", _film(kermany_dir), "image/jpeg")  # a good film under the same kind of name
    at.run()
    at.toggle(key="show_phi").set_value(True).run()  # file names shown: the case where they reach the page
    assert not at.exception
    bodies = _markdown_bodies(at)
    assert [b for b in bodies if _rendered_links(b)] == []
    errors = [e.value for e in at.error]
    assert any(plain(EVIL) in e for e in errors)  # named, escaped
    assert any(unescape(e).startswith("Study 1 (sha ") and EVIL in unescape(e) for e in errors)
    assert "P(pneumonia)" in {m.label for m in at.metric}  # the good film still scored


# ----------------------------------------------------------------------------------- PHI defaults
def _in_scope_rsna(dicom_dir: Path, bundle) -> Path:
    """The first RSNA DICOM the OOD check keeps in scope (the page shows no map or download for the others)."""
    from cxr_model.imaging.ood import load_ood
    from cxr_model.imaging.review import analyse_study

    ood = load_ood(bundle)
    return next(f for f in sorted((dicom_dir / "rsna").glob("*.dcm"))
                if not analyse_study(bundle, f.read_bytes(), f.name, "GradCAM", ood).ood_flag)


def _dicom_with(dicom_dir: Path, bundle, **attrs) -> bytes:
    ds = pydicom.dcmread(_in_scope_rsna(dicom_dir, bundle))
    for k, v in attrs.items():
        setattr(ds, k, v)
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


def _overlay_download(at):
    return next(b for b in at.get("download_button") if b.key == "download_overlay")


def test_file_name_and_identifying_dicom_fields_are_hidden_by_default(app, dicom_dir, cxr_bundle):
    at = app
    name = "Doe_Jane_MRN-0042.dcm"
    at.file_uploader(key="xray_upload").upload(
        name, _dicom_with(dicom_dir, cxr_bundle, PatientAge="034Y", PatientName="Doe^Jane", BurnedInAnnotation="YES"),
        "application/dicom")
    at.run()
    assert not at.exception
    shown = _everything_shown(at)
    for secret in ("Doe_Jane", "MRN-0042", "Doe^Jane", "034Y"):
        assert secret not in shown, secret
    assert re.search(r"Study 1 \(sha [0-9a-f]{6}\)", shown)
    header = next(df.value for df in at.dataframe if "field" in df.value.columns)
    assert header.set_index("field").loc["PatientAge", "value"].startswith("•")
    # burned-in text: a warning, and no overlay download unless identifying information is shown
    assert any("burned-in annotation" in w.value for w in at.warning)
    assert _overlay_download(at).disabled

    at.toggle(key="show_phi").set_value(True).run()
    assert not at.exception
    shown = _everything_shown(at)
    assert name in shown and "034Y" in shown
    assert not _overlay_download(at).disabled


# ------------------------------------------------------------------------------ notes per person
# Each signed-in person sees their own decisions and notes only; a lead may see everyone's:
# tests/app/test_auth_pages.py::test_each_reviewer_sees_their_own_decisions_and_a_lead_sees_everyones


# --------------------------------------------------------------------------------- upload pixels
def test_upload_over_the_pixel_budget_refuses_the_extra_files_and_scores_the_rest(app, kermany_dir, monkeypatch):
    import cxr_model.imaging.review as review

    films = [_film(kermany_dir, i) for i in range(3)]
    px = [Image.open(io.BytesIO(f)).size for f in films]
    monkeypatch.setattr(review, "UPLOAD_MAX_PIXELS", px[0][0] * px[0][1] + px[1][0] * px[1][1])  # room for two
    at = app
    up = at.file_uploader(key="xray_upload")
    for i, f in enumerate(films):
        up.upload(f"film{i}.jpeg", f, "image/jpeg")
    at.run()
    assert not at.exception
    studies = next(df.value for df in at.dataframe if "study" in df.value.columns)
    assert (studies["status"] != "failed").tolist() == [True, True, False]
    refused = [unescape(e.value) for e in at.error]
    assert len(refused) == 1 and refused[0].startswith("Study 3 (sha ") and "MP limit per upload" in refused[0]


# ------------------------------------------------------------------------------ evaluation page
def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)).save(path)
    return path


def test_evaluation_page_offers_only_runs_folder_runs_and_shows_no_outside_image(tmp_path, monkeypatch):
    runs, secret = tmp_path / "runs", _png(tmp_path / "secret" / "private.png")
    monkeypatch.setenv("CXR_RUNS_DIR", str(runs))
    crafted = runs / "crafted"
    crafted.mkdir(parents=True)
    rows = [str(secret), "../../secret/private.png", "/etc/passwd", "/proc/self/environ", "tmp/../etc/hostname"]
    (crafted / "predictions.csv").write_text("path,label,probability\n"
                                             + "".join(f"{p},0,0.99\n" for p in rows) + "ok.png,1,0.9\nok2.png,0,0.1\n")
    (crafted / "metrics.json").write_text(json.dumps({"data": "/", "threshold": 0.5}))  # tries to widen the roots
    (tmp_path / "elsewhere" / "run").mkdir(parents=True)
    (tmp_path / "elsewhere" / "run" / "predictions.csv").write_text("path,label,probability\n")
    (runs / "linked").symlink_to(tmp_path / "elsewhere" / "run")

    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    at.switch_page("pages/evaluation_report.py").run()
    assert not at.exception
    assert not at.text_input  # no free path on the page
    assert at.selectbox(key="eval_run").options == ["crafted"]
    at.selectbox(key="eval_run").set_value("crafted").run()
    assert not at.exception
    assert len(at.get("image")) == 0  # none of the five false positives is read
    captions = [c for c in (unescape(c.value) for c in at.caption) if c.startswith("P(pneumonia)")]
    assert len(captions) == len(rows) and all("image file not found" in c for c in captions)
    assert not any("cannot be read" in c or "not a" in c for c in captions)  # nothing said about what exists
