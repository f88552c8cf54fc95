"""Shared fixtures: where the real data is, the bundled model, a live Streamlit server, a browser.

Real data is read from ``../shared/data`` (or ``$CXR_DATA_DIR``). Missing data (or a missing
Debian chromium for the browser tests) is a failure, as under ``CI=true``. For a quick local run
without the data, ``ALLOW_MISSING_DATA=1`` (``make test ALLOW_MISSING_DATA=1``) turns those
failures into skips, each named in the summary with the reason, and a banner says the run is
incomplete; under ``CI=true`` the opt-out is ignored.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from cxr_model.settings import PROJECT_ROOT, get_settings

ARTIFACTS = PROJECT_ROOT / "test-artifacts"


@pytest.fixture(autouse=True)
def _keep_main_module():
    """Put back ``sys.modules["__main__"]`` after each test: Streamlit's AppTest replaces it with the script it
    ran, and a later ``spawn`` child would then re-run that script (a deleted temporary file for
    ``AppTest.from_function``) instead of starting clean."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


def missing_data_allowed() -> bool:
    """True only with ``ALLOW_MISSING_DATA=1`` outside CI: then missing data skips, loudly."""
    if os.environ.get("CI", "").lower() == "true":
        return False
    return os.environ.get("ALLOW_MISSING_DATA", "").lower() in ("1", "true", "yes")


def _missing(msg: str) -> None:
    if missing_data_allowed():
        pytest.skip(f"{msg} [ALLOW_MISSING_DATA=1]")
    pytest.fail(f"{msg}; for a quick run without it: make test ALLOW_MISSING_DATA=1", pytrace=False)


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        _missing(f"{what} not found at {path} (set CXR_DATA_DIR)")
    return path


def pytest_report_header(config):
    s = get_settings()
    mode = "skipped (ALLOW_MISSING_DATA=1)" if missing_data_allowed() else "a failure"
    return f"data: {s.data_dir} ({'present' if s.data_dir.exists() else 'MISSING'}); missing data is {mode}"


def pytest_terminal_summary(terminalreporter):
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "ALLOW_MISSING_DATA" in str(r.longrepr)]
    if skipped:
        terminalreporter.write_sep("!", f"INCOMPLETE: {len(skipped)} tests skipped for missing data or browser "
                                        "(ALLOW_MISSING_DATA=1); this run does not show the suite passes", red=True)


@pytest.fixture(scope="session")
def settings():
    return get_settings()


@pytest.fixture(scope="session")
def data_dir(settings) -> Path:
    return _need(settings.data_dir, "shared data")


@pytest.fixture(scope="session")
def kermany_dir(settings) -> Path:
    return _need(settings.kermany_dir, "Kermany radiographs")


@pytest.fixture(scope="session")
def dicom_dir(settings) -> Path:
    return _need(settings.dicom_dir, "real DICOM radiographs")


@pytest.fixture(scope="session")
def physionet_dir(settings) -> Path:
    return _need(settings.physionet_dir, "PhysioNet 2012 set A")


@pytest.fixture(scope="session")
def cxr_bundle(settings):
    """The bundled chest X-ray model, loaded once for the session (never mutate it)."""
    from cxr_model.imaging.bundle import load_cxr_bundle

    return load_cxr_bundle(settings.cxr_model_dir, device="cpu")


def models_with_small_test_split(root: Path, settings, per_class: int = 2) -> Path:
    """A models folder (``CXR_MODELS_DIR``) whose default chest X-ray bundle is the bundled one (its files linked)
    with the test part of ``splits.csv`` cut to ``per_class`` films per class and population; train and
    validation rows kept whole. Returns the folder; the bundle keeps its name, so ``CXR_MODEL_NAME`` need not change.
    """
    import csv

    src = settings.cxr_model_dir
    for other in settings.models_dir.iterdir():
        if other.name != src.name:
            (root / other.name).symlink_to(other)
    bundle = root / src.name
    bundle.mkdir()
    for f in src.iterdir():
        if f.name != "splits.csv":
            (bundle / f.name).symlink_to(f)
    with open(src / "splits.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        rows, fields, kept = [], reader.fieldnames, {}
        for r in reader:
            key = (r["label"], r.get("population") or "child")
            if r["split"] == "test":
                kept[key] = kept.get(key, 0) + 1
                if kept[key] > per_class:
                    continue
            rows.append(r)
    with open(bundle / "splits.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fields)
        w.writeheader()
        w.writerows(rows)
    return root


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(state: Path, port: int | None = None, env: dict | None = None, args: tuple = (),
                host: str = "127.0.0.1"):
    """``streamlit run app.py [args]`` on a loopback ``port`` (default: a free one) with ``env`` added to this
    process's environment (state and log under ``state``); yields its base URL, named by ``host`` (a sign-in
    test uses ``localhost``, the name its provider redirects to)."""
    port = port or _free_port()
    env = dict(os.environ, CXR_STATE_DIR=str(state), STREAMLIT_BROWSER_GATHER_USAGE_STATS="false", **(env or {}))
    # The server's output goes to a file: a pipe nobody reads stalls the server once 64 KB are written.
    # No file watcher: nothing edits the source during a test, and a watcher flooded by the files a test
    # run writes (its inotify queue overflowed in a fresh-clone CI run) only adds noise and reruns.
    log = open(state / "streamlit.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none", *args],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://{host}:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("streamlit did not answer /_stcore/health within 60 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def streamlit_server(tmp_path_factory):
    """The app server the browser tests share (``streamlit run app.py``); yields its base URL."""
    with running_app(tmp_path_factory.mktemp("app-state")) as url:
        yield url


@pytest.fixture(scope="session")
def pg():
    """A PostgreSQL server of our own (``tests/pg_server.py``) for the session; never skipped."""
    import shutil
    import tempfile

    from tests.pg_server import PgServer

    root = Path(tempfile.mkdtemp(prefix="cxr-pg-"))
    server = PgServer(root)
    try:
        server.start()
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        pytest.fail(f"could not start PostgreSQL for the tests: {detail}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def browser():
    """Headless Debian chromium driven by Playwright."""
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        _missing("Debian chromium missing at /usr/bin/chromium (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=str(chromium), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
        )
        try:
            yield b
        finally:
            b.close()
