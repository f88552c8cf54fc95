"""Real browser: the ward vitals page renders through ``streamlit run app.py``."""
from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from cxr_model.vitals.fhir import record_to_fhir
from cxr_model.vitals.reader import read_record

pytestmark = pytest.mark.browser


def test_ward_page_renders_in_chromium(streamlit_server, browser, artifacts_dir, physionet_dir, tmp_path):
    page = browser.new_page(viewport={"width": 1500, "height": 2200})
    try:
        page.goto(streamlit_server, timeout=60_000)
        # go through app.py's st.navigation, as a user does
        page.get_by_role("link", name="Ward vitals").click(timeout=60_000)
        page.get_by_text("Ward vitals: early warning").wait_for(timeout=60_000)
        page.get_by_text("Patients alerting now").wait_for(timeout=90_000)
        page.locator(".js-plotly-plot").nth(1).wait_for(timeout=60_000)  # trends and the risk curve
        page.locator(".js-plotly-plot").get_by_text("alert threshold").first.wait_for(timeout=30_000)
        assert page.get_by_text("Decision support, not a diagnosis").count() >= 1
        # the NEWS2 colour bands are really drawn on the trend chart (they once were silently dropped)
        trends = page.locator(".js-plotly-plot").first
        drawn = trends.locator(".layer-below .shapelayer path").count()
        rects = trends.evaluate("el => el._fullLayout.shapes.filter(s => s.type === 'rect').length")
        assert drawn >= 5 and rects >= 5, (drawn, rects)
        assert page.locator("[data-testid='stDataFrame']").count() >= 2  # the overview and the alert list
        # NEWS2 and the contributions: static tables that wrap, so no column is cut off in the narrow column
        tables = page.locator("[data-testid='stTable']")
        assert tables.count() == 2
        tables.first.get_by_text("Measured", exact=True).wait_for(timeout=30_000)
        for i in range(2):
            overflow = tables.nth(i).evaluate("el => [el.scrollWidth, el.clientWidth]")
            assert overflow[0] <= overflow[1] + 1, overflow
        assert page.locator("[data-testid='stException']").count() == 0
        page.wait_for_timeout(1500)  # let the data grids paint before the screenshot
        page.screenshot(path=str(artifacts_dir / "ward_vitals.png"), full_page=True)
        page.get_by_text("Simulated demo ward").click()
        # the banner, by its capitals (a plain get_by_text ignores case and also matches the radio's label,
        # so it passed before the banner was drawn and failed, in strict mode, once both were there)
        page.get_by_text(re.compile("SIMULATED DEMO WARD")).wait_for(timeout=60_000)
        page.get_by_text("of 12").wait_for(timeout=60_000)
        assert page.locator("[data-testid='stException']").count() == 0
        page.wait_for_timeout(1500)
        page.screenshot(path=str(artifacts_dir / "ward_vitals_demo.png"), full_page=True)
        # the ward's own records: uploaded files, one bad file named beside the others
        page.get_by_text("Records you upload").click()
        page.get_by_text("Upload one or more records").wait_for(timeout=60_000)
        bad = tmp_path / "notes.txt"
        bad.write_text("Time;Parameter;Value\n")
        files = sorted((physionet_dir / "set-a").glob("*.txt"))[:3]
        # the third stay as a FHIR R4 Bundle: the uploader takes .json beside the PhysioNet text files
        as_fhir = tmp_path / f"{files[2].stem}.json"
        as_fhir.write_text(json.dumps(record_to_fhir(read_record(files[2]), datetime(2031, 1, 1, 8, 0))))
        page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files([*files[:2], as_fhir, bad])
        page.get_by_text("of 3 admitted").wait_for(timeout=90_000)
        page.get_by_text("notes.txt:1: header is not 'Time,Parameter,Value'").wait_for(timeout=30_000)
        # the clock still shows the hour the tables use (a run that stopped for the upload once reset it to 1)
        assert page.locator("[data-testid='stSliderThumbValue']").first.inner_text() == "24"
        assert page.locator("[data-testid='stException']").count() == 0
        page.wait_for_timeout(1500)
        page.screenshot(path=str(artifacts_dir / "ward_vitals_upload.png"), full_page=True)
    finally:
        page.close()
