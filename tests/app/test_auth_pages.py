"""Sign-in, roles and an unreachable identity provider or database, through the real pages (AppTest).

``at.secrets["auth"]`` turns sign-in on (as ``.streamlit/secrets.toml`` would) and ``at.user`` is
the signed-in person's ID-token claims (``st.user``). The real OpenID Connect flow in a browser is
``test_browser_auth.py``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cxr_model import audit
from cxr_model.settings import PROJECT_ROOT, get_settings
from dashboard.text import unescape

pytestmark = pytest.mark.auth
APP = str(PROJECT_ROOT / "app.py")
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "test-only-cookie-secret-0123",
        "client_id": "cxr-dashboard", "client_secret": "test-only",
        "server_metadata_url": "http://127.0.0.1:1/.well-known/openid-configuration"}  # nothing listens on port 1
ROLES = {"leads": ["lead@h.org"]}


def _app(user: dict | None, timeout: int = 240) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.secrets["auth"] = AUTH
    at.secrets["roles"] = ROLES
    at.user = user if user is not None else {"is_logged_in": False}
    at.run()
    assert not at.exception, at.exception
    return at


def _person(email: str, *roles: str) -> dict:
    return {"is_logged_in": True, "email": email, "name": email.split("@")[0].title(), "sub": email,
            "roles": list(roles)}


def _film(kermany_dir: Path) -> bytes:
    return sorted((kermany_dir / "val" / "PNEUMONIA").glob("*.jpeg"))[0].read_bytes()


def _upload(at, kermany_dir) -> None:
    at.file_uploader(key="xray_upload").upload("film.jpeg", _film(kermany_dir), "image/jpeg")
    at.run()
    assert not at.exception, at.exception


def _decide(at, note: str) -> None:
    at.radio(key="review_decision").set_value("agree")
    at.text_area(key="review_note").input(note)
    at.button(key="review_save").click().run()
    assert not at.exception, at.exception


def _past(at):
    return next(df.value for df in at.dataframe if "note" in df.value.columns)


@pytest.fixture(autouse=True)
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("CXR_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("CXR_DB_URL", raising=False)
    return get_settings().db_url


def test_signed_out_sees_only_the_sign_in_screen_and_an_unreachable_provider_is_named():
    at = _app(None, timeout=60)
    assert [t.value for t in at.title] == ["Clinician AI dashboard"]  # the frame stopped before any page
    assert not at.file_uploader and not at.sidebar.button
    # AppTest re-reads pages/ before every run, so its next runs execute the default page on its own,
    # as a fresh server does for a request of the page's URL: the page first hands the session to
    # app.py's navigation (dashboard/frame.py), then, AppTest having re-read the folder, draws the frame
    # itself; both stop at the sign-in screen
    for _ in range(2):
        at.run()
        assert not at.exception, at.exception
        assert [t.value for t in at.title] == ["Clinician AI dashboard"] and not at.file_uploader
    at.button(key="auth_sign_in").click().run()
    assert not at.exception
    assert any("Cannot sign in now: the sign-in service at 127.0.0.1:1 cannot be reached" in unescape(e.value)
               for e in at.error), [unescape(e.value) for e in at.error]


def test_signed_in_person_is_named_in_the_sidebar_with_a_sign_out_button():
    at = _app(_person("ann@h.org", "reviewer"), timeout=120)
    assert any("Signed in as **Ann** (ann@h.org)" in unescape(m.value) for m in at.sidebar.markdown)
    assert any("Role: reviewer" == c.value for c in at.sidebar.caption)
    assert not at.sidebar.text_input  # no free-text reviewer name
    assert at.sidebar.button(key="auth_sign_out")  # signing out for real: test_browser_auth.py
    assert [t.value for t in at.title] == ["Chest X-ray review"]


def test_a_viewer_reads_but_has_no_save_button(kermany_dir):
    at = _app(_person("vic@h.org"))
    _upload(at, kermany_dir)
    assert any("signed in as a viewer" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "review_save"]


def test_each_reviewer_sees_their_own_decisions_and_a_lead_sees_everyones(kermany_dir, store):
    notes = {}
    for email in ("ann@h.org", "bob@h.org"):
        at = _app(_person(email, "reviewer"))
        _upload(at, kermany_dir)
        _decide(at, f"note of {email}")
        assert any(f"Decision saved as {email}" in unescape(s.value) for s in at.success)
        notes[email] = at
    for email, at in notes.items():
        at.run()
        assert _past(at)["note"].tolist() == [f"note of {email}"]
        assert _past(at)["reviewer"].tolist() == [email]
        assert not [t for t in at.toggle if t.key == "show_all_notes"]  # no way to see the others'
    lead = _app(_person("lead@h.org"))  # a lead by the e-mail list, with no role claim
    lead.toggle(key="show_all_notes").set_value(True).run()
    assert set(_past(lead)["reviewer"]) == {"ann@h.org", "bob@h.org"}
    trail = audit.list_events(store, action="decision.save")
    assert trail["actor"].tolist() == ["ann@h.org", "bob@h.org"] and set(trail["role"]) == {"reviewer"}


def test_database_down_keeps_the_decision_in_the_form_and_it_saves_when_back(kermany_dir, store, monkeypatch):
    at = _app(_person("ann@h.org", "reviewer"))
    _upload(at, kermany_dir)
    monkeypatch.setenv("CXR_DB_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")  # nothing listens
    _decide(at, "right lower lobe consolidation")
    errors = [unescape(e.value) for e in at.error]
    assert any("Not saved: the decision store failed or cannot be reached" in e and "still in the form" in e
               for e in errors)
    assert any("The decision store cannot be reached (postgresql+psycopg" in e for e in errors)
    assert at.radio(key="review_decision").value == "agree"
    assert at.text_area(key="review_note").value == "right lower lobe consolidation"
    monkeypatch.setenv("CXR_DB_URL", store)  # the database is back: the same form saves
    at.button(key="review_save").click().run()
    assert any("Decision saved as ann@h.org" in unescape(s.value) for s in at.success)
    assert _past(at)["note"].tolist() == ["right lower lobe consolidation"]


def test_local_mode_runs_as_one_user_and_says_so(kermany_dir, store, settings, monkeypatch):
    from dashboard import resources

    resources._cxr.clear()  # the model loads again in this test, under its audit trail
    monkeypatch.setattr(resources, "_warm_started", True)  # and on this test's request, not the start-up thread
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    assert not at.exception
    assert any("Single local user" in c.value for c in at.sidebar.caption)
    _upload(at, kermany_dir)
    _decide(at, "")
    assert _past(at)["reviewer"].tolist() == ["local"]
    events = audit.list_events(store)
    assert events["action"].tolist() == ["model.load", "decision.save"]
    assert set(events["actor"]) == {"local"}
    meta = json.loads((settings.cxr_model_dir / "metadata.json").read_text())
    loaded = json.loads(events["detail"].iloc[0])
    assert (events["subject"].iloc[0], loaded["version"], loaded["sha256"]) == (meta["name"], str(meta["version"]),
                                                                                 meta["sha256"])
