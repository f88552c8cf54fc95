"""The ward page's figures: vital-sign trends with NEWS2 colour bands, and the model risk.

Layout only (values, bands and alerts come from ``cxr_model.vitals``). Bands are drawn after
the data and with ``exclude_empty_subplots=False``: plotly skips shapes added with ``row=`` to a
subplot that has no trace yet, which is why the bands were once missing from the chart.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cxr_model.vitals.news2 import BANDS, POINT_COLOURS

# (channel, title, NEWS2 parameter, y range shown)
TRENDS = [("HR", "Pulse (beats/min)", "pulse", (30, 170)),
          ("RespRate", "Respiration rate (breaths/min)", "respiration_rate", (4, 40)),
          ("SBP", "Systolic blood pressure (mmHg)", "systolic_bp", (60, 240)),
          ("SaO2", "SpO2 (%) [stand-in: arterial SaO2]", "spo2", (80, 100)),
          ("Temp", "Temperature (°C)", "temperature", (34, 41))]
HOUR_AXIS = "hour of this patient's stay (since ICU admission)"


def trends_figure(p, step: int) -> go.Figure:
    """Measured values only (gaps where nothing was measured) over NEWS2 bands, up to ``step``."""
    fig = make_subplots(rows=len(TRENDS), cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=[t[1] for t in TRENDS])
    hours = np.arange(1, step + 2)
    for i, (chan, _, param, (lo, hi)) in enumerate(TRENDS, start=1):
        values, observed = p.trend(chan, step)
        # lines join consecutive hourly measurements only; a gap in measuring is a gap in the line
        fig.add_trace(go.Scatter(x=hours, y=values, mode="lines+markers", connectgaps=False,
                                 marker={"size": 6, "color": "#1565c0"}, line={"color": "#1565c0"},
                                 name="measured", showlegend=i == 1,
                                 hovertemplate="hour %{x}: %{y:.1f}<extra>measured</extra>"), row=i, col=1)
        seen = values[observed]
        y0 = min(lo, float(seen.min()) - 2) if seen.size else lo
        y1 = max(hi, float(seen.max()) + 2) if seen.size else hi
        for low, high, pts in BANDS[param]:
            if pts and high > y0 and low < y1:
                fig.add_hrect(y0=max(low, y0), y1=min(high, y1), fillcolor=POINT_COLOURS[pts], line_width=0,
                              layer="below", row=i, col=1, exclude_empty_subplots=False,
                              name=f"NEWS2 {pts} point{'s' if pts > 1 else ''}")
        fig.update_yaxes(range=[y0, y1], row=i, col=1)
        if not seen.size:
            fig.add_annotation(text="not measured so far", x=24, y=(y0 + y1) / 2, showarrow=False,
                               font={"color": "#616161"}, row=i, col=1)
        fig.add_vline(x=step + 1, line_color="#424242", line_width=1, row=i, col=1, exclude_empty_subplots=False)
    fig.update_layout(height=180 * len(TRENDS), margin={"t": 70, "b": 20}, legend={"orientation": "h"})
    fig.update_xaxes(range=[0, 49])
    fig.update_xaxes(title_text=HOUR_AXIS, row=len(TRENDS), col=1)
    return fig


def risk_figure(p, step: int, threshold: float, label: str) -> go.Figure:
    """The model's hourly risk up to ``step`` with its alert threshold and first crossing."""
    fig = go.Figure(go.Scatter(x=list(range(1, step + 2)), y=100 * p.risk[: step + 1], mode="lines+markers",
                               name=label))
    fig.add_hline(y=100 * threshold, line_dash="dash", line_color="#c62828",
                  annotation_text=f"alert threshold {100 * threshold:.1f}%")
    if p.first_alert is not None and p.first_alert <= step:
        fig.add_vline(x=p.first_alert + 1, line_color="#c62828",
                      annotation_text=f"first crossing: hour {p.first_alert + 1}")
    fig.add_vline(x=step + 1, line_color="#424242", line_width=1)
    fig.update_layout(height=280, margin={"t": 70, "b": 20}, xaxis_title=HOUR_AXIS, title=label,
                      yaxis_title="risk of in-hospital death (%)", yaxis_range=[0, 100], xaxis_range=[0, 49])
    return fig
