"""The frame every page runs in: the sign-in gate and the shared sidebar, drawn once per run.

``app.py`` draws it (:func:`draw_frame`) and runs the chosen page inside :func:`framed`. Streamlit
also reads the ``pages/`` folder by itself: until ``app.py`` has once called ``st.navigation`` in the
server process, every session (not only the first) that opens a page's own address, e.g. a
bookmarked ward, gets that folder's pages by file name ("ward vitals") and the page script run
alone, in Streamlit's default narrow layout (seen in Chromium). So a page calls
:func:`require_frame` first. Run alone, it hands the process to the app's navigation
(:func:`app_pages`) and runs the session again, now through ``app.py``, on the same page; should
that not take (a page started as the main script itself), it draws the frame with ``app.py``'s page
settings (:data:`PAGE_CONFIG`) instead. (Hiding the folder's links with
``client.showSidebarNavigation = false`` hides the links of ``st.navigation`` too.)
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

import streamlit as st

from cxr_model.settings import get_settings
from dashboard import auth
from dashboard.resources import warm_in_background

HANDED_OVER = "_frame_handed_over"  # session state: this session was already sent through app.py once
PAGE_CONFIG = {"page_title": "Clinician AI dashboard", "page_icon": ":material/radiology:", "layout": "wide"}
_state = threading.local()  # one script thread per browser session


def app_pages() -> list:
    """The app's pages, as ``app.py`` offers them (paths relative to the repository root)."""
    return [
        st.Page("pages/xray_review.py", title="X-ray review", icon=":material/radiology:", default=True),
        st.Page("pages/ward_vitals.py", title="Ward vitals", icon=":material/monitor_heart:"),
        st.Page("pages/evaluation_report.py", title="Evaluation report", icon=":material/analytics:"),
    ]


def draw_frame() -> None:
    """Start the model loading, stop at the sign-in screen when signed out, draw the shared sidebar."""
    warm_in_background()  # once per process: the model loads while the sign-in or first page is drawn
    me = auth.current_identity()
    settings = get_settings()
    with st.sidebar:
        st.caption("**Decision support, not a diagnosis.** Every output is for a clinician to weigh with the "
                   "patient and the images; none is a diagnosis.")
        auth.sidebar(me)
        st.caption(f"Chest X-ray model: `{settings.cxr_model_name}` · data: `{settings.data_dir}`")


@contextmanager
def framed():
    """Mark the page run inside this block as run by ``app.py`` (which has drawn the frame)."""
    _state.framed = True
    try:
        yield
    finally:
        _state.framed = False


def require_frame() -> None:
    """Draw the frame unless ``app.py`` runs this page (a page run alone must not skip the gate)."""
    if getattr(_state, "framed", False):
        return
    if not st.session_state.get(HANDED_OVER):
        st.session_state[HANDED_OVER] = True
        st.navigation(app_pages(), position="hidden")  # from now on the server runs app.py (the folder is ignored)
        st.rerun()
    st.set_page_config(**PAGE_CONFIG)
    draw_frame()
