"""The X-ray review page as a radiologist meets it, timed in Chromium (the table of issue 11).

    .venv/bin/python benchmarks/bench_review_browser.py [--repeats 3]

Starts ``streamlit run app.py`` on a free port and headless Debian chromium (Playwright), then for a
Kermany JPEG and a shared 1024 x 1024 RSNA DICOM (inside the OOD scope; a new file each round): upload ->
probability visible and -> page finished (the app's script state no longer "running"), a window/level drag
in the viewer (its redraw time per mouse move, and the websocket frames it caused: 0 is no rerun),
a CAM opacity step and a CAM method change (server reruns, until the viewer shows the new value).
Also the first page load after the server's start.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, CXR_STATE_DIR=tempfile.mkdtemp(), STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless",
                             "true", "--server.port", str(port), "--server.address", "127.0.0.1"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("streamlit did not start")


def _idle(page, timeout_s: float = 600) -> None:
    """Wait until the app's script state has not been "running" for 300 ms."""
    end, quiet = time.perf_counter() + timeout_s, None
    while time.perf_counter() < end:
        running = page.get_attribute("[data-testid=stApp]", "data-test-script-state") == "running"
        if running:
            quiet = None
        elif quiet is None:
            quiet = time.perf_counter()
        elif time.perf_counter() - quiet > 0.3:
            return
        page.wait_for_timeout(50)
    raise TimeoutError("page still running")


def _viewer(page):
    for _ in range(1200):
        frame = next((f for f in page.frames if "/component/" in f.url and "cxr_viewer" in f.url), None)
        if frame is not None and frame.evaluate("() => document.body.dataset.ready === '1'"):
            return frame
        page.wait_for_timeout(100)
    raise TimeoutError("no viewer")


def _wait_js(frame, expr: str, timeout_s: float = 180) -> None:
    end = time.perf_counter() + timeout_s
    while not frame.evaluate(expr):
        if time.perf_counter() > end:
            raise TimeoutError(f"{expr}; frames {[f.url[-40:] for f in frame.page.frames]}; "
                               f"state {frame.evaluate('() => [window.viewerState.renders, window.viewerState.args]')}")
        time.sleep(0.02)


def one_file(page, path: Path, frames: dict, out: dict, screenshot: str | None = None) -> None:
    page.locator("input[type=file]").first.set_input_files(str(path))
    t = time.perf_counter()
    page.locator("[data-testid=stMetricLabel]").filter(has_text="P(pneumonia)").first.wait_for(timeout=600_000)
    out.setdefault("upload -> probability", []).append(time.perf_counter() - t)
    _idle(page)
    out.setdefault("upload -> page finished", []).append(time.perf_counter() - t - 0.3)
    frame = _viewer(page)
    # window/level: 20 mouse moves of a drag in the viewer; redraw time per move, websocket frames
    box = frame.locator("#panes canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    before = dict(frames)
    frame.evaluate("() => { window.viewerState.wlMs = []; }")
    page.mouse.move(cx, cy)
    page.mouse.down()
    for i in range(1, 21):
        page.mouse.move(cx + 6 * i, cy + 3 * i)
    page.mouse.up()
    page.mouse.wheel(0, -300)
    page.wait_for_timeout(1000)
    out.setdefault("W/L redraw per mouse move", []).extend(v / 1e3 for v in frame.evaluate("() => window.viewerState.wlMs"))
    out.setdefault("websocket frames during W/L + zoom", []).append(
        frames["sent"] + frames["received"] - before["sent"] - before["received"])
    # opacity: one step of the page's slider (a rerun), until the viewer draws it
    renders = frame.evaluate("() => window.viewerState.renders")
    track = page.locator("[data-testid=stSlider] div[data-orientation=horizontal][style*=relative]").first
    tb = track.bounding_box()
    target = 0.8 if frame.evaluate("() => window.viewerState.args.opacity") < 0.7 else 0.6
    t = time.perf_counter()
    page.mouse.click(tb["x"] + target * tb["width"], tb["y"] + tb["height"] / 2)
    _wait_js(frame, f"() => window.viewerState.renders > {renders}")
    out.setdefault("opacity step -> viewer shows it", []).append(time.perf_counter() - t)
    _idle(page)
    out.setdefault("opacity step -> page finished", []).append(time.perf_counter() - t - 0.3)
    # method change GradCAM -> HiResCAM
    page.locator("[data-testid=stSelectbox]").filter(has_text="CAM method").first.click()
    t = time.perf_counter()
    page.get_by_role("option", name="HiResCAM", exact=True).click()
    _wait_js(frame, "() => window.viewerState.args && window.viewerState.args.method === 'HiResCAM'")
    out.setdefault("method change -> viewer shows map", []).append(time.perf_counter() - t)
    _idle(page)
    out.setdefault("method change -> page finished", []).append(time.perf_counter() - t - 0.3)
    # back to GradCAM and remove the file for the next round
    page.locator("[data-testid=stSelectbox]").filter(has_text="CAM method").first.click()
    page.get_by_role("option", name="GradCAM", exact=True).click()
    _idle(page)
    if screenshot:
        page.screenshot(path=screenshot, full_page=True)
    page.locator("[data-testid=stFileChipDeleteBtn]").first.click()
    page.locator("[data-testid=stMetricLabel]").first.wait_for(state="detached", timeout=600_000)
    _idle(page)


def main() -> None:
    from playwright.sync_api import sync_playwright

    from cxr_model.imaging.bundle import load_cxr_bundle
    from cxr_model.imaging.ood import load_ood
    from cxr_model.imaging.review import analyse_study
    from cxr_model.settings import get_settings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--screenshots", default=str(ROOT / "test-artifacts"))
    args = ap.parse_args()
    s = get_settings()
    bundle = load_cxr_bundle(s.cxr_model_dir, device="cpu")
    ood = load_ood(bundle)
    rsna = sorted((s.dicom_dir / "rsna").glob("*.dcm"))
    dicoms = [f for f in rsna if not analyse_study(bundle, f.read_bytes(), f.name, "GradCAM", ood).ood_flag] or rsna
    jpegs = sorted((s.kermany_dir / "val" / "PNEUMONIA").glob("*.jpeg"))
    # a new file each round: every upload is a study the page has not analysed yet (no cache hit)
    rounds = [{"JPEG": jpegs[r % len(jpegs)], "DICOM": dicoms[r % len(dicoms)]} for r in range(args.repeats)]
    t0 = time.perf_counter()
    proc, url = _server()
    results: dict[str, dict] = {"JPEG": {}, "DICOM": {}}
    frames = {"sent": 0, "received": 0}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"])
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.on("websocket", lambda ws: (ws.on("framesent", lambda _: frames.__setitem__("sent", frames["sent"] + 1)),
                                             ws.on("framereceived", lambda _: frames.__setitem__(
                                                 "received", frames["received"] + 1))))
            t = time.perf_counter()
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_text("Chest X-ray review").first.wait_for(timeout=600_000)
            _idle(page)
            first = time.perf_counter() - t
            print(f"server start -> health ok {t - t0:.1f} s; first page load -> finished {first:.1f} s "
                  "(the model loads meanwhile, in the background)")
            for r in range(args.repeats):
                for kind, path in rounds[r].items():
                    shot = f"{args.screenshots}/bench_{kind.lower()}.png" if r == 0 else None
                    one_file(page, path, frames, results[kind], shot)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    for kind, res in results.items():
        print(f"{kind} ({', '.join(sorted({rd[kind].name[:12] for rd in rounds}))}; one new file per round):")
        for name, values in res.items():
            med = statistics.median(values)
            unit = f"{med:8.0f}  " if "frames" in name else f"{med * 1e3:8.0f} ms"
            print(f"  {name:38s} {unit} median of {len(values)}  (max {max(values) * (1 if 'frames' in name else 1e3):.0f})")


if __name__ == "__main__":
    main()
