"""Real browser (Debian chromium via Playwright): upload a radiograph, see it and its map in the viewer,
measure ROAD on demand, keep a screenshot."""
from __future__ import annotations

import pytest

from cxr_model.imaging.explain import default_cam

pytestmark = pytest.mark.browser


def test_upload_radiograph_shows_probability_and_overlay(streamlit_server, browser, kermany_dir, artifacts_dir, cxr_bundle):
    f = sorted((kermany_dir / "val" / "PNEUMONIA").glob("*.jpeg"))[0]
    page = browser.new_page(viewport={"width": 1400, "height": 1700})
    try:
        page.goto(streamlit_server, wait_until="domcontentloaded")
        page.get_by_text("Chest X-ray review").first.wait_for(timeout=120_000)
        page.locator("input[type=file]").first.set_input_files(str(f))
        page.locator("[data-testid=stMetricLabel]").filter(has_text="P(pneumonia)").first.wait_for(timeout=240_000)
        page.get_by_text("Past decisions").first.wait_for(timeout=60_000)
        viewer = None
        for _ in range(600):  # the viewer: two panes (radiograph, map) drawn from the study's pixels
            viewer = next((fr for fr in page.frames if "cxr_viewer" in fr.url), None)
            if viewer is not None and viewer.evaluate("() => document.body.dataset.ready === '1'"):
                break
            page.wait_for_timeout(200)
        assert viewer.locator("#panes canvas").count() == 2
        assert viewer.locator(".pane .cap").nth(1).inner_text() == f"{default_cam(cxr_bundle)[0]} map"  # the bundle's default
        lit = viewer.evaluate("() => { const c = document.querySelectorAll('#panes canvas')[1];"
                              " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                              " let n = 0; for (let i = 0; i < d.length; i += 4) n += d[i] + d[i + 1] + d[i + 2] > 30;"
                              " return n / (d.length / 4); }")
        assert lit > 0.3  # the map pane shows the film and its colours, not a black canvas
        page.get_by_role("button", name="Measure the map's faithfulness").click()  # ROAD: on demand
        page.get_by_text("Map faithfulness (ROAD)").first.wait_for(timeout=240_000)
        assert page.locator("[data-testid=stMetricLabel]").filter(has_text="P(pneumonia)").count() == 1
        assert page.locator("[data-testid=stException]").count() == 0
        page.screenshot(path=str(artifacts_dir / "xray_review.png"), full_page=True)
    finally:
        page.close()


def test_an_adult_film_opens_on_the_adult_branchs_map(streamlit_server, browser, settings, artifacts_dir, cxr_bundle):
    """An adult NIH film: the page says the adult branch read it at 448 px, and the viewer shows the branch's
    default map (the cell-logit map), drawn over the film."""
    from cxr_model.imaging.data import nih_items
    from cxr_model.imaging.predict import predict_source
    from tests.conftest import _need

    f = next(it.path for it in nih_items(_need(settings.nih_adult_dir, "NIH adult films"))
             if it.label == 1 and predict_source(cxr_bundle, it.path).population == "adult")
    page = browser.new_page(viewport={"width": 1400, "height": 1700})
    try:
        page.goto(streamlit_server, wait_until="domcontentloaded")
        page.get_by_text("Chest X-ray review").first.wait_for(timeout=120_000)
        page.locator("input[type=file]").first.set_input_files(str(f))
        page.get_by_text("read at 448 px by the model's adult branch").first.wait_for(timeout=240_000)
        viewer = None
        for _ in range(600):
            viewer = next((fr for fr in page.frames if "cxr_viewer" in fr.url), None)
            if viewer is not None and viewer.evaluate("() => document.body.dataset.ready === '1'"):
                break
            page.wait_for_timeout(200)
        assert viewer.locator(".pane .cap").nth(1).inner_text() == f"{default_cam(cxr_bundle.branch)[0]} map"
        assert page.locator("[data-testid=stException]").count() == 0
        page.screenshot(path=str(artifacts_dir / "xray_review_adult.png"), full_page=True)
    finally:
        page.close()
