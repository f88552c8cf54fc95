"""Fixtures shared by the imaging tests."""
from __future__ import annotations

import pytest


@pytest.fixture
def site_dir(tmp_path, monkeypatch):
    """An empty site-profile folder for one test (``CXR_SITE_DIR``)."""
    d = tmp_path / "sites"
    monkeypatch.setenv("CXR_SITE_DIR", str(d))
    return d
