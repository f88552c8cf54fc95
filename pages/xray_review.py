"""X-ray review: upload radiographs, see P(pneumonia), where the model looked, how far to trust it,
and record the reviewer's call.

Layout only. The network runs in ``cxr_model.imaging.review.analyse_study`` (one pass: probability,
CAM, OOD score), cached by file SHA-256 and CAM method, so moving the opacity slider, changing the
window or the view never reruns the network. A cached study holds a bounded display copy and the
model input, not the full-size image; an upload is capped in total pixels (``review.admit_uploads``).

PHI: studies are named "Study 1 (sha 1a2b3c)" unless the reviewer turns on "Show identifying
information" (file names often hold a patient's name or record number; the same toggle unmasks the
DICOM header). A session sees the notes of its own decisions only, unless asked. Text that came
from a file or a user is shown through ``dashboard.text.plain`` (no Markdown).
"""
from __future__ import annotations

import logging

import pandas as pd
import streamlit as st

from cxr_model import review_store
from cxr_model.imaging.dicom_header import Window
from cxr_model.imaging.explain import METHODS, SLOW_METHODS, overlay
from cxr_model.imaging.report.gallery import png_bytes
from cxr_model.imaging.report.study import render_study_report
from cxr_model.imaging.review import (
    Study, admit_uploads, analyse_study, declared_pixels, dicom_view, file_sha256, study_faithfulness, study_label,
)
from cxr_model.registry import BundleError
from cxr_model.settings import get_settings
from dashboard.auth import audit, current_identity
from dashboard.resources import cxr_bundle, cxr_ood
from dashboard.text import plain

log = logging.getLogger(__name__)

VIEWS = ["Side by side", "Overlay only"]


@st.cache_data(max_entries=64, show_spinner="Running the model and the CAM ...")
def analysed(sha256: str, method: str, name: str, _data: bytes):
    bundle = cxr_bundle()
    return analyse_study(bundle, _data, name, method, cxr_ood()[0])


@st.cache_data(max_entries=64, show_spinner="Measuring the map's faithfulness (ROAD) ...")
def faith(sha256: str, method: str, _study: Study):
    return study_faithfulness(cxr_bundle(), _study)


@st.cache_data(max_entries=8)
def cached_dicom_view(sha256: str, name: str, _data: bytes):
    """Shrunk raw pixels, window presets, MONOCHROME1 flag, header rows and the burned-in flag."""
    return dicom_view(_data, name)


def study_of(f, data: bytes, refused: str | None) -> Study:
    """The analysed study of one upload, or a study holding why it was not analysed; never raises."""
    sha = file_sha256(data)
    if refused:
        return Study(f.name, sha, error=f"{f.name}: {refused}", problem=refused)
    try:
        return analysed(sha, "GradCAM", f.name, data)
    except Exception:  # one bad file must not take the upload down; details go to the server log
        log.exception("analysing upload sha256=%s failed", sha)
        problem = "could not be analysed (an internal error; the details are in the server log)"
        return Study(f.name, sha, error=f"{f.name}: {problem}", problem=problem)


me = current_identity()  # signed out: the sign-in screen, and the page stops here
st.title("Chest X-ray review")
st.info("**Decision support, not a diagnosis.** The probability and the map are for a radiologist to weigh "
        "with the image and the patient.")
try:
    bundle = cxr_bundle()
except BundleError as exc:
    st.error(f"The chest X-ray model cannot be loaded: {plain(exc)}")
    st.stop()
ood, ood_error = cxr_ood()

files = st.file_uploader("Chest radiographs (PNG, JPEG or DICOM)", type=["png", "jpg", "jpeg", "dcm", "dicom"],
                         accept_multiple_files=True, key="xray_upload")


def past_decisions() -> None:
    """This person's decisions; a lead may ask for everyone's (their notes may hold identifiers)."""
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
    st.dataframe(df, hide_index=True, key="decisions_table")
    st.download_button("Download decisions (CSV)", review_store.decisions_csv(reviewer=mine),
                       "review_decisions.csv", "text/csv", key="decisions_csv",
                       on_click=audit, args=("report.export", "review_decisions.csv", {"rows": len(df)}))


if not files:
    st.caption("Upload one or more frontal chest radiographs to review them.")
    past_decisions()
    st.stop()

# ------------------------------------------------------------------------------------ study list
show_phi = st.toggle("Show identifying information (file names, DICOM header)", value=False, key="show_phi",
                     help="File names often hold the patient's name or record number. Off: studies are named "
                          "by their position and the start of their SHA-256.")
uploads = [(f, f.getvalue()) for f in files]
verdicts = admit_uploads([declared_pixels(d) for _, d in uploads])
studies = [(study_of(f, d, why), d) for (f, d), why in zip(uploads, verdicts)]
labels = [study_label(i, s.sha256) for i, (s, _) in enumerate(studies, start=1)]
rows = [{"study": label, **({"file": s.name} if show_phi else {}), "P(pneumonia)": s.probability,
         "label": s.label or "", "OOD": "" if s.error or s.ood_flag is None else ("unlike training" if s.ood_flag else "ok"),
         "problem": (s.error if show_phi else s.problem) or ""} for (s, _), label in zip(studies, labels)]
st.subheader("Studies")
st.dataframe(pd.DataFrame(rows), hide_index=True, key="studies_table",
             column_config={"P(pneumonia)": st.column_config.NumberColumn(format="%.3f")})
for (s, _), label in zip(studies, labels):
    if s.error:
        st.error(plain(f"{label}: {s.error if show_phi else s.problem}"))
readable = [(s, d, f"{label} · {s.name}" if show_phi else label)
            for (s, d), label in zip(studies, labels) if not s.error]
if not readable:
    past_decisions()
    st.stop()
choice = st.selectbox("Study", range(len(readable)), format_func=lambda i: readable[i][2], key="xray_study")
base, data, shown_name = readable[choice if choice is not None and choice < len(readable) else 0]

# ------------------------------------------------------------------------------ selected study
c1, c2, c3 = st.columns([2, 2, 2])
method = c1.selectbox("CAM method", list(METHODS), key="cam_method",
                      help="All target the pneumonia logit. ScoreCAM runs one forward pass per feature map "
                           "(tens of seconds on CPU).")
alpha = c2.slider("CAM opacity", 0.0, 1.0, 0.4, 0.05, key="cam_opacity")
view = c3.radio("View", VIEWS, horizontal=True, key="cam_view")
with st.spinner("ScoreCAM: one forward pass per feature map ..." if method in SLOW_METHODS else "Computing the map ..."):
    study = analysed(base.sha256, method, base.name, data)

display = study.display
header = None
if study.is_dicom:
    try:
        dview = cached_dicom_view(study.sha256, study.name, data)
    except Exception as exc:  # the study was read; only the window/header panel is lost
        log.warning("DICOM view of sha256=%s failed: %s", study.sha256, exc)
        st.error(plain(f"{shown_name}: the window controls and header cannot be shown "
                       f"({getattr(exc, 'problem', type(exc).__name__)})"))
    else:
        presets = dview.presets
        w1, w2, w3 = st.columns([2, 2, 2])
        preset = w1.selectbox("Window preset", list(presets), key="dicom_window")
        p = presets[preset]
        center = w2.slider("Window level (centre)", *dview.level_range, float(p.center), key=f"dicom_center_{preset}")
        width = w3.slider("Window width", *dview.width_range, dview.clamp_width(p.width), key=f"dicom_width_{preset}")
        display = dview.windowed(Window(center, width))
        header = (dview.header_masked, dview.header_full)
if study.burned_in:
    st.warning("This DICOM declares **burned-in annotation** (BurnedInAnnotation = YES): text in the image may "
               "identify the patient. The study report leaves the images out, and the overlay download needs "
               "'Show identifying information'.")

over = overlay(display, study.cam, alpha)
unreliable = bool(study.ood_flag)
m1, m2, m3 = st.columns(3)
m1.metric("P(pneumonia)", f"{study.probability:.3f}", help="Calibrated probability from the model.")
m2.metric("Threshold", f"{study.threshold:.3f}", help=bundle.meta["threshold"]["rule"])
m3.metric("Model's call", f"{study.label}" + (" (unreliable)" if unreliable else ""))
st.caption(f"Decision support, not a diagnosis · model `{study.model_id}` · file SHA-256 `{study.sha256[:16]}…`")
if ood_error:
    st.info(f"Out-of-distribution check unavailable: {plain(ood_error)}")
elif unreliable:
    st.warning(f"**This image is unlike the radiographs the model was trained on** (OOD distance "
               f"{study.ood_score:.1f} > threshold {study.ood_threshold:.1f}). The prediction is unreliable: the "
               "model was trained on frontal chest radiographs of children aged 1-5.")
else:
    st.caption(f"Out-of-distribution check: distance {study.ood_score:.1f} ≤ threshold {study.ood_threshold:.1f} "
               "(the image looks like the training radiographs).")

if view == "Side by side":
    i1, i2 = st.columns(2)
    i1.image(display, caption="Radiograph", clamp=True, width="stretch")
    i2.image(over, caption=f"{method} overlay (pneumonia)", width="stretch")
else:
    st.image(over, caption=f"{method} overlay (pneumonia)", width="stretch")
if float(study.cam.max()) <= 0:
    st.caption("The map is empty: no region raises P(pneumonia) for this method.")
# Filled at the end of the run: ROAD takes seconds, and the rest of the page should not wait for it.
faith_box = st.container()

if header is not None:
    with st.expander("DICOM header", expanded=False):
        st.caption("Identifying fields (DICOM PS3.15 Annex E basic profile) are hidden unless 'Show identifying "
                   "information' is on.")
        rows = header[1] if show_phi else header[0]
        st.dataframe(pd.DataFrame([{"tag": r.tag, "field": r.keyword or r.name, "value": r.value, "PHI": r.phi}
                                   for r in rows]), hide_index=True, key="phi_table")

# -------------------------------------------------------------------------------------- decision
st.subheader("Your decision")
decision = st.radio("Do you agree with the model's call?", list(review_store.DECISIONS), index=None,
                    horizontal=True, key="review_decision")
note = st.text_area("Note (no patient identifiers)", key="review_note", max_chars=review_store.NOTE_MAX)
if not me.can_review:
    st.info(f"You are signed in as a {me.role}: you can read decisions but not save them.")
elif st.button("Save decision", key="review_save", type="primary"):
    if decision is None:
        st.error("Choose agree, disagree or uncertain before saving.")
    else:
        try:
            rid = review_store.save_decision(
                reviewer=me.name, role=me.role, image_sha256=study.sha256,
                model_id=bundle.meta["name"], model_version=str(bundle.meta["version"]),
                probability=study.probability, threshold=study.threshold, cam_method=method,
                decision=decision, note=note)
            st.success(f"Decision saved as {plain(me.name)} (#{rid}).")
        except (ValueError, PermissionError) as exc:
            st.error(f"Not saved: {plain(exc)}")
        except Exception as exc:  # database errors: a message, never a traceback (the SQL may quote the note)
            log.exception("saving a decision failed")
            st.error(f"Not saved: the decision store failed or cannot be reached ({plain(type(exc).__name__)}; "
                     "details in the server log). Your decision and note are still in the form: press Save again later.")

latest = None
try:
    previous = review_store.list_decisions(image_sha256=study.sha256, reviewer=me.name)
    latest = None if previous.empty else previous.iloc[0].to_dict()
except Exception:
    pass
d1, d2 = st.columns(2)
d1.download_button("Download overlay (PNG)", png_bytes(over), f"{study.sha256[:12]}_{method}_overlay.png",
                   "image/png", key="download_overlay", disabled=study.burned_in and not show_phi,
                   help="Off for images with burned-in annotation unless 'Show identifying information' is on."
                   if study.burned_in else None)
report_slot = d2.empty()
past_decisions()

fa = faith(study.sha256, method, study)
with faith_box:
    st.metric("Map faithfulness (ROAD)", "n/a" if fa.score != fa.score else f"{fa.score:+.3f}",
              help="ROAD (Rong et al. 2022): pixels removed in map order and imputed; difference in P(pneumonia).")
    st.caption(plain(fa.meaning))
report_slot.download_button("Download study report (HTML)",
                            render_study_report(study, display, over, bundle.meta, fa, latest).encode("utf-8"),
                            f"{study.sha256[:12]}_report.html", "text/html", key="download_report",
                            on_click=audit, args=("report.export", study.sha256, {"report": "study", "method": method}))
