"""Sign-in end to end in a real browser: a local OpenID Connect provider (``oidc-provider-mock`` on
localhost), the app configured for it through a secrets.toml, the decision store on the test's
PostgreSQL server, Debian chromium through Playwright.

signed out -> sign in at the provider -> the reviewer's identity in the sidebar -> a decision saved
under that identity (and audited) -> sign out -> with the provider down, sign-in says so.
"""
from __future__ import annotations

import json
import os

import pytest

from cxr_model import audit
from cxr_model import review_store as rs
from tests.conftest import _free_port, running_app

pytestmark = [pytest.mark.auth, pytest.mark.postgres, pytest.mark.browser]
ANN = {"email": "ann@h.org", "name": "Dr Ann Example", "roles": ["reviewer"]}


@pytest.fixture(scope="module")
def provider():
    """The identity provider, on localhost in this process; yields (issuer URL, stop function)."""
    from oidc_provider_mock import User, run_server_in_thread

    cm = run_server_in_thread(port=0, user_claims=[User(sub="ann-0001", claims=ANN)])
    server = cm.__enter__()
    stopped = []

    def stop():
        if not stopped:
            stopped.append(True)
            cm.__exit__(None, None, None)

    try:
        yield f"http://localhost:{server.server_port}", stop
    finally:
        stop()


@pytest.fixture(scope="module")
def signed_app(provider, pg, tmp_path_factory):
    """``streamlit run app.py`` with sign-in configured for ``provider`` and the store on PostgreSQL."""
    issuer, _ = provider
    port = _free_port()
    db_url = pg.create_database("browser_auth")
    folder = tmp_path_factory.mktemp("signed-app")
    secrets = folder / "secrets.toml"
    secrets.write_text(f"""
[auth]
redirect_uri = "http://localhost:{port}/oauth2callback"
cookie_secret = "test-only-cookie-secret-{os.getpid()}-0123456789"
client_id = "cxr-dashboard"
client_secret = "test-only-secret"
server_metadata_url = "{issuer}/.well-known/openid-configuration"

[roles]
claim = "roles"
reviewer_values = ["reviewer"]
""")
    with running_app(folder, port, {"CXR_DB_URL": db_url}, ("--secrets.files", str(secrets)), host="localhost") as url:
        yield url, db_url


def test_sign_in_review_save_sign_out_and_provider_down(signed_app, provider, browser, kermany_dir, artifacts_dir):
    url, db_url = signed_app
    _, stop_provider = provider
    film = sorted((kermany_dir / "val" / "PNEUMONIA").glob("*.jpeg"))[0]
    page = browser.new_page(viewport={"width": 1400, "height": 1700})
    try:
        # signed out: the sign-in screen only
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("button", name="Sign in").wait_for(timeout=120_000)
        assert page.get_by_text("Chest X-ray review").count() == 0
        assert page.locator("input[type=file]").count() == 0

        # sign in at the provider (its form lists the predefined user by subject)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="ann-0001").click(timeout=60_000)
        page.get_by_text("Signed in as").first.wait_for(timeout=120_000)
        sidebar = page.locator("[data-testid=stSidebar]")
        assert "Dr Ann Example" in sidebar.inner_text() and "ann@h.org" in sidebar.inner_text()
        assert "Role: reviewer" in sidebar.inner_text()
        assert page.locator("[data-testid=stTextInput]").count() == 0  # no free-text name anywhere

        # review a film and save a decision: it is stored under the signed-in identity
        page.locator("input[type=file]").first.set_input_files(str(film))
        page.get_by_text("Your decision").first.wait_for(timeout=240_000)
        page.locator("[data-testid=stRadio]").filter(has_text="Do you agree").get_by_text("agree", exact=True).click()
        page.get_by_label("Note (no patient identifiers)").fill("right lower lobe, agree")
        page.get_by_role("button", name="Save decision").click()
        page.get_by_text("Decision saved as ann@h.org").first.wait_for(timeout=120_000)
        page.get_by_text("Past decisions").first.wait_for(timeout=120_000)
        page.locator("iframe").first.wait_for(timeout=120_000)  # the viewer component is drawn
        assert page.locator("[data-testid=stException]").count() == 0
        page.screenshot(path=str(artifacts_dir / "auth_signed_in.png"), full_page=True)

        saved = rs.list_decisions(db_url)
        assert saved[["reviewer", "decision", "note"]].values.tolist() == [["ann@h.org", "agree",
                                                                            "right lower lobe, agree"]]
        trail = audit.list_events(db_url)
        row = trail[trail["action"] == "decision.save"].iloc[0]
        assert (row["actor"], row["role"]) == ("ann@h.org", "reviewer")
        assert json.loads(row["detail"])["decision_id"] == int(saved["id"].iloc[0])
        # the model was loaded once, by the server's start-up thread (no session there to ask who is
        # signed in), not again on Ann's request
        loads = trail[trail["action"] == "model.load"]
        assert loads["actor"].tolist() == ["dashboard-server"], loads

        # sign out: through the provider's end-session page, back to the sign-in screen
        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("button", name="End session").click(timeout=60_000)
        page.get_by_role("button", name="Sign in").wait_for(timeout=120_000)
        assert page.get_by_text("Signed in as").count() == 0

        # the provider goes down: signing in says so, on the dashboard's own page
        stop_provider()
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Cannot sign in now").first.wait_for(timeout=60_000)
        assert "cannot be reached" in page.get_by_text("Cannot sign in now").first.inner_text()
        page.screenshot(path=str(artifacts_dir / "auth_provider_down.png"), full_page=True)
    finally:
        page.close()
