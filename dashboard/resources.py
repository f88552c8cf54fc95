"""The models of the dashboard, loaded once per process and shared by every session.

The only ``st.cache_resource`` of the app (tests/test_architecture.py checks it): each page asks
here, so one copy of each bundle lives in memory, on ``settings.device``. The cached objects are
shared by all users' threads and never mutated (the chest X-ray network's lock lives in
``registry.SharedModel``). Keyed by the bundle folder and device, so a changed environment reloads.
Each load appends a ``model.load`` audit row (model id, version, sha256, device) under the person
whose session caused it (``dashboard-server`` for the start-up thread's load); a database that is down
does not stop the model from loading.
"""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import streamlit as st

from cxr_model.access import Identity
from cxr_model.imaging.bundle import CxrBundle, load_cxr_bundle
from cxr_model.imaging.review import warm_up
from cxr_model.imaging.ood import OodError, OodModel, load_ood
from cxr_model.imaging.site import apply_site, profile_sha256
from cxr_model.settings import get_settings
from cxr_model.vitals.bundle import VitalsBundle, load_vitals_bundle
from dashboard.auth import audit


#: Who a load on the start-up thread is recorded under: the server itself, not a person. That thread
#: has no Streamlit session, so it cannot ask who is signed in (with sign-in configured, asking
#: failed and the warm-up with it: the model then loaded on the first user's request).
SERVER = Identity(name="dashboard-server", display="Dashboard server (start-up)", role="viewer")
_thread = threading.local()


def _audit_load(meta: dict, model_dir: str, device: str) -> None:
    audit("model.load", str(meta.get("name", model_dir)),
          {"version": str(meta.get("version")), "sha256": meta.get("sha256"), "dir": model_dir, "device": device},
          me=getattr(_thread, "actor", None))

log = logging.getLogger(__name__)
_WARM_LOCK = threading.Lock()
_warm_started = False


@st.cache_resource(show_spinner="Loading the chest X-ray model ...")
def _cxr(model_dir: str, device: str) -> CxrBundle:
    bundle = load_cxr_bundle(model_dir, device=device)
    _audit_load(bundle.meta, model_dir, device)
    return bundle


@st.cache_resource(show_spinner=False)
def _ood(model_dir: str, device: str) -> tuple[OodModel | None, str | None]:
    try:
        return load_ood(_cxr(model_dir, device)), None
    except OodError as exc:
        return None, str(exc)


@st.cache_resource(show_spinner="Loading the vitals model ...")
def _vitals(model_dir: str) -> VitalsBundle:
    bundle = load_vitals_bundle(model_dir)
    _audit_load(bundle.meta, model_dir, str(getattr(bundle, "device", "cpu")))
    return bundle


def cxr_bundle(model_dir: str | None = None) -> CxrBundle:
    """The chest X-ray bundle (default: ``settings.cxr_model_dir``); raises ``BundleError`` (the page shows it)."""
    s = get_settings()
    return _cxr(str(model_dir or s.cxr_model_dir), s.device)


def cxr_ood(model_dir: str | None = None) -> tuple[OodModel | None, str | None]:
    """``(ood model, None)`` or ``(None, why the OOD check is unavailable)``."""
    s = get_settings()
    return _ood(str(model_dir or s.cxr_model_dir), s.device)


@st.cache_resource(show_spinner="Applying the site profile ...", max_entries=4)
def _site(model_dir: str, device: str, name: str, site_dir: str, content: str | None) -> CxrBundle:
    return apply_site(_cxr(model_dir, device), name, site_dir)


def site_key(name: str | None) -> str | None:
    """What profile ``name`` holds now: the SHA-256 of its files (``None`` for no profile or a missing one).

    Caches of anything a profile computed key on this, not on the name alone: a profile adapted or
    recalibrated again under the same name is a different model.
    """
    if not name:
        return None
    try:
        return profile_sha256(get_settings().site_dir, name)
    except ValueError:  # not a profile name: apply_site says so
        return None


def cxr_site_bundle(name: str | None) -> CxrBundle:
    """The chest X-ray bundle with site profile ``name`` applied (a shared copy; the bundled one for ``None``).

    Keyed by the profile's content (:func:`site_key`), so a profile made again under the same name is
    loaded again. Raises ``BundleError`` (no such profile, other weights): the page shows it.
    """
    if not name:
        return cxr_bundle()
    s = get_settings()
    return _site(str(s.cxr_model_dir), s.device, name, str(s.site_dir), site_key(name))


def vitals_bundle(model_dir: str | None = None) -> VitalsBundle:
    """The vitals bundle (default: ``settings.vitals_model_dir``); raises ``BundleError``."""
    return _vitals(str(model_dir or get_settings().vitals_model_dir))


@st.cache_data(show_spinner=False)
def held_out_metrics(bundle_dir: str) -> dict | None:
    """A vitals bundle's held-out run (``test_evaluation/metrics.json``), or ``None`` when it has none."""
    try:
        return json.loads((Path(bundle_dir) / "test_evaluation" / "metrics.json").read_text())
    except (OSError, ValueError):
        return None


def warm_in_background() -> None:
    """Load the chest X-ray model and its OOD statistics on a background thread, once per process.

    Called by ``app.py`` on the server's first run, so the first upload does not wait for the load
    (~30 s on a cold CPU machine) and the first page, which needs no model, does not either. A page
    asking meanwhile waits on the same ``st.cache_resource`` entry; nothing is loaded twice.
    """
    global _warm_started
    with _WARM_LOCK:
        if _warm_started:
            return
        _warm_started = True
    threading.Thread(target=_warm, name="warm-models", daemon=True).start()


def _warm() -> None:
    _thread.actor = SERVER
    try:
        bundle = cxr_bundle()
        cxr_ood()
        warm_up(bundle)
    except Exception:  # the page shows the error when it asks for the model
        log.exception("warming the chest X-ray model failed")
