"""Ward vitals: the ward sorted by LSTM risk, replayed hour by hour, with a patient detail.

Layout only: scoring, NEWS2 and explanations come from ``cxr_model.vitals``.
"""
from __future__ import annotations

import time

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from cxr_model.registry import BundleError
from cxr_model.settings import get_settings
from cxr_model.vitals.demo import DEMO_LABEL, demo_records
from cxr_model.vitals.explain import occlusion
from cxr_model.vitals.news2 import BANDS, POINT_COLOURS, RISK_COLOURS, SUBSTITUTIONS, news2_inputs
from cxr_model.vitals.ward import build_ward, has_real_ward, real_ward_records, snapshot
from dashboard.auth import current_identity
from dashboard.resources import vitals_bundle
from dashboard.tables import news2_rows
from dashboard.text import plain

REAL = "PhysioNet 2012 set A (30 held-out test stays)"
DEMO = "Simulated demo ward"
TICK_SECONDS = 1.5
TRENDS = [("HR", "Pulse (bpm)", "pulse"), ("RespRate", "Respiration (/min)", "respiration"),
          ("SBP", "Systolic BP (mmHg)", "systolic_bp"), ("SaO2", "SaO2 (%)", "spo2"),
          ("Temp", "Temperature (°C)", "temperature")]


@st.cache_data(show_spinner="Scoring the ward ...")
def load_ward(source: str, physionet_dir: str, model_dir: str):
    bundle = vitals_bundle(model_dir)
    if source == REAL:
        records, errors = real_ward_records(physionet_dir, bundle)
    else:
        records, errors = demo_records(), []
    return build_ward(records, bundle), errors


@st.cache_data(show_spinner=False)
def contributions(source: str, physionet_dir: str, model_dir: str, index: int, step: int) -> list[dict]:
    patients, _ = load_ward(source, physionet_dir, model_dir)
    return occlusion(vitals_bundle(model_dir), patients[index].grid, step)


settings = get_settings()
model_dir, physionet_dir = str(settings.vitals_model_dir), str(settings.physionet_dir)

current_identity()  # signed out: the sign-in screen, and the page stops here
st.title("Ward vitals: early warning")
st.caption("**Decision support, not a diagnosis.** Risk of in-hospital death from the ICU record so far "
           "(LSTM, calibrated) beside NEWS2. Thresholds and limits are in the model card.")

try:
    bundle = vitals_bundle(model_dir)
except (BundleError, OSError, ValueError) as exc:
    st.error(f"The vitals model cannot be loaded: {plain(exc)}")
    st.stop()

has_data = has_real_ward(physionet_dir, model_dir)
sources = [REAL, DEMO] if has_data else [DEMO]
with st.sidebar:
    source = st.radio("Ward", sources, key="ward_source")
    autoplay = st.toggle("Auto-play (one hour per tick)", key="ward_autoplay")
if not has_data:
    st.info(f"PhysioNet 2012 data not found at `{physionet_dir}` (set CXR_DATA_DIR); showing the simulated ward.")
if source == DEMO:
    st.warning(f"**{DEMO_LABEL}**")

patients, errors = load_ward(source, physionet_dir, model_dir)
for e in errors:
    st.warning(f"Record skipped: {plain(e)}")  # the message quotes the record file's content
if not patients:
    st.error("No stays could be read for this ward.")
    st.stop()

labels = [f"{p.bed} · {p.record_id}" for p in patients]
st.session_state.setdefault("ward_hour", 24)
if st.session_state.get("ward_patient") not in labels:
    st.session_state["ward_patient"] = labels[int(max(range(len(patients)), key=lambda i: patients[i].risk[23]))]


def risk_style(band: str) -> str:
    return f"background-color: {RISK_COLOURS.get(band, '#ffffff')}; color: white"


def overview(step: int) -> None:
    rows = snapshot(patients, step, bundle.threshold)
    df = pd.DataFrame([{
        "Bed": r["bed"], "Record": r["record_id"], "NEWS2": r["news2"], "NEWS2 band": r["news2_band"],
        "Risk %": 100 * r["risk"], "4 h trend (pts)": 100 * r["trend"],
        "Last vitals (h ago)": r["last_obs_h"], "Alert": r["alert"],
        "Alert since hour": r["alert_since_h"],
    } for r in rows])
    n_alert = sum(r["alert"] == "ALERT" for r in rows)
    st.metric("Patients alerting now", f"{n_alert} of {len(rows)}",
              help=f"risk ≥ {100 * bundle.threshold:.1f}% ({bundle.meta['threshold']['rule']})")
    st.dataframe(
        df.style.map(risk_style, subset=["NEWS2 band"]), hide_index=True, width="stretch",
        column_config={
            "Risk %": st.column_config.ProgressColumn("Risk %", min_value=0, max_value=100, format="%.0f%%"),
            "4 h trend (pts)": st.column_config.NumberColumn(format="%+.1f"),
            "Last vitals (h ago)": st.column_config.NumberColumn(format="%.0f"),
            "Alert since hour": st.column_config.NumberColumn(format="%d"),
        },
    )


def trends_figure(p, step: int) -> go.Figure:
    fig = make_subplots(rows=len(TRENDS), cols=1, shared_xaxes=True, vertical_spacing=0.03,
                        subplot_titles=[t[1] for t in TRENDS])
    hours = list(range(1, step + 2))  # replay: nothing after the cursor is shown
    for i, (chan, title, param) in enumerate(TRENDS, start=1):
        values, observed = p.trend(chan, step)
        seen = [h for h, m in zip(hours, observed) if m > 0]
        y_seen = [v for v, m in zip(values, observed) if m > 0]
        lo, hi = min(list(values) + [b[0] for b in BANDS[param][1:2]]), max(list(values))
        for low, high, pts in BANDS[param]:
            if pts and high > lo - 5 and low < hi + 5:
                fig.add_hrect(y0=low, y1=high, fillcolor=POINT_COLOURS[pts], line_width=0, row=i, col=1)
        fig.add_trace(go.Scatter(x=hours, y=values, mode="lines", line={"color": "#90a4ae", "dash": "dot"},
                                 name="carried forward", showlegend=i == 1), row=i, col=1)
        fig.add_trace(go.Scatter(x=seen, y=y_seen, mode="markers+lines", marker={"size": 5, "color": "#1565c0"},
                                 name="observed", showlegend=i == 1), row=i, col=1)
        fig.add_vline(x=step + 1, line_color="#424242", line_width=1, row=i, col=1)
    fig.update_layout(height=170 * len(TRENDS), margin={"t": 30, "b": 20}, legend={"orientation": "h"})
    fig.update_xaxes(range=[0, 49])
    fig.update_xaxes(title_text="hour since ICU admission", row=len(TRENDS), col=1)
    return fig


def risk_figure(p, step: int) -> go.Figure:
    fig = go.Figure(go.Scatter(x=list(range(1, step + 2)), y=100 * p.risk[: step + 1], mode="lines+markers",
                               name="LSTM risk"))
    fig.add_hline(y=100 * bundle.threshold, line_dash="dash", line_color="#c62828",
                  annotation_text=f"alert threshold {100 * bundle.threshold:.1f}%")
    if p.first_alert is not None and p.first_alert <= step:
        fig.add_vline(x=p.first_alert + 1, line_color="#c62828",
                      annotation_text=f"first crossing: hour {p.first_alert + 1}")
    fig.add_vline(x=step + 1, line_color="#424242", line_width=1)
    fig.update_layout(height=280, margin={"t": 30, "b": 20}, xaxis_title="hour since ICU admission",
                      yaxis_title="risk of in-hospital death (%)", yaxis_range=[0, 100], xaxis_range=[0, 49])
    return fig


def detail(step: int) -> None:
    index = labels.index(st.session_state["ward_patient"])
    p = patients[index]
    st.subheader(f"{p.bed} · record {p.record_id} · hour {step + 1}")
    c1, c2, c3 = st.columns(3)
    c1.metric("LSTM risk", f"{100 * p.risk[step]:.1f}%", f"{100 * (p.risk[step] - p.risk[max(0, step - 4)]):+.1f} pts / 4 h",
              delta_color="inverse")
    c2.metric("NEWS2", int(p.news2.total[step]), p.news2.risk[step], delta_color="off")
    alerted = p.first_alert is not None and p.first_alert <= step
    c3.metric("First alert", f"hour {p.first_alert + 1}" if alerted else "none yet")
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(trends_figure(p, step), key="ward_trends")
    with right:
        st.markdown("**NEWS2 at the cursor**")
        st.dataframe(news2_rows(news2_inputs(p.grid, step), p.news2.breakdown(step)), hide_index=True)
        st.caption(f"Stand-ins: {SUBSTITUTIONS}")
        st.markdown("**What moved the risk** (occlusion: risk minus risk with the input unmeasured)")
        contrib = contributions(source, physionet_dir, model_dir, index, step)[:8]
        st.dataframe(pd.DataFrame([{"input": c["input"], "risk change (pts)": round(100 * c["contribution"], 2),
                                    "measured": c["observed"]} for c in contrib]), hide_index=True)
    st.plotly_chart(risk_figure(p, step), key="ward_risk")


@st.fragment(run_every=TICK_SECONDS if autoplay else None)
def ward_view() -> None:
    if st.session_state.get("ward_autoplay"):
        now = time.monotonic()
        if now - st.session_state.get("_ward_tick", 0.0) >= TICK_SECONDS * 0.9:
            st.session_state["ward_hour"] = st.session_state["ward_hour"] % 48 + 1
            st.session_state["_ward_tick"] = now
    hour = st.slider("Hour since ICU admission (time cursor)", 1, 48, key="ward_hour")
    step = hour - 1
    overview(step)
    st.selectbox("Patient", labels, key="ward_patient")
    detail(step)


ward_view()
st.caption(f"Model {bundle.model_id}; alert threshold {100 * bundle.threshold:.1f}% chosen on validation stays. "
           "Data: PhysioNet/CinC Challenge 2012 (Silva et al. 2012), ODC-BY 1.0.")
