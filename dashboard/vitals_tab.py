"""The evaluation page's "Ward vitals model" tab: validation metrics from the card, then the held-out test run.

NEWS2 is shown at its clinical triggers (RCP 2017: 5 = urgent response, 7 = emergency response),
never at a threshold tuned on the data.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from cxr_model.imaging.report.figures import reliability_figure
from cxr_model.metrics.calibration import ReliabilityBins
from cxr_model.metrics.format import fmt, fmt_lead_time, fmt_threshold, vitals_groups
from cxr_model.registry import BundleError, sha256_file
from cxr_model.vitals.evaluate import evaluate
from dashboard.auth import audit
from dashboard.text import plain

LAYOUT = dict(template="plotly_white", height=380, margin=dict(l=60, r=20, t=50, b=50))
MODELS = {"ensemble": "LSTM + GBT ensemble", "lstm": "LSTM", "gbt": "Gradient-boosted trees"}
COLUMNS = {"n": "n", "n_positive": "deaths", "auroc": "AUROC", "auroc_ci95": "AUROC 95% CI", "auprc": "AUPRC",
           "auprc_ci95": "AUPRC 95% CI", "threshold": "alert threshold", "event1": "event-1",
           "event1_ci95": "event-1 95% CI", "sensitivity": "sensitivity", "ppv": "PPV", "brier": "Brier",
           "brier_ci95": "Brier 95% CI"}
SUBGROUP_COLUMNS = {"observed_mortality": "observed mortality", "mean_probability": "mean predicted risk",
                    "auroc": "AUROC", "auroc_ci95": "AUROC 95% CI", "event1": "event-1", "sensitivity": "sensitivity",
                    "sensitivity_ci95": "sensitivity 95% CI", "ppv": "PPV", "ppv_ci95": "PPV 95% CI",
                    "news2_auroc": "NEWS2 AUROC", "news2_auroc_ci95": "NEWS2 AUROC 95% CI"}
CASE_COLUMNS = {"record_id": "record", "icu_type": "ICU type", "age_band": "age", "sex": "sex",
                "risk_48h": "risk at 48 h", "model_first_alert_hour": "first model alert (hour)",
                "news2_max_48h": "highest NEWS2", "saps1": "SAPS-I", "survival_days": "death, days after ICU admission"}
ALERTS = {"alerts": "model", "alerts_news2_5": "NEWS2 ≥ 5", "alerts_news2_7": "NEWS2 ≥ 7",
          "alerts_combined": "model or NEWS2 ≥ 5"}


def group_label(row: dict) -> str:
    """``ensemble_48h`` -> "LSTM + GBT ensemble, risk at 48 h"; a NEWS2 group at threshold 7 over 24 h ->
    "NEWS2 ≥ 7, highest in 24 h" (the threshold the row was scored at)."""
    key = row["group"]
    if key == "saps1":
        return "SAPS-I (admission score)"
    name, _, rest = key.partition("_")
    window = rest.split("_")[0].rstrip("h")
    if name == "news2":
        thr = row.get("threshold")
        return f"NEWS2 ≥ {thr:g}, highest in {window} h" if isinstance(thr, (int, float)) else f"NEWS2, highest in {window} h"
    return f"{MODELS.get(name, name)}, risk at {window} h"


def metrics_frame(rows: list[dict]) -> pd.DataFrame:
    """Metric rows with readable labels and column names; every number through :func:`fmt`."""
    return pd.DataFrame([{"model / window": group_label(r),
                          **{v: (fmt_threshold if k == "threshold" else fmt)(r[k]) if k in r else "-"
                             for k, v in COLUMNS.items()}} for r in rows])


def vitals_figure(rows: list[dict], title: str, metrics=("auroc", "auprc", "event1")) -> go.Figure:
    """Grouped bars of the metrics, one group per model and window, with their 95 % intervals where the rows
    carry them (the held-out run; validation choices have none)."""
    fig = go.Figure()
    names = {"auroc": "AUROC", "auprc": "AUPRC", "event1": "event-1"}
    for m in metrics:
        y = [r.get(m) for r in rows]
        cis = [r.get(f"{m}_ci95") or [None, None] for r in rows]
        # the bar's own value may sit just outside a percentile interval: the whisker then stops at the bar
        up = [max(hi - v, 0.0) if None not in (v, hi) else 0.0 for v, (_, hi) in zip(y, cis)]
        down = [max(v - lo, 0.0) if None not in (v, lo) else 0.0 for v, (lo, _) in zip(y, cis)]
        fig.add_trace(go.Bar(x=[group_label(r) for r in rows], y=y, name=names[m],
                             error_y=dict(type="data", symmetric=False, array=up, arrayminus=down,
                                          visible=any(c != [None, None] for c in cis)),
                             hovertemplate="%{x}: %{y:.3f}<extra>" + names[m] + "</extra>"))
    fig.update_layout(barmode="group", title=title, yaxis=dict(range=[0, 1]), **LAYOUT)
    return fig


def _n_label(meta: dict) -> str | None:
    data, val = meta.get("training_data") or {}, (meta.get("validation") or {}).get("ensemble_48h") or {}
    if meta.get("validation_kind") and val.get("n"):
        return f"cross-validated n = {val['n']}"
    return data.get("n_val") and f"validation n = {data['n_val']}"


def vitals_tab(meta_path: Path, physionet_dir: Path | None = None, cache_dir: Path | None = None) -> None:
    """The tab: validation rows from the card, then the bundled held-out run; failure cases from
    ``physionet_dir`` (set A) into ``cache_dir`` on request."""
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        st.error(plain(f"{meta_path.name}: cannot be read ({exc})"))
        return
    st.subheader(plain(f"{meta.get('name', 'vitals model')}@{meta.get('version', '?')}"))
    split = meta.get("split") or {}
    data = meta.get("training_data") or {}
    st.caption(" · ".join(str(x) for x in (data.get("source"), split.get("name") and f"split {split['name']}",
                                            _n_label(meta)) if x))
    rows = vitals_groups(meta.get("validation") or {})
    if not rows:
        st.info("The vitals model card holds no validation metrics with an AUROC.")
        return
    kind = meta.get("validation_kind")
    st.markdown(f"**Validation stays: {kind}** (calibration, weight and thresholds were chosen on them: optimistic)" if kind
                else "**Validation stays** (used for early stopping, calibration and thresholds: optimistic)")
    st.dataframe(metrics_frame(rows), hide_index=True, key="eval_vitals_table")
    st.plotly_chart(vitals_figure(rows, "Early-warning scores on the validation stays"), key="eval_vitals_chart")
    st.caption("Event-1 = min(sensitivity, positive predictivity) at each score's alert threshold, as in the "
               f"PhysioNet/CinC 2012 challenge. Model thresholds were chosen on {'these predictions' if kind else 'validation'}; NEWS2 is shown at its "
               "clinical triggers 5 and 7; SAPS-I at the threshold that maximised event-1 on validation.")
    thr = meta.get("threshold") or {}
    if thr:
        st.caption(f"Model alert threshold {fmt(thr.get('value'))}: {thr.get('rule', '')}")
    test_path = meta_path.parent / "test_evaluation" / "metrics.json"
    if test_path.exists():
        vitals_test_section(json.loads(test_path.read_text()))
        failure_section(test_path.parent, meta_path.parent, physionet_dir, cache_dir)
    model = f"{meta.get('name', 'vitals model')}@{meta.get('version', '?')}"
    files = [(p, mime) for p, mime in ((meta_path.parent / "MODEL_CARD.md", "text/markdown"), (test_path, "application/json"))
             if p.exists()]
    for col, (path, mime) in zip(st.columns(max(len(files), 1)), files):
        name = "Model card (MODEL_CARD.md)" if path.suffix == ".md" else "Held-out metrics (metrics.json)"
        col.download_button(name, path.read_bytes(), file_name=path.name, mime=mime, key=f"eval_vitals_download_{path.stem}",
                            on_click=audit, args=("report.export", model, {"file": path.name}))


EPISODES = ("An alert is an episode: an hour at or above the trigger after an hour below it. A score that dips "
            "below its trigger and comes back raises a new alert, so a higher trigger (NEWS2 >= 7) can raise more "
            "alerts than a lower one while alerting fewer patients.")


def vitals_test_section(m: dict, title: str | None = None, what: str = "the held-out test stays",
                        key: str = "eval_vitals") -> None:
    """Metrics of one evaluation (``cxr-model vitals evaluate``; the bundled one is ``--split test``), alert
    burden, calibration and subgroups. ``what`` names the stays in titles; ``key`` prefixes the widgets' keys."""
    st.subheader(title or f"Held-out test stays (split {m.get('split')}, n = {m.get('n')})")
    rows = vitals_groups({k: v for k, v in m.items() if not k.startswith("alerts") and k != "calibration_48h"})
    st.dataframe(metrics_frame(rows), hide_index=True, key=f"{key}_test_table")
    st.plotly_chart(vitals_figure(rows, f"Early-warning scores on {what}"), key=f"{key}_test_chart")
    al, cal = m.get("alerts") or {}, m.get("calibration_48h") or {}
    if al:
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Alerts per patient-day", fmt(al.get("alerts_per_patient_day")), help=EPISODES)
        c2.metric("Deaths alerted", fmt(al.get("deaths_alerted")), help="Share of in-hospital deaths with an alert in 48 h")
        c3.metric("Survivors alerted", fmt(al.get("survivors_alerted")))
        c4.metric("Median lead time (h)", fmt_lead_time(al.get("median_lead_time_h")),
                  help=f"First alert to death, n = {al.get('n_lead_time')} deaths with a known date; "
                       "whole days only (PhysioNet 'Survival'), so +-24 h")
    burden = [{"alert source": label, "alerts per patient-day": fmt(a.get("alerts_per_patient_day")),
               "deaths alerted": fmt(a.get("deaths_alerted")), "survivors alerted": fmt(a.get("survivors_alerted")),
               "median lead time (h)": fmt_lead_time(a.get("median_lead_time_h"))}
              for group, label in ALERTS.items() if (a := m.get(group))]
    if len(burden) > 1:
        st.dataframe(pd.DataFrame(burden), hide_index=True, key=f"{key}_alerts_table")
        st.caption(EPISODES)
    if cal.get("bins"):
        st.plotly_chart(reliability_figure(ReliabilityBins.from_rows(cal["bins"]), cal.get("ece", float("nan")), cal,
                                           f"48 h risk of {what} (n = {m.get('n')}); marker size = stays",
                                           observed="observed fraction who died in hospital"),
                        key=f"{key}_reliability")
    if cal:
        st.caption(f"48 h risk calibration on these stays: ECE {fmt(cal.get('ece'))}, slope {fmt(cal.get('slope'))}, "
                   f"intercept {fmt(cal.get('intercept'))}.")
    if m.get("subgroups_48h"):
        st.markdown(f"**Subgroups of {what}** (48 h risk at the model's fixed alert threshold; "
                    "NEWS2 as its highest score in 48 h)")
        st.dataframe(subgroup_frame(m["subgroups_48h"]), hide_index=True, key=f"{key}_subgroups",
                     column_config={"grouping": st.column_config.TextColumn(pinned=True),  # stay in view on scrolling
                                    "group": st.column_config.TextColumn(width=210, pinned=True)})
        st.caption("Groups from the stays' descriptors (PhysioNet 2012 ICU type, age, sex). Observed mortality beside "
                   "the mean predicted risk shows calibration in the large per group; a group with few deaths has "
                   "wide intervals: read them before its point value. Groups under 10 stays show their counts only.")


def failure_section(test_dir: Path, bundle_dir: Path, physionet_dir: Path | None, cache_dir: Path | None) -> None:
    """The worst misses and false alarms of the held-out run: from ``failure_cases.json`` beside its metrics,
    or (a bundle ships aggregates only: these are rows of the data set) scored from the data folder on request into
    ``cache_dir`` (the state folder: a run folder holding predictions.csv would be listed as a chest X-ray run)."""
    st.markdown("**Failure cases of the held-out stays** (review each with its record: `cxr-model vitals news2 "
                "RECORD --hour H` prints its NEWS2 at any hour)")
    path = test_dir / "failure_cases.json"
    if not path.exists() and cache_dir is not None:
        path = cache_dir / "vitals_failure_cases" / f"{bundle_dir.name}-{sha256_file(bundle_dir / 'metadata.json')[:12]}" / path.name
    if not path.exists():
        records, outcomes = (physionet_dir / "set-a", physionet_dir / "Outcomes-a.txt") if physionet_dir else (None, None)
        if cache_dir is None or records is None or not (records.is_dir() and outcomes.is_file()):
            st.caption("Failure cases list stays of the data set, so they are not bundled with the model; with the "
                       "PhysioNet 2012 set A under the data folder they can be listed here.")
            return
        if not st.button("List the failure cases (scores the held-out stays from the data folder, about 15 s)",
                         key="eval_vitals_cases_run"):
            return
        try:
            with st.spinner("Scoring the held-out test stays"):
                evaluate(records, outcomes, bundle_dir, path.parent, split="test")
        except (OSError, ValueError, BundleError) as exc:  # a damaged outcomes file or bundle: say which, no traceback
            st.error(plain(f"The failure cases could not be listed: {exc}"))
            return
        st.rerun()  # drawn again from the cache: the button, done, goes away
    try:
        cases = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        st.error(plain(f"{path.name}: cannot be read ({exc})"))
        return
    st.caption(f"{cases.get('model')}, split {cases.get('split')}, alert threshold {fmt(cases.get('threshold'))}.")
    st.caption("Deaths with the lowest 48 h risk (missed)")
    wide = {"ICU type": st.column_config.TextColumn(width=210)}
    st.dataframe(case_frame(cases.get("missed_deaths", [])), hide_index=True, key="eval_vitals_missed", column_config=wide)
    st.caption("Survivors with the highest 48 h risk (false alarms)")
    st.dataframe(case_frame(cases.get("false_alarms", [])), hide_index=True, key="eval_vitals_false_alarms",
                 column_config=wide)
    stays = path.parent / "predictions.csv"
    if stays.exists():
        st.download_button("Every held-out stay (predictions.csv)", stays.read_bytes(), file_name="vitals_predictions.csv",
                           mime="text/csv", key="eval_vitals_download_predictions", on_click=audit,
                           args=("report.export", str(cases.get("model")), {"file": "predictions.csv"}))


def subgroup_frame(rows: list[dict]) -> pd.DataFrame:
    """Subgroup rows of ``metrics.json`` with readable columns; every number through :func:`fmt`."""
    return pd.DataFrame([{"grouping": r["grouping"], "group": r["group"], "n": r["n"], "deaths": r["n_positive"],
                          **{label: "-" if r.get("too_few") else fmt(r.get(k)) for k, label in SUBGROUP_COLUMNS.items()}}
                         for r in rows])


def case_frame(rows: list[dict]) -> pd.DataFrame:
    """Failure cases: the stay, its groups, risk, first alert and the comparators."""
    def cell(k: str, v) -> str:
        if v is None:
            return "-"
        if k == "risk_48h":
            return fmt(v)
        return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)  # days, scores: 740, not 740.000

    return pd.DataFrame([{label: cell(k, r.get(k)) for k, label in CASE_COLUMNS.items()} for r in rows])
