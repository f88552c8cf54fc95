"""Clinician AI dashboard: the frame. Routes to the pages and draws the shared sidebar.

Run with ``make run`` (or ``streamlit run app.py``). Pages hold the UI; all model math is in
``cxr_model``.
"""
import streamlit as st

from dashboard import auth
from dashboard.frame import PAGE_CONFIG, app_pages, draw_frame, framed

st.set_page_config(**PAGE_CONFIG)

# Signed out (sign-in configured, no session yet): no page links, only the sign-in screen.
nav = st.navigation(app_pages(), position="sidebar" if auth.signed_in() else "hidden")
draw_frame()
with framed():  # the page knows the frame is drawn (dashboard/frame.py)
    nav.run()
