"""Real browser (Debian chromium via Playwright): the client-side viewer windows and zooms a DICOM
with no script rerun: the displayed pixels change while the app's websocket stays silent."""
from __future__ import annotations

import hashlib

import pytest

pytestmark = pytest.mark.browser


def _viewer_frame(page):
    for _ in range(600):
        frame = next((f for f in page.frames if "/component/" in f.url and "cxr_viewer" in f.url), None)
        if frame is not None and frame.evaluate("() => document.body.dataset.ready === '1'"):
            return frame
        page.wait_for_timeout(200)
    raise AssertionError("the viewer did not draw within 120 s")


def _idle(page) -> None:
    """Until the script has not been running for 300 ms (Streamlit marks the app's state)."""
    quiet = 0
    for _ in range(3000):
        running = page.get_attribute("[data-testid=stApp]", "data-test-script-state") == "running"
        quiet = 0 if running else quiet + 1
        if quiet >= 6:
            return
        page.wait_for_timeout(50)
    raise AssertionError("the page was still running after 150 s")


def _pixels(frame) -> str:
    """SHA-256 of what the first pane shows (its canvas pixels)."""
    data = frame.evaluate("() => document.querySelector('#panes canvas').toDataURL('image/png')")
    return hashlib.sha256(data.encode()).hexdigest()


def test_drag_windows_and_wheel_zooms_the_dicom_without_a_rerun(streamlit_server, browser, dicom_dir, artifacts_dir):
    d = sorted((dicom_dir / "rsna").glob("*.dcm"))[0]
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    frames = {"sent": 0, "received": 0}

    def watch(ws):
        ws.on("framesent", lambda _: frames.__setitem__("sent", frames["sent"] + 1))
        ws.on("framereceived", lambda _: frames.__setitem__("received", frames["received"] + 1))

    page.on("websocket", watch)
    try:
        page.goto(streamlit_server, wait_until="domcontentloaded")
        page.get_by_text("Chest X-ray review").first.wait_for(timeout=120_000)
        page.locator("input[type=file]").first.set_input_files(str(d))
        frame = _viewer_frame(page)
        _idle(page)
        page.wait_for_timeout(1000)  # let the last rerun's messages settle
        assert page.locator("[data-testid=stException]").count() == 0
        page.screenshot(path=str(artifacts_dir / "xray_viewer_opened.png"), full_page=True)
        state0 = frame.evaluate("() => ({w: document.body.dataset.window, z: document.body.dataset.zoom,"
                                " fetches: window.viewerState.fetches, renders: window.viewerState.renders})")
        pixels0 = _pixels(frame)
        before = dict(frames)

        canvas = frame.locator("#panes canvas").first
        box = canvas.bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(cx, cy)
        page.mouse.down()
        for i in range(1, 11):  # drag right and down: wider window, higher level
            page.mouse.move(cx + 12 * i, cy + 6 * i)
        page.mouse.up()
        state1 = frame.evaluate("() => document.body.dataset.window")
        pixels1 = _pixels(frame)
        page.mouse.move(cx, cy)
        page.mouse.wheel(0, -400)  # zoom in about the cursor
        page.wait_for_timeout(300)
        zoom2 = frame.evaluate("() => document.body.dataset.zoom")
        pixels2 = _pixels(frame)
        page.wait_for_timeout(1500)  # a rerun, had one been asked for, would have answered by now

        assert state1 != state0["w"] and pixels1 != pixels0  # the window changed what is shown
        assert float(zoom2) > float(state0["z"]) * 1.2 and pixels2 != pixels1  # and so did the zoom
        assert frames == before, f"websocket frames during window/zoom: {before} -> {frames}"  # no rerun
        after = frame.evaluate("() => ({fetches: window.viewerState.fetches, renders: window.viewerState.renders})")
        assert after == {"fetches": state0["fetches"], "renders": state0["renders"]}  # no new args, no new bytes
        # a rerun of the page (here: the PHI toggle) keeps the reader's window and zoom, and sends no new bytes
        page.get_by_text("Show identifying information").first.click()
        banner = page.locator("[data-testid=stCaptionContainer]").filter(has_text="modality").filter(has_text="hidden")
        banner.first.wait_for(state="detached", timeout=120_000)  # the rerun came: age and sex are shown now
        _idle(page)
        kept = frame.evaluate("() => [document.body.dataset.window, document.body.dataset.zoom, window.viewerState.fetches]")
        assert kept == [state1, zoom2, state0["fetches"]], (kept, state1, zoom2)
        page.screenshot(path=str(artifacts_dir / "xray_viewer_windowed_zoomed.png"), full_page=True)
        canvas.screenshot(path=str(artifacts_dir / "xray_viewer_pane.png"))
    finally:
        page.close()
