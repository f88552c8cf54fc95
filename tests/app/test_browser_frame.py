"""Real browser, freshly started server: no page runs outside app.py's frame (sign-in gate, sidebar).

Streamlit also reads the ``pages/`` folder by itself: the first session of a fresh server is offered
that folder's pages by file name, and following such a link runs the page alone: it must still draw
the frame's sign-in gate and sidebar (``dashboard/frame.py``). That needs a server no session has used
yet, so this test starts its own.
"""
from __future__ import annotations

import pytest

from tests.conftest import running_app

pytestmark = pytest.mark.browser
FRAME_CAPTION = "Every output is for a clinician"  # app.py's sidebar; a page run alone lacks it
CENTRED_WIDTH = 736  # px: Streamlit's default ("centered") main column; app.py sets the wide layout


def test_the_first_session_of_a_fresh_server_gets_every_page_inside_the_frame(browser, tmp_path):
    with running_app(tmp_path) as url:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        try:
            page.goto(url, timeout=60_000)
            page.locator("[data-testid='stSidebarNav'] a").first.wait_for(timeout=60_000)
            offered = page.locator("[data-testid='stSidebarNav'] a").all_inner_texts()
            folder_link = page.locator("[data-testid='stSidebarNav'] a", has_text="ward vitals")
            if folder_link.count():  # Streamlit's own link to pages/ward_vitals.py, by file name
                folder_link.first.click()
            else:  # the frame's navigation was already there: the direct address instead
                page.goto(f"{url}/ward_vitals", timeout=60_000)
            page.get_by_text("Patients alerting now").wait_for(timeout=90_000)  # the ward page itself
            page.wait_for_timeout(1500)
            # the frame's gate and sidebar are there, once: drawn by app.py or, run alone, by the page
            assert page.get_by_text(FRAME_CAPTION).count() == 1, offered
            assert page.locator("[data-testid='stException']").count() == 0
        finally:
            page.close()


def test_a_bookmarked_page_on_a_fresh_server_is_served_through_app_py(browser, tmp_path):
    # before any session has opened the root address, a ward bookmarked at /ward_vitals: Streamlit runs
    # the page from the folder; it hands over to app.py's navigation, so the nurse gets the same page with
    # the app's page names and its wide layout (in the narrow one the ward's tables and charts are cut)
    with running_app(tmp_path) as url:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        try:
            page.goto(f"{url}/ward_vitals", timeout=60_000)
            page.get_by_text("Patients alerting now").wait_for(timeout=90_000)
            page.wait_for_timeout(1500)
            links = page.locator("[data-testid='stSidebarNav'] a").all_inner_texts()
            assert [t.split("\n")[-1] for t in links] == ["X-ray review", "Ward vitals", "Evaluation report"], links
            assert page.url.endswith("/ward_vitals")
            assert page.get_by_text(FRAME_CAPTION).count() == 1
            assert page.locator("[data-testid='stMainBlockContainer']").bounding_box()["width"] > CENTRED_WIDTH
            assert page.title() == "Clinician AI dashboard"
            assert page.locator("[data-testid='stException']").count() == 0
        finally:
            page.close()
