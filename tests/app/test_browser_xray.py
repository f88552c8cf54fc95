"""Real browser (Debian chromium via Playwright): upload a radiograph, see the overlay, keep a screenshot."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_upload_radiograph_shows_probability_and_overlay(streamlit_server, browser, kermany_dir, artifacts_dir):
    f = sorted((kermany_dir / "val" / "PNEUMONIA").glob("*.jpeg"))[0]
    page = browser.new_page(viewport={"width": 1400, "height": 1700})
    try:
        page.goto(streamlit_server, wait_until="domcontentloaded")
        page.get_by_text("Chest X-ray review").first.wait_for(timeout=120_000)
        page.locator("input[type=file]").first.set_input_files(str(f))
        page.get_by_text("GradCAM overlay (pneumonia)").first.wait_for(timeout=240_000)
        page.get_by_text("Map faithfulness (ROAD)").first.wait_for(timeout=240_000)
        page.get_by_text("Past decisions").first.wait_for(timeout=60_000)
        assert page.locator("[data-testid=stMetricLabel]").filter(has_text="P(pneumonia)").count() == 1
        imgs = page.locator("[data-testid=stImage] img")
        assert imgs.count() >= 2
        assert all(imgs.nth(i).evaluate("e => e.complete && e.naturalWidth > 0") for i in range(imgs.count()))
        assert page.locator("[data-testid=stException]").count() == 0
        page.screenshot(path=str(artifacts_dir / "xray_review.png"), full_page=True)
    finally:
        page.close()
