"""The frame every page runs in: the sign-in gate and the shared sidebar, drawn once per run.

``app.py`` draws it (:func:`draw_frame`) and runs the chosen page inside :func:`framed`. Streamlit
also reads the ``pages/`` folder by itself: on a freshly started server, before ``app.py`` has once
called ``st.navigation``, the first browser session is offered that folder's pages by file name
("ward vitals"), and following such a link runs the page script alone (seen in Chromium). So a page
calls :func:`require_frame` first, which draws the frame when ``app.py`` did not. (Hiding those links
with ``client.showSidebarNavigation = false`` hides the links of ``st.navigation`` too.)
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

import streamlit as st

from cxr_model.settings import get_settings
from dashboard import auth
from dashboard.resources import warm_in_background

_state = threading.local()  # one script thread per browser session


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
    if not getattr(_state, "framed", False):
        draw_frame()
