"""Plotly figures of an evaluation, shared by the Streamlit page and ``report.html``.

Each function takes numbers already computed by :mod:`cxr_model.metrics` and :mod:`cxr_model.imaging.report.analysis` and only draws.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from cxr_model.imaging.labels import CLASSES
from cxr_model.metrics.calibration import ReliabilityBins
from cxr_model.metrics.curves import Curve
from cxr_model.metrics.format import fmt_metric

_LAYOUT = dict(template="plotly_white", height=380, margin=dict(l=60, r=20, t=50, b=50))
OPERATING = "#d62728"


def _ci(ci) -> str:
    if not ci or any(v is None or (isinstance(v, float) and math.isnan(v)) for v in ci):
        return ""
    return f"95% CI {ci[0]:.3f}-{ci[1]:.3f} · "


def roc_figure(roc: Curve, fpr_at: float, tpr_at: float, threshold: float, auroc: float, auroc_ci=None,
               subtitle: str = "") -> go.Figure:
    """ROC curve with the chance diagonal and the operating point marked."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"),
                             name="chance", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=roc.x, y=roc.y, mode="lines", line=dict(shape="linear", width=2), name="ROC",
                             customdata=roc.thresholds,
                             hovertemplate="FPR %{x:.3f}<br>TPR %{y:.3f}<br>threshold %{customdata:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[fpr_at], y=[tpr_at], mode="markers", marker=dict(size=12, color=OPERATING),
                             name=f"operating point (threshold {threshold:.3f})"))
    fig.update_layout(title=f"ROC: AUROC {auroc:.3f}<br><sup>{_ci(auroc_ci)}{subtitle}</sup>",
                      xaxis_title="1 - specificity (false positive rate)", yaxis_title="sensitivity (true positive rate)",
                      legend=dict(x=0.98, y=0.02, xanchor="right", yanchor="bottom"),
                      xaxis=dict(range=[-0.02, 1.02]), yaxis=dict(range=[-0.02, 1.02]), **_LAYOUT)
    return fig


def pr_figure(pr: Curve, recall_at: float, precision_at: float, threshold: float, auprc: float, prevalence: float,
              auprc_ci=None, subtitle: str = "") -> go.Figure:
    """Precision-recall curve (as a step, matching average precision) with the prevalence line."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[prevalence, prevalence], mode="lines", line=dict(dash="dot", color="grey"),
                             name=f"chance (prevalence {prevalence:.2f})", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=np.r_[0.0, pr.x], y=np.r_[pr.y[:1], pr.y], mode="lines", line=dict(shape="vh", width=2),
                             name="PR", hovertemplate="recall %{x:.3f}<br>precision %{y:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[recall_at], y=[precision_at], mode="markers", marker=dict(size=12, color=OPERATING),
                             name=f"operating point (threshold {threshold:.3f})"))
    fig.update_layout(title=f"Precision-recall: AUPRC {auprc:.3f}<br><sup>{_ci(auprc_ci)}{subtitle}</sup>",
                      xaxis_title="recall (sensitivity)", yaxis_title="precision (PPV)",
                      legend=dict(x=0.02, y=0.02, xanchor="left", yanchor="bottom"),
                      xaxis=dict(range=[-0.02, 1.02]), yaxis=dict(range=[-0.02, 1.02]), **_LAYOUT)
    return fig


def reliability_figure(bins: ReliabilityBins, ece: float, calibration: dict, subtitle: str = "",
                       observed: str = "observed fraction with pneumonia") -> go.Figure:
    """Observed fraction of positives (axis title ``observed``) against mean predicted probability per bin
    (size = count)."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"),
                             name="perfect calibration", hoverinfo="skip"))
    size = 8 + 22 * np.sqrt(bins.count / max(1, bins.count.max())) if len(bins.count) else []
    fig.add_trace(go.Scatter(x=bins.mean_predicted, y=bins.observed, mode="lines+markers", marker=dict(size=size),
                             customdata=bins.count, name="bins",
                             hovertemplate="mean predicted %{x:.3f}<br>observed %{y:.3f}<br>n %{customdata}<extra></extra>"))
    # n/a, not "nan", where a fit is undefined (one class only, or complete separation)
    cal = (f"ECE {fmt_metric(ece)} · slope {fmt_metric(calibration.get('slope'), 2)} · "
           f"intercept {fmt_metric(calibration.get('intercept'), 2)}")
    fig.update_layout(title=f"Reliability: {cal}<br><sup>{subtitle}</sup>", xaxis_title="mean predicted probability",
                      yaxis_title=observed, xaxis=dict(range=[-0.02, 1.02]),
                      yaxis=dict(range=[-0.02, 1.02]), legend=dict(x=0.02, y=0.98), **_LAYOUT)
    return fig


def confusion_figure(confusion: dict, threshold: float, classes=CLASSES) -> go.Figure:
    """2 x 2 confusion matrix: rows are the reference label, columns the model's call."""
    z = [[confusion["tn"], confusion["fp"]], [confusion["fn"], confusion["tp"]]]
    text = [[f"TN {z[0][0]}", f"FP {z[0][1]}"], [f"FN {z[1][0]}", f"TP {z[1][1]}"]]
    fig = go.Figure(go.Heatmap(z=z, x=[f"called {c}" for c in classes], y=[f"truly {c}" for c in classes],
                               text=text, texttemplate="%{text}", textfont=dict(size=18), colorscale="Blues",
                               showscale=False, hovertemplate="%{y}, %{x}: %{z}<extra></extra>"))
    fig.update_layout(title=f"Confusion matrix at threshold {threshold:.3f}", yaxis=dict(autorange="reversed"),
                      **dict(_LAYOUT, height=340))
    return fig


def probability_figure(y, p, threshold: float, classes=CLASSES) -> go.Figure:
    """Histogram of predicted probabilities per reference class, with the threshold line."""
    y, p = np.asarray(y), np.asarray(p)
    fig = go.Figure()
    for label, name in enumerate(classes):
        fig.add_trace(go.Histogram(x=p[y == label], name=f"truly {name}", opacity=0.6, xbins=dict(start=0, end=1, size=0.05)))
    fig.add_vline(x=threshold, line=dict(color=OPERATING, dash="dash"), annotation_text=f"threshold {threshold:.3f}")
    fig.update_layout(barmode="overlay", title="Predicted probability by reference class",
                      xaxis_title="P(pneumonia)", yaxis_title="images", xaxis=dict(range=[0, 1]), **_LAYOUT)
    return fig
