"""``report.pdf``: the same report.html printed by a headless Chromium (optional).

The PDF is the HTML report as the browser draws it, plots included, so there is no second
layout to keep in step. It needs Playwright and a Chromium binary (``make browser`` installs
Debian's); without them :func:`write_pdf` raises :class:`PdfUnavailable` with what to install.
"""
from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


class PdfUnavailable(RuntimeError):
    """No way to print a PDF here; the message says what is missing."""


def find_chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _print(browser, report_html: Path, out: Path, timeout_s: float) -> None:
    context = browser.new_context(offline=True)
    try:
        page = context.new_page()
        page.goto(report_html.as_uri(), timeout=timeout_s * 1000)
        page.wait_for_selector("#roc-curve .main-svg", timeout=timeout_s * 1000)
        page.emulate_media(media="print")
        page.pdf(path=str(out), format="A4", landscape=True, print_background=True, scale=0.75,
                 margin={"top": "12mm", "bottom": "12mm", "left": "10mm", "right": "10mm"})
    finally:
        context.close()


def write_pdf(report_html: str | Path, out: str | Path | None = None, chromium: str | None = None,
              timeout_s: float = 180.0, browser=None) -> Path:
    """Print ``report_html`` to PDF (A4 landscape, backgrounds on), offline.

    Args:
        report_html: a report written by :func:`~cxr_model.imaging.report.html.write_report`.
        out: the PDF path; default ``report.pdf`` beside the HTML.
        chromium: the browser binary; default the first of ``chromium``, ``chromium-browser``,
            ``google-chrome`` on the PATH.
        timeout_s: how long to wait for the plots to be drawn.
        browser: an already launched Playwright ``Browser`` to use instead of starting one.

    Returns:
        The PDF path.
    """
    report_html = Path(report_html).resolve()
    out = Path(out) if out else report_html.with_suffix(".pdf")
    if browser is not None:
        _print(browser, report_html, out, timeout_s)
        return out
    chromium = chromium or find_chromium()
    if not chromium:
        raise PdfUnavailable("no Chromium found for printing the PDF (install Debian's chromium: make browser)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise PdfUnavailable("Playwright is not installed (pip install playwright)") from None
    def run() -> None:
        with sync_playwright() as pw:
            launched = pw.chromium.launch(executable_path=chromium, headless=True,
                                          args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            try:
                _print(launched, report_html, out, timeout_s)
            finally:
                launched.close()

    if _loop_running():
        # Playwright's sync API refuses a thread with a running asyncio loop (a web server's):
        # print from a fresh thread instead.
        failure: list[BaseException] = []
        worker = threading.Thread(target=lambda: _capture(run, failure))
        worker.start()
        worker.join()
        if failure:
            raise failure[0]
    else:
        run()
    return out


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _capture(fn, failure: list) -> None:
    try:
        fn()
    except BaseException as exc:  # handed back to the calling thread
        failure.append(exc)
