"""Clinician AI dashboard: the frame. Routes to the pages and draws the shared sidebar.

Run with ``make run`` (or ``streamlit run app.py``). Pages hold the UI; all model math is in
``cxr_model``.
"""
import streamlit as st

from dashboard import auth
from dashboard.frame import draw_frame, framed

st.set_page_config(page_title="Clinician AI dashboard", page_icon=":material/radiology:", layout="wide")

pages = [
    st.Page("pages/xray_review.py", title="X-ray review", icon=":material/radiology:", default=True),
    st.Page("pages/ward_vitals.py", title="Ward vitals", icon=":material/monitor_heart:"),
    st.Page("pages/evaluation_report.py", title="Evaluation report", icon=":material/analytics:"),
]
# Signed out (sign-in configured, no session yet): no page links, only the sign-in screen.
nav = st.navigation(pages, position="sidebar" if auth.signed_in() else "hidden")
draw_frame()
with framed():  # the page knows the frame is drawn (dashboard/frame.py)
    nav.run()
