"""The evaluation page's "Ward vitals model" tab: the bundle's card metrics and its held-out test run."""
from __future__ import annotations

import json
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from cxr_model.metrics.format import fmt, vitals_groups
from dashboard.tables import formatted_frame
from dashboard.text import plain

LAYOUT = dict(template="plotly_white", height=380, margin=dict(l=60, r=20, t=50, b=50))


def vitals_figure(rows: list[dict], metrics=("auroc", "auprc", "event1")) -> go.Figure:
    """Grouped bars of the vitals models' metrics (LSTM vs NEWS2 vs SAPS-I), one group per model/window."""
    fig = go.Figure()
    for m in metrics:
        fig.add_trace(go.Bar(x=[r["group"] for r in rows], y=[r.get(m) for r in rows], name=m.upper(),
                             hovertemplate="%{x}: %{y:.3f}<extra>" + m + "</extra>"))
    fig.update_layout(barmode="group", title="Early-warning models on the same held-out stays",
                      yaxis=dict(range=[0, 1]), **LAYOUT)
    return fig


def vitals_tab(meta_path: Path) -> None:
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        st.error(plain(f"{meta_path.name}: cannot be read ({exc})"))
        return
    st.subheader(plain(f"{meta.get('name', 'vitals model')}@{meta.get('version', '?')}"))
    split = meta.get("split") or {}
    data = meta.get("training_data") or {}
    st.caption(" · ".join(str(x) for x in (data.get("source"), split.get("name") and f"split {split['name']}",
                                            data.get("n_val") and f"validation n = {data['n_val']}") if x))
    rows = vitals_groups({k: v for k, v in meta.items() if k not in ("history", "normaliser", "hyperparameters")})
    if not rows:
        st.info("The vitals model card holds no metrics with an AUROC.")
        return
    st.dataframe(formatted_frame(rows), hide_index=True,
                 key="eval_vitals_table")
    st.plotly_chart(vitals_figure(rows), key="eval_vitals_chart")
    st.caption("LSTM against NEWS2 and SAPS-I on the same held-out stays; event-1 = min(sensitivity, positive "
               "predictivity) at each model's alert threshold, as in the PhysioNet/CinC 2012 challenge.")
    thr = meta.get("threshold") or {}
    if thr:
        st.caption(f"LSTM alert threshold {fmt(thr.get('value'))}: {thr.get('rule', '')}")
    test_path = meta_path.parent / "test_evaluation" / "metrics.json"
    if test_path.exists():
        vitals_test_section(json.loads(test_path.read_text()))


def vitals_test_section(m: dict) -> None:
    """Held-out test metrics (``cxr-model vitals evaluate --split test``), alerts and calibration."""
    st.subheader(f"Held-out test stays ({m.get('split')}, n = {m.get('n')})")
    rows = vitals_groups({k: v for k, v in m.items() if k not in ("alerts", "calibration_48h")})
    st.dataframe(formatted_frame(rows), hide_index=True,
                 key="eval_vitals_test_table")
    al, cal = m.get("alerts") or {}, m.get("calibration_48h") or {}
    if al:
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Alerts per patient-day", fmt(al.get("alerts_per_patient_day")))
        c2.metric("Deaths alerted", fmt(al.get("deaths_alerted")), help="Share of in-hospital deaths with an alert in 48 h")
        c3.metric("Survivors alerted", fmt(al.get("survivors_alerted")))
        c4.metric("Median lead time (h)", fmt(al.get("median_lead_time_h"), 0),
                  help=f"First alert to death, n = {al.get('n_lead_time')} deaths with a known date; "
                       "whole days only (PhysioNet 'Survival'), so +-24 h")
    if cal:
        st.caption(f"48 h risk calibration on these stays: ECE {fmt(cal.get('ece'))}, slope {fmt(cal.get('slope'))}, "
                   f"intercept {fmt(cal.get('intercept'))}.")
