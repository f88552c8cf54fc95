"""The shipped ``.streamlit/config.toml``: no tracebacks, developer menu or usage statistics for users.

The app itself still starts with it: tests/app/test_app.py renders every page and checks the
served app's health endpoint, both from the repository root where this file is read.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from cxr_model.settings import PROJECT_ROOT

CONFIG = PROJECT_ROOT / ".streamlit" / "config.toml"
EXPECTED = {("client", "showErrorDetails"): "none", ("client", "toolbarMode"): "viewer",
            ("browser", "gatherUsageStats"): False}


def test_config_file_parses_and_holds_the_safe_values():
    cfg = tomllib.loads(CONFIG.read_text())
    for (section, key), value in EXPECTED.items():
        assert cfg[section][key] == value, f"{section}.{key}"
    assert ".venv" in cfg["server"]["folderWatchBlacklist"]


def test_streamlit_reads_these_values_from_the_repository_root(tmp_path):
    # An empty HOME: no user-level ~/.streamlit/config.toml can hide a missing project setting.
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop("STREAMLIT_BROWSER_GATHER_USAGE_STATS", None)
    out = subprocess.run([sys.executable, "-m", "streamlit", "config", "show"], cwd=PROJECT_ROOT, env=env,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    lines = out.splitlines()
    for key, shown in [("showErrorDetails", '"none"'), ("toolbarMode", '"viewer"'), ("gatherUsageStats", "false")]:
        i = lines.index(f"{key} = {shown}")
        assert str(CONFIG) in lines[i - 1], f"{key} not set by {CONFIG}"
    i = lines.index("folderWatchBlacklist = [")
    watched_out = lines[i + 1: lines.index("]", i)]
    assert str(CONFIG) in lines[i - 1] and '".venv",' in [w.strip() for w in watched_out]


@pytest.fixture
def project_config(monkeypatch):
    monkeypatch.chdir(PROJECT_ROOT)
    st_config.get_config_options(force_reparse=True)
    yield
    monkeypatch.undo()
    st_config.get_config_options(force_reparse=True)


def test_an_exception_reaches_the_user_without_its_message_or_traceback(project_config):
    def script():
        raise ValueError("/srv/hospital/patients.sqlite cannot be opened")

    at = AppTest.from_function(script).run()
    assert len(at.exception) == 1
    shown = at.exception[0]
    assert "/srv/hospital" not in shown.message and "ValueError" not in shown.message
    assert not shown.stack_trace
