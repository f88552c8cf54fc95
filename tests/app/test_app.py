"""The frame: navigation to every page, the shared sidebar, and the served app's health check."""
from __future__ import annotations

import urllib.request

import pytest
from streamlit.testing.v1 import AppTest

from cxr_model.settings import PROJECT_ROOT

PAGES = ["pages/xray_review.py", "pages/ward_vitals.py", "pages/evaluation_report.py"]


@pytest.fixture()
def app(kermany_dir):
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def test_sidebar_says_decision_support_and_who_is_reviewing(app):
    assert any("Decision support, not a diagnosis" in c.value for c in app.sidebar.caption)
    assert any("Single local user" in c.value for c in app.sidebar.caption)  # no secrets.toml: one local user
    assert not app.sidebar.text_input  # no free-text reviewer name


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_exception(app, page):
    app.switch_page(page).run()
    assert not app.exception, app.exception
    assert app.title, f"{page} shows no title"


def test_served_app_answers_health_check(streamlit_server):
    assert urllib.request.urlopen(f"{streamlit_server}/_stcore/health", timeout=5).read() == b"ok"
