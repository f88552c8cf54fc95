"""Evaluation report: how the models do on a labelled set, with uncertainty, calibration and failures.

Score a labelled set (a Kaggle-layout folder or a ``path,label`` CSV under the data folder) or
open a saved run (``cxr-model evaluate --out``) from the runs folder (``CXR_RUNS_DIR``). All
numbers come from ``cxr_model.evaluation``; the threshold slider re-counts the confusion matrix
from the cached predictions and never re-runs the network.

Confinement: a saved run is picked from a list of the runs folder's runs, never typed as a path,
and the failure gallery reads images inside the data folder or the run folder only, so neither the
page nor a crafted predictions.csv can show other server files or tell whether they exist. Text
from run files (paths, names, messages) is shown through ``dashboard.text.plain``.
"""
from __future__ import annotations

import csv
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from cxr_model.imaging.report import analysis as A, figures as F, html as R
from cxr_model.imaging.report.gallery import failure_cases, gallery_item
from cxr_model.imaging.report.pdf import find_chromium, write_pdf
from cxr_model.imaging.report.run import EvalRun, analyse_run, load_run
from cxr_model.imaging.runfolder import PREDICTIONS, RunFolderError, safe_run_name, saved_runs
from cxr_model.metrics.format import fmt, vitals_groups
from cxr_model.registry import BundleError, read_metadata
from cxr_model.settings import get_settings
from dashboard.text import plain

settings = get_settings()
SAVED, SCORE = "Open a saved run folder", "Score a labelled set"


# ------------------------------------------------------------------------------------- caching
@st.cache_resource(show_spinner="Loading the chest X-ray model...")
def load_bundle(model_dir: str):
    """The shared model (one per process; never mutated)."""
    from cxr_model.imaging.bundle import load_cxr_bundle

    return load_cxr_bundle(model_dir, device=settings.device)


def _stamp(run_dir: Path) -> float:
    """Cache key part that changes when the run folder's predictions are rewritten."""
    p = run_dir / PREDICTIONS
    return p.stat().st_mtime if p.exists() else 0.0


@st.cache_data(show_spinner=False, max_entries=8)
def cached_run(run_dir: str, stamp: float) -> EvalRun:
    return load_run(run_dir)


@st.cache_data(show_spinner="Computing curves, calibration and bootstrap intervals...", max_entries=8)
def cached_analysis(run_dir: str, stamp: float) -> A.Analysis:
    """Everything at the run's own threshold (the expensive, threshold-free part is here)."""
    return analyse_run(cached_run(run_dir, stamp))


@st.cache_data(show_spinner=False, max_entries=64)
def cached_at(run_dir: str, stamp: float, threshold: float) -> A.Analysis:
    """The analysis re-counted at a slider threshold, from the cached predictions."""
    return A.at_threshold(cached_analysis(run_dir, stamp), cached_run(run_dir, stamp).predictions, threshold)


@st.cache_data(show_spinner=False, max_entries=256)
def cached_card(kind: str, path: str, label: int, probability: float, roots: tuple[str, ...], model_dir: str | None,
                allowed: tuple[str, ...]):
    """One gallery card; cached per image, so moving the threshold only draws the new mistakes."""
    bundle = load_bundle(model_dir) if model_dir else None
    return gallery_item(kind, path, label, probability, [Path(r) for r in roots], bundle=bundle,
                        allowed=[Path(a) for a in allowed])


def allowed_roots(run: EvalRun) -> list[Path]:
    """Where the gallery may read images: the data folder and the run's own folder."""
    return [settings.data_dir, run.run_dir]


def gallery(run: EvalRun, threshold: float, with_cam: bool, k: int = 6) -> list:
    roots = tuple(str(r) for r in run.image_roots())
    allowed = tuple(str(a) for a in allowed_roots(run))
    model_dir = str(settings.cxr_model_dir) if with_cam else None
    return [cached_card(kind, row.path, int(row.label), float(row.probability), roots, model_dir, allowed)
            for kind, df in failure_cases(run.predictions, threshold, k).items() for row in df.itertuples(index=False)]


@st.cache_data(show_spinner=False)
def model_card(model_dir: str) -> dict | None:
    try:
        return read_metadata(model_dir)
    except BundleError:
        return None


def labelled_sets() -> dict[str, Path]:
    """Labelled sets found under the data folder: Kermany split folders and path,label CSVs."""
    found = {}
    kermany = settings.kermany_dir
    if kermany.is_dir():
        for split in sorted(p for p in kermany.iterdir() if p.is_dir()):
            if (split / "NORMAL").is_dir() or (split / "PNEUMONIA").is_dir():
                found[f"Kermany {split.name} (folder)"] = split
    cxr = settings.data_dir / "cxr"
    for f in sorted(cxr.rglob("*.csv")) if cxr.is_dir() else []:
        try:
            with open(f, newline="") as fh:
                header = next(csv.reader(fh), [])
        except OSError:
            continue
        if "path" in header and "label" in header:
            found[f"{f.relative_to(cxr)} (CSV)"] = f
    return found


def runs_root() -> Path:
    return settings.runs_dir / "evaluations"


# ------------------------------------------------------------------------------------- widgets
def score_set() -> Path | None:
    """The 'score a labelled set' flow; returns the new (or last) run folder."""
    sets = labelled_sets()
    if not sets:
        st.info("No labelled set found in the data folder (CXR_DATA_DIR). Open a saved run instead.")
        return None
    name = st.selectbox("Labelled set", list(sets), key="eval_dataset")
    if st.button("Score this set", key="eval_start", type="primary"):
        try:
            from cxr_model.imaging.evaluate import run_evaluation
        except ImportError:
            st.error("Scoring is not available in this build (cxr_model.imaging.predict is missing).")
            return None
        out = runs_root() / safe_run_name(f"{Path(name.split(' (')[0]).name}-{time.strftime('%Y%m%d-%H%M%S')}")
        bar = st.progress(0.0, text="Scoring...")
        bundle = load_bundle(str(settings.cxr_model_dir))
        try:
            run_evaluation(sets[name], bundle, out, workers=0, show_bar=False,
                           progress=lambda done, total: bar.progress(done / max(total, 1), text=f"Scored {done} of {total}"))
        except (ValueError, FileNotFoundError) as exc:
            bar.empty()
            st.error(plain(f"{name}: {exc}"))
            return None
        bar.empty()
        st.session_state["eval_last_run"] = str(out)
        st.success(plain(f"Saved as {out.relative_to(settings.runs_dir).as_posix()} (open it again later as a saved run)."))
    last = st.session_state.get("eval_last_run")
    return Path(last) if last else None


def pick_run() -> Path | None:
    mode = st.radio("Source", [SAVED, SCORE], key="eval_source", horizontal=True)
    if mode == SCORE:
        return score_set()
    runs = saved_runs(settings.runs_dir)
    if not runs:
        st.info("No saved run in the runs folder (CXR_RUNS_DIR) yet. Score a labelled set here, or write one with "
                "`cxr-model evaluate --out` into that folder.")
        return None
    name = st.selectbox("Saved run", list(runs), key="eval_run", index=None, placeholder="Choose a run",
                        help="Runs in the runs folder (CXR_RUNS_DIR) written by `cxr-model evaluate --out` or by "
                             "'Score a labelled set'; newest first.")
    return runs.get(name) if name else None


def metric_cards(rows: list[dict]) -> None:
    cols = st.columns(len(rows))
    for col, r in zip(cols, rows):
        ci = f"95% CI {fmt(r['ci95'])} ({r['ci_method'].split(',')[0]}); n = {r['n']} {r['n_of']}"
        col.metric(r["metric"], fmt(r["value"]), help=ci)
        col.caption(f"{fmt(r['ci95'])} · n = {r['n']}")


def rows_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"metric": r["metric"], "value": fmt(r["value"]), "95% CI": fmt(r["ci95"]) if r["ci95"] else "",
                          "CI method": r["ci_method"], "n": r["n"], "n counts": r["n_of"], "split": r["split"]}
                         for r in rows])


def subgroup_frame(rows: list[dict]) -> pd.DataFrame:
    names = {"n": "n", "n_positive": "pneumonia", "n_negative": "normal", "mean_probability": "mean P",
             "auroc": "AUROC", "auroc_ci95": "AUROC 95% CI", "sensitivity": "sensitivity",
             "sensitivity_ci95": "sensitivity 95% CI", "specificity": "specificity",
             "specificity_ci95": "specificity 95% CI", "accuracy": "accuracy", "accuracy_ci95": "accuracy 95% CI"}
    return pd.DataFrame([{"group": r["group"], **{v: fmt(r[k]) for k, v in names.items()}} for r in rows])


def show_gallery(items) -> None:
    if not items:
        st.write("No false negatives or false positives at this threshold.")
        return
    for kind in ("false negative", "false positive"):
        group = [g for g in items if g.kind == kind]
        st.markdown(f"**{kind.capitalize()}s** ({len(group)} most confident)")
        cols = st.columns(3)
        for i, g in enumerate(group):
            with cols[i % 3]:
                imgs = [b for b in (g.image_png, g.cam_png) if b]
                if imgs:
                    st.image(imgs, width=150)
                st.caption(plain(f"P(pneumonia) {g.probability:.3f} · {Path(g.path).name}"
                                 + (f" · {g.note}" if g.note else "")))


def cxr_tab() -> None:
    run_dir = pick_run()
    if run_dir is None:
        st.info("Choose a saved run folder or score a labelled set to see its report.")
        return
    try:
        run = cached_run(str(run_dir), _stamp(run_dir))
    except RunFolderError as exc:
        st.error(plain(str(exc).replace(str(run_dir), run_dir.name)))
        return
    meta = model_card(str(settings.cxr_model_dir))
    current_id = f"{meta['name']}@{meta['version']}" if meta else None
    run_model = run.metrics.get("model")
    same_model = bool(meta) and (run_model in (None, current_id))
    if run_model and current_id and run_model != current_id:
        st.warning(f"This run was scored by {plain(run_model)}; the installed model is {plain(current_id)}. "
                   "The training-data panel and Grad-CAM are not shown for a different model.")
    op = run.threshold(meta)
    st.subheader(plain(f"{run_model or 'model'} on {run.split}"))
    st.caption(f"n = {len(run.predictions)} scored, {len(run.errors)} unreadable · operating threshold {op:.4f} · "
               + plain(run.run_dir.name))

    summary = A.data_summary(run.predictions, len(run.errors))
    training = A.training_summary(meta if same_model else None)
    left, right = st.columns(2)
    with left:
        st.markdown(f"**This set** ({plain(run.split)})")
        st.dataframe(pd.DataFrame({"class": list(summary["classes"]), "images": list(summary["classes"].values())}),
                     hide_index=True)
        if "subtypes" in summary:
            st.caption(plain("Subtypes: " + ", ".join(f"{k} {v}" for k, v in summary["subtypes"].items())))
        if "sizes" in summary:
            s = summary["sizes"]
            st.caption(plain(f"Image sizes: {s['distinct']} distinct; most common "
                             + ", ".join(f"{k} ({v})" for k, v in s["most_common"].items())))
    with right:
        st.markdown(f"**Training data** of {plain(training.get('model', 'the model'))}")
        if training:
            st.dataframe(pd.DataFrame([{"split": k, **v} for k, v in training["counts"].items()]), hide_index=True)
            st.caption(plain(f"{training['data']} · {training['split']}"))
        else:
            st.caption("Model card not available for this run's model.")

    def reset_threshold() -> None:
        st.session_state["eval_threshold"] = float(op)

    st.button(f"Back to the operating threshold ({op:.3f})", key="eval_threshold_reset", on_click=reset_threshold)
    threshold = st.slider("Decision threshold: P(pneumonia) at or above it is called pneumonia", 0.0, 1.0,
                          value=float(op), step=0.005, format="%.3f", key="eval_threshold")
    a = cached_at(str(run_dir), _stamp(run_dir), float(threshold))
    metric_cards([a.row(k) for k in ("sensitivity", "specificity", "ppv", "npv", "accuracy")])

    figs = R.build_figures(run, a)
    c1, c2 = st.columns(2)
    c1.plotly_chart(figs["roc-curve"], key="eval_roc")
    c2.plotly_chart(figs["pr-curve"], key="eval_pr")
    c1.plotly_chart(figs["confusion-matrix"], key="eval_confusion")
    c2.plotly_chart(figs["probability-histogram"], key="eval_hist")
    st.markdown(f"**Metrics** ({plain(run.split)}, n = {a.n}, threshold {threshold:.3f})")
    st.dataframe(rows_frame(a.rows), hide_index=True)
    st.caption("Wilson score intervals for proportions; seeded percentile bootstrap (2,000 resamples) for AUROC, "
               "AUPRC, ECE, Brier and F1.")

    st.markdown("### Calibration")
    st.plotly_chart(figs["reliability-diagram"], key="eval_reliability")
    cal = a.calibration
    st.caption(f"Calibration slope {fmt(cal['slope'], 2)} (ideal 1) · intercept {fmt(cal['intercept'], 2)} · "
               f"calibration-in-the-large {fmt(cal['citl'], 2)} (ideal 0); n = {a.n}, {plain(run.split)}")

    st.markdown("### Subgroups")
    if not a.subgroups:
        st.caption("No categorical column in predictions.csv to form subgroups.")
    for col, rows in a.subgroups.items():
        st.markdown(f"By {plain(col)} (threshold {threshold:.3f})")
        st.dataframe(subgroup_frame(rows), hide_index=True)

    st.markdown("### Failure gallery")
    with_cam = st.toggle("Grad-CAM overlays", value=same_model, key="eval_cam", disabled=not same_model)
    with st.spinner("Preparing the failure gallery..."):
        show_gallery(gallery(run, float(threshold), with_cam and same_model))

    st.markdown("### Unreadable files")
    if run.errors.empty:
        st.caption("Every file was readable and scored.")
    else:
        st.dataframe(run.errors, hide_index=True)

    def report_bytes() -> bytes:
        bundle = load_bundle(str(settings.cxr_model_dir)) if same_model else None
        return R.report_html(run, meta if same_model else None, bundle=bundle, threshold=threshold,
                             allowed_roots=allowed_roots(run)).encode("utf-8")

    def pdf_bytes() -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            html_path = Path(tmp) / "report.html"
            html_path.write_bytes(report_bytes())
            return write_pdf(html_path).read_bytes()

    d1, d2, d3 = st.columns(3)
    d1.download_button(f"report.html (threshold {threshold:.3f})", report_bytes, file_name="report.html",
                       mime="text/html", key="eval_download_report")
    d2.download_button("predictions.csv", run.predictions.to_csv(index=False), file_name="predictions.csv",
                       mime="text/csv", key="eval_download_predictions")
    if find_chromium():
        d3.download_button("report.pdf", pdf_bytes, file_name="report.pdf", mime="application/pdf",
                           key="eval_download_pdf", help="The HTML report printed by headless Chromium.")


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
    st.dataframe(pd.DataFrame([{k: fmt(v) for k, v in r.items()} for r in rows]), hide_index=True,
                 key="eval_vitals_table")
    st.plotly_chart(F.vitals_figure(rows), key="eval_vitals_chart")
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
    st.dataframe(pd.DataFrame([{k: fmt(v) for k, v in r.items()} for r in rows]), hide_index=True,
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


st.title("Evaluation report")
st.caption("**Decision support, not a diagnosis.** How a model performed on one labelled set, with 95% "
           "confidence intervals, calibration and its most confident mistakes.")
vitals_meta = settings.vitals_model_dir / "metadata.json"
if vitals_meta.exists():
    tab_cxr, tab_vitals = st.tabs(["Chest X-ray model", "Ward vitals model"])
    with tab_cxr:
        cxr_tab()
    with tab_vitals:
        vitals_tab(vitals_meta)
else:
    cxr_tab()
