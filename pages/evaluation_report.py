"""Evaluation report: how the models do on a labelled set, with uncertainty, calibration and failures.

Score a labelled set (a Kaggle-layout folder or a ``path,label`` CSV under the data folder) or
open a saved run (``cxr-model evaluate --out``) from the runs folder (``CXR_RUNS_DIR``). All
numbers come from ``cxr_model.metrics`` and ``cxr_model.imaging.report``; the threshold slider re-counts the confusion matrix
from the cached predictions and never re-runs the network.

Confinement: a saved run is picked from a list of the runs folder's runs, never typed as a path,
and the failure gallery reads images inside the data folder or the run folder only, so neither the
page nor a crafted predictions.csv can show other server files or tell whether they exist. Text
from run files (paths, names, messages) is shown through ``dashboard.text.plain``.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from cxr_model.imaging.data import labelled_sets
from cxr_model.imaging.evaluate import evaluate_own_split, run_evaluation
from cxr_model.imaging.report import analysis as A, html as R
from cxr_model.imaging.report.gallery import failure_cases, gallery_item
from cxr_model.imaging.report.header import scope_lines
from cxr_model.imaging.report.pdf import find_chromium, write_pdf
from cxr_model.imaging.report.run import EvalRun, analyse_run, load_run
from cxr_model.imaging.runfolder import PREDICTIONS, RunFolderError, safe_run_name, saved_runs
from cxr_model.imaging.splits import own_split_choices
from cxr_model.metrics.format import fmt
from cxr_model.registry import metadata_or_none, model_id
from cxr_model.settings import get_settings
from dashboard.auth import audit, current_identity
from dashboard.frame import require_frame
from dashboard.resources import cxr_bundle
from dashboard.tables import rows_frame, subgroup_frame
from dashboard.text import plain
from dashboard.vitals_local import local_section
from dashboard.vitals_tab import vitals_tab

require_frame()  # gate and sidebar, also when Streamlit runs this page alone (dashboard/frame.py)

settings = get_settings()
SAVED, SCORE = "Open a saved run folder", "Score a labelled set"


# ------------------------------------------------------------------------------------- caching
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
    bundle = cxr_bundle(model_dir) if model_dir else None
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


def runs_root() -> Path:
    return settings.runs_dir / "evaluations"


# ------------------------------------------------------------------------------------- widgets
def score_set() -> Path | None:
    """The 'score a labelled set' flow; returns the new (or last) run folder."""
    own, sets = own_split_choices(settings.cxr_model_dir), labelled_sets(settings.data_dir)
    if not own and not sets:
        st.info("No labelled set found in the data folder (CXR_DATA_DIR). Open a saved run instead.")
        return None
    name = st.selectbox("Labelled set", [*own, *sets], key="eval_dataset",
                        help="The model's own held-out test split is the honest one: it was never used for training, "
                             "calibration or the operating point. A set that shares files with training or "
                             "validation is marked 'not a test' in the report.")
    if st.button("Score this set", key="eval_start", type="primary"):
        short = f"own-{own[name]}" if name in own else Path(name.split(' (')[0]).name
        out = runs_root() / safe_run_name(f"{short}-{time.strftime('%Y%m%d-%H%M%S')}")
        bar = st.progress(0.0, text="Scoring...")
        bundle = cxr_bundle()
        kwargs = dict(workers=0, show_bar=False,
                      progress=lambda done, total: bar.progress(done / max(total, 1), text=f"Scored {done} of {total}"))
        try:
            if name in own:
                evaluate_own_split(bundle, own[name], out, settings.data_dir, **kwargs)
            else:
                run_evaluation(sets[name], bundle, out, **kwargs)
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
    runs = saved_runs(settings.runs_dir)  # none yet (a fresh install): start on scoring, the own test split first
    if st.radio("Source", [SAVED, SCORE], key="eval_source", horizontal=True, index=0 if runs else 1) == SCORE:
        return score_set()
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
    meta = metadata_or_none(settings.cxr_model_dir)
    current_id = model_id(meta) if meta else None
    run_model = run.metrics.get("model")
    same_model = bool(meta) and (run_model in (None, current_id))
    if run_model and current_id and run_model != current_id:
        st.warning(f"This run was scored by {plain(run_model)}; the installed model is {plain(current_id)}. "
                   "The training-data panel and Grad-CAM are not shown for a different model.")
    op = run.threshold(meta)
    st.subheader(plain(f"{run_model or 'model'} on {run.split}"))
    st.caption(f"n = {len(run.predictions)} scored, {len(run.errors)} unreadable · operating threshold {op:.4f} · "
               + plain(run.run_dir.name))
    for level, text in scope_lines(run.metrics, meta if same_model else None):
        (st.warning if level == "warning" else st.info)(plain(text), icon="⚠️" if level == "warning" else None)

    summary = A.data_summary(run.predictions, len(run.errors))
    if note := A.mixed_population_note(summary):
        st.warning(plain(note))
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
        st.markdown(f"By {plain(A.subgroup_label(col))} (threshold {threshold:.3f})")
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
        bundle = cxr_bundle() if same_model else None
        return R.report_html(run, meta if same_model else None, bundle=bundle, threshold=threshold,
                             allowed_roots=allowed_roots(run)).encode("utf-8")

    def pdf_bytes() -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            html_path = Path(tmp) / "report.html"
            html_path.write_bytes(report_bytes())
            return write_pdf(html_path).read_bytes()

    def exported(what: str) -> dict:  # the audit row of a download: which run, which file, which threshold
        return dict(on_click=audit, args=("report.export", run.run_dir.name, {"file": what, "threshold": threshold}))

    d1, d2, d3 = st.columns(3)
    d1.download_button(f"report.html (threshold {threshold:.3f})", report_bytes, file_name="report.html",
                       mime="text/html", key="eval_download_report", **exported("report.html"))
    d2.download_button("predictions.csv", run.predictions.to_csv(index=False), file_name="predictions.csv",
                       mime="text/csv", key="eval_download_predictions", **exported("predictions.csv"))
    if find_chromium():
        d3.download_button("report.pdf", pdf_bytes, file_name="report.pdf", mime="application/pdf",
                           key="eval_download_pdf", help="The HTML report printed by headless Chromium.",
                           **exported("report.pdf"))


current_identity()  # signed out: the sign-in screen, and the page stops here
st.title("Evaluation report")
st.caption("**Decision support, not a diagnosis.** How a model performed on one labelled set, with 95% "
           "confidence intervals, calibration and its most confident mistakes.")
vitals_meta = settings.vitals_model_dir / "metadata.json"
if vitals_meta.exists():
    tab_cxr, tab_vitals = st.tabs(["Chest X-ray model", "Ward vitals model"])
    with tab_cxr:
        cxr_tab()
    with tab_vitals:
        vitals_tab(vitals_meta, settings.physionet_dir, settings.state_dir)
        local_section(settings.vitals_model_dir)  # the installed model on a unit's own labelled stays
else:
    cxr_tab()
