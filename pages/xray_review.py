"""X-ray review: upload radiographs, see P(pneumonia), where the model looked, how far to trust it,
and record the reviewer's call.

Layout only. The network runs in ``cxr_model.imaging.review.analyse_study`` (one pass: probability,
CAM, OOD score), cached by file SHA-256 and CAM method. The radiograph and its map are drawn by the
client-side viewer (``dashboard.viewer``): window/level, zoom, pan, invert and map opacity happen in
the browser without a rerun, and the pixels go to the browser once per study. Nothing slow is on the
page's path: downloads are built on click, ROAD runs on demand, ScoreCAM runs in the background
(``dashboard.jobs``) while the Grad-CAM map is shown.

PHI: studies are named "Study 1 (sha 1a2b3c)" unless the reviewer turns on "Show identifying
information" (file names often hold a patient's name or record number; the same toggle unmasks the
DICOM header and banner). A session sees the notes of its own decisions only, unless asked. Text
that came from a file or a user is shown through ``dashboard.text.plain`` (no Markdown).
"""
from __future__ import annotations

import logging

import streamlit as st

from cxr_model import review_store
from cxr_model.imaging.explain import METHODS, SLOW_METHODS, default_cam, overlay
from cxr_model.imaging.map_evidence import map_evidence
from cxr_model.imaging.report.gallery import png_bytes
from cxr_model.imaging.report.study import render_study_report
from cxr_model.imaging.review import (
    Study, admit_uploads, analyse_study, declared_pixels, dicom_view, file_sha256, study_faithfulness, study_label,
)
from cxr_model.imaging.site import NO_SITE, POPULATION_SOURCES, describe, profile_names
from cxr_model.registry import BundleError
from cxr_model.settings import get_settings
from dashboard.auth import audit, current_identity
from dashboard.decision_form import decision_form
from dashboard.frame import require_frame
from dashboard.resources import cxr_ood, cxr_site_bundle
from dashboard.slow_cam import slow_study
from dashboard.text import plain
from dashboard.viewer import dicom_pixels, display_pixels, viewer
from dashboard.worklist import banner, out_of_scope, past_decisions_frame, worklist

require_frame()  # gate and sidebar, also when Streamlit runs this page alone (dashboard/frame.py)

log = logging.getLogger(__name__)

VIEWS = ["Side by side", "Overlay only"]


@st.cache_data(max_entries=64, show_spinner="Running the model and the CAM ...")
def analysed(sha256: str, method: str, name: str, _data: bytes, site: str | None = None, site_sha256: str | None = None):
    """The study under ``method``; keyed by the site profile's content too (one made again is another model)."""
    return analyse_study(cxr_site_bundle(site), _data, name, method, cxr_ood()[0])


@st.cache_data(max_entries=8)
def cached_dicom_view(sha256: str, name: str, _data: bytes):
    """Shrunk raw pixels, window presets, MONOCHROME1 flag, header rows and the burned-in flag."""
    return dicom_view(_data, name)


@st.cache_data(max_entries=8)
def viewer_pixels(sha256: str, name: str, _data: bytes, _study: Study):
    """What the viewer shows, once per study: a DICOM's real values, else the 8-bit display copy."""
    if not _study.is_dicom:
        return display_pixels(_study.display), None
    try:
        dview = cached_dicom_view(sha256, name, _data)
    except Exception as exc:  # the study was read; only the real-value window and header are lost
        log.warning("DICOM view of sha256=%s failed: %s", sha256, exc)
        return display_pixels(_study.display), getattr(exc, "problem", type(exc).__name__)
    return dicom_pixels(dview.raw, dview.presets, dview.monochrome1), None


def study_of(f, data: bytes, refused: str | None) -> Study:
    """The analysed study of one upload, or a study holding why it was not analysed; never raises."""
    sha = file_sha256(data)
    if refused:
        return Study(f.name, sha, error=f"{f.name}: {refused}", problem=refused)
    try:
        # method None: the default map of the view that scores the film (an adult's: the adult branch's)
        return analysed(sha, None, f.name, data, site, bundle.site_profile_sha256)
    except Exception:  # one bad file must not take the upload down; details go to the server log
        log.exception("analysing upload sha256=%s failed", sha)
        problem = "could not be analysed (an internal error; the details are in the server log)"
        return Study(f.name, sha, error=f"{f.name}: {problem}", problem=problem)


def decided() -> dict[str, str]:
    """This session's last decision per image SHA-256 (the worklist's status)."""
    return st.session_state.setdefault("decided", {})


def past_decisions(labels_by_sha: dict[str, str] | None = None) -> None:
    """This person's decisions, newest first; a lead may ask for everyone's (their notes may hold identifiers)."""
    st.subheader("Past decisions")
    everyone = me.sees_everyone and st.toggle("Show everyone's decisions (their notes may hold identifiers)",
                                              value=False, key="show_all_notes")
    mine = None if everyone else me.name
    try:
        df = review_store.list_decisions(reviewer=mine)
    except Exception as exc:  # database unreachable: say so, keep the page usable
        log.exception("reading the decision store failed")
        st.error(f"The decision store cannot be reached ({get_settings().db_url.split('://')[0]}: "
                 f"{plain(type(exc).__name__)}). Past decisions cannot be shown; try again later.")
        return
    if df.empty:
        st.caption("No decisions saved yet.")
        return
    st.caption("Your own decisions first." if mine is None else "Your decisions.")
    own = df.loc[df["reviewer"] == me.name, "id"].tolist()
    st.dataframe(past_decisions_frame(df, own, labels_by_sha or {}), hide_index=True, key="decisions_table")
    st.download_button("Download decisions (CSV)", lambda: review_store.decisions_csv(reviewer=mine),
                       "review_decisions.csv", "text/csv", key="decisions_csv",
                       on_click=audit, args=("report.export", "review_decisions.csv", {"rows": len(df)}))


def viewer_action(n_studies: int) -> None:
    """Apply a study/decision shortcut pressed inside the viewer (before the widgets it sets are drawn)."""
    value = st.session_state.get("xray_viewer")
    if not value or value.get("n") == st.session_state.get("viewer_action_n"):
        return
    st.session_state["viewer_action_n"] = value.get("n")
    action = value.get("action")
    if action in ("next", "previous"):
        step(n_studies, 1 if action == "next" else -1)
    elif action in review_store.DECISIONS:
        st.session_state["review_decision"] = action


def step(n_studies: int, by: int) -> None:
    st.session_state["xray_study"] = (int(st.session_state.get("xray_study") or 0) + by) % max(n_studies, 1)


me = current_identity()  # signed out: the sign-in screen, and the page stops here
site = st.sidebar.selectbox("Site profile", [None, *profile_names()], key="site_profile",
                            format_func=lambda n: NO_SITE if n is None else n,
                            help="A saved site profile (`cxr-model site adapt / recalibrate`): batch-norm statistics "
                                 "and/or a threshold from this site's own films. Default: the bundled model as is.")
st.title("Chest X-ray review")
st.info("**Decision support, not a diagnosis.** The probability and the map are for a radiologist to weigh "
        "with the image and the patient.")
files = st.file_uploader("Chest radiographs (PNG, JPEG or DICOM)", type=["png", "jpg", "jpeg", "dcm", "dicom"],
                         accept_multiple_files=True, key="xray_upload")
if not files:  # the model is not needed yet (it is warmed at start, see app.py)
    st.caption("Upload one or more frontal chest radiographs to review them.")
    past_decisions()
    st.stop()
try:
    bundle = cxr_site_bundle(site)
except BundleError as exc:
    st.error(f"The chest X-ray model cannot be loaded: {plain(exc)}")
    st.stop()
if site:
    st.info(plain(describe(bundle)) + ". Not the bundled model as is.")
ood, ood_error = cxr_ood()

# ------------------------------------------------------------------------------------ worklist
show_phi = st.toggle("Show identifying information (file names, DICOM header)", value=False, key="show_phi",
                     help="File names often hold the patient's name or record number. Off: studies are named "
                          "by their position and the start of their SHA-256.")
uploads = [(f, f.getvalue()) for f in files]
verdicts = admit_uploads([declared_pixels(d) for _, d in uploads])
studies = [(study_of(f, d, why), d) for (f, d), why in zip(uploads, verdicts)]
labels = [study_label(i, s.sha256) for i, (s, _) in enumerate(studies, start=1)]
st.subheader("Worklist")
st.dataframe(worklist([s for s, _ in studies], labels, decided(), show_phi), hide_index=True, key="studies_table")
for (s, _), label in zip(studies, labels):
    if s.error:
        st.error(plain(f"{label}: {s.error if show_phi else s.problem}"))
readable = [(s, d, f"{label} · {s.name}" if show_phi else label)
            for (s, d), label in zip(studies, labels) if not s.error]
labels_by_sha = {s.sha256: label for (s, _), label in zip(studies, labels)}
if not readable:
    past_decisions(labels_by_sha)
    st.stop()
viewer_action(len(readable))
if (st.session_state.get("xray_study") or 0) >= len(readable):
    st.session_state["xray_study"] = 0
n1, n2, n3 = st.columns([1, 1, 6], vertical_alignment="bottom")
n1.button("◀ Previous", key="study_prev", shortcut="p", on_click=step, args=(len(readable), -1),
          help="Previous study (P)")
n2.button("Next ▶", key="study_next", shortcut="n", on_click=step, args=(len(readable), 1), help="Next study (N)")
choice = n3.selectbox("Study", range(len(readable)), format_func=lambda i: readable[i][2], key="xray_study")
base, data, shown_name = readable[choice or 0]

# ------------------------------------------------------------------------------ selected study
# The method is kept outside the widget's state: a rerun without the select (all files replaced)
# would otherwise reset the select to the default while the session still used the old method. The default
# is the bundle's best-localising map (explain.json, `cxr-model pointing --write`), on its layer.
# Until the reviewer picks a method, each study opens on its own default (an adult's is the adult branch's).
if st.session_state.get("cam_method_chosen"):
    st.session_state.setdefault("cam_method", st.session_state.get("cam_method_kept", base.method))
else:
    st.session_state["cam_method"] = base.method or default_cam(bundle)[0]
scope_out = out_of_scope(base)  # no call and no map for it: nothing more to compute
c1, c2, c3 = st.columns([2, 2, 2])
method = c1.selectbox("CAM method", list(METHODS), key="cam_method", disabled=scope_out,
                      on_change=lambda: st.session_state.update(cam_method_chosen=True),
                      help="All target the pneumonia logit. ScoreCAM runs one forward pass per batch of feature "
                           "maps, in the background (tens of seconds on CPU); the default map is shown meanwhile. The default "
                           "is the map that pointed best at radiologists' boxes on validation films (model card).")
st.session_state["cam_method_kept"] = method
alpha = c2.slider("CAM opacity", 0.0, 1.0, 0.4, 0.05, key="cam_opacity", disabled=scope_out)
view = c3.radio("View", VIEWS, horizontal=True, key="cam_view", disabled=scope_out)
study, shown_method = base, base.method
if method in SLOW_METHODS and not scope_out:
    study, shown_method = slow_study(base, data, method, bundle, ood)
elif method != base.method and not scope_out:
    study, shown_method = analysed(base.sha256, method, base.name, data, site, bundle.site_profile_sha256), method

pixels, dicom_problem = viewer_pixels(study.sha256, study.name, data, study)
header = cached_dicom_view(study.sha256, study.name, data) if study.is_dicom and not dicom_problem else None
st.caption(plain(banner(None if header is None else (header.header_full if show_phi else header.header_masked))))
if dicom_problem:
    st.error(plain(f"{shown_name}: the DICOM header and real-value window cannot be shown ({dicom_problem})"))
if study.burned_in:
    st.warning("This DICOM declares **burned-in annotation** (BurnedInAnnotation = YES): text in the image may "
               "identify the patient. The study report leaves the images out, and the overlay download needs "
               "'Show identifying information'.")
if scope_out:
    dist = (f" (OOD distance {study.ood_score:.1f}, threshold {study.ood_threshold:.1f})"
            if study.ood_score is not None and study.ood_threshold is not None else "")
    st.error(f"**Outside what this model was made for:** {plain(study.scope_reason or 'unlike the training radiographs')}"
             f"{dist}, so no call is shown and no decision can be recorded for it. The model was trained on frontal chest "
             f"radiographs of {'children and adults' if 'adult' in bundle.meta.get('populations', []) else 'children aged 1-5'}.")
else:
    m1, m2, m3 = st.columns(3)
    m1.metric("P(pneumonia)", f"{study.probability:.3f}", help="Calibrated probability from the model.")
    m2.metric("Threshold", f"{study.threshold:.3f}", help=bundle.meta["threshold"]["rule"])
    m3.metric("Model's call", study.label)
    if ood_error:
        st.info(f"Out-of-distribution check unavailable: {plain(ood_error)}")
    else:
        st.caption(f"Out-of-distribution check: distance {study.ood_score:.1f} ≤ threshold "
                   f"{study.ood_threshold:.1f} (the image looks like the training radiographs).")
    if study.population_source:
        st.caption(f"Operating point for: {study.population or 'either population'} "
                   f"({POPULATION_SOURCES[study.population_source]})"
                   + (f"; read at {study.x.shape[-1]} px by the model's adult branch" if study.branch else "")
                   + (", which weighs each region by where radiologists drew opacities on its training films (mid and "
                      "lower zones most; see the model card)." if study.branch_prior else "."))
st.caption(f"Decision support, not a diagnosis · model `{study.model_id}`"
           + (f" with site profile `{study.site_profile}`" if study.site_profile else "")
           + f" · file SHA-256 `{study.sha256[:16]}…`")

viewer(pixels, study.sha256, None if scope_out else study.cam, shown_method, alpha, view == VIEWS[0])
if not scope_out:
    st.caption(map_evidence(bundle, shown_method, bool(study.branch))
               + (" The map is empty: no region raises P(pneumonia) for this method." if float(study.cam.max()) <= 0 else ""))

road = st.session_state.setdefault("road", {})
road_key = (study.sha256, shown_method, study.site_profile_sha256)  # another profile: another model, another map
fa = road.get(road_key)
if not scope_out:
    if fa is None:
        if st.button("Measure the map's faithfulness (ROAD, a few seconds)", key="road_run"):
            with st.spinner("Measuring the map's faithfulness (ROAD) ..."):
                fa = road[road_key] = study_faithfulness(bundle, study)
    if fa is not None:
        st.metric("Map faithfulness (ROAD)", "n/a" if fa.score != fa.score else f"{fa.score:+.3f}",
                  help="ROAD (Rong et al. 2022): pixels removed in map order and imputed; half the difference in "
                       "P(pneumonia) between removing the least and the most highlighted pixels.")
        st.caption(plain(fa.meaning))

if header is not None:
    with st.expander("DICOM header", expanded=False):
        st.caption("Identifying fields (DICOM PS3.15 Annex E basic profile) are hidden unless 'Show identifying "
                   "information' is on.")
        st.dataframe([{"tag": r.tag, "field": r.keyword or r.name, "value": r.value, "PHI": r.phi}
                      for r in (header.header_full if show_phi else header.header_masked)],
                     hide_index=True, key="phi_table")

# -------------------------------------------------------------------------------------- decision
if not scope_out:
    decision_form(study, shown_method, bundle, me, decided())

    def _overlay() -> bytes:
        return png_bytes(overlay(study.display, study.cam, alpha))

    def _report() -> bytes:
        fa_now = road.get(road_key) or study_faithfulness(bundle, study)
        mine = review_store.list_decisions(image_sha256=study.sha256, reviewer=me.name)
        latest = None if mine.empty else mine.iloc[0].to_dict()
        return render_study_report(study, study.display, overlay(study.display, study.cam, alpha), bundle.meta,
                                   fa_now, latest).encode("utf-8")

    d1, d2 = st.columns(2)
    d1.download_button("Download overlay (PNG)", _overlay, f"{study.sha256[:12]}_{shown_method}_overlay.png",
                       "image/png", key="download_overlay", disabled=study.burned_in and not show_phi,
                       help="Off for images with burned-in annotation unless 'Show identifying information' is on."
                       if study.burned_in else None,
                       on_click=audit, args=("report.export", study.sha256, {"overlay": shown_method}))
    d2.download_button("Download study report (HTML)", _report, f"{study.sha256[:12]}_report.html", "text/html",
                       key="download_report", help="Built when clicked (it measures ROAD if not done yet).",
                       on_click=audit, args=("report.export", study.sha256, {"report": "study", "method": shown_method}))
past_decisions(labels_by_sha)
