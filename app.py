"""Clinician AI dashboard: the frame. Routes to the pages and draws the shared sidebar.

Run with ``make run`` (or ``streamlit run app.py``). Pages hold the UI; all model math is in
``cxr_model``.
"""
import streamlit as st

from cxr_model.settings import get_settings
from dashboard import auth
from dashboard.resources import warm_in_background

st.set_page_config(page_title="Clinician AI dashboard", page_icon=":material/radiology:", layout="wide")

pages = [
    st.Page("pages/xray_review.py", title="X-ray review", icon=":material/radiology:", default=True),
    st.Page("pages/ward_vitals.py", title="Ward vitals", icon=":material/monitor_heart:"),
    st.Page("pages/evaluation_report.py", title="Evaluation report", icon=":material/analytics:"),
]
# Signed out (sign-in configured, no session yet): no page links, only the sign-in screen.
nav = st.navigation(pages, position="sidebar" if auth.signed_in() else "hidden")
warm_in_background()  # once per process: the model loads while the sign-in or first page is drawn
me = auth.current_identity()

settings = get_settings()
with st.sidebar:
    st.caption("**Decision support, not a diagnosis.** Every output is for a clinician to weigh with the "
               "patient and the images; none is a diagnosis.")
    auth.sidebar(me)
    st.caption(f"Chest X-ray model: `{settings.cxr_model_name}` · data: `{settings.data_dir}`")

nav.run()
