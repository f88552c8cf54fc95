"""X-ray review: upload radiographs, see P(pneumonia), where the model looked, how far to trust it,
and record the reviewer's call.

Layout only. The network runs in ``cxr_model.imaging.review.analyse_study`` (one pass: probability,
CAM, OOD score), cached by file SHA-256 and CAM method, so moving the opacity slider, changing the
window or the view never reruns the network.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from cxr_model import review_store
from cxr_model.imaging.dicom_header import Window, apply_window, header_fields, window_presets
from cxr_model.imaging.explain import METHODS, SLOW_METHODS, overlay
from cxr_model.imaging.io import ImageReadError, dicom_to_array, read_dicom_dataset
from cxr_model.imaging.ood import OodError, load_ood
from cxr_model.imaging.review import analyse_study, file_sha256, study_faithfulness
from cxr_model.imaging.study_report import png_bytes, render_study_report
from cxr_model.registry import BundleError, load_cxr_bundle
from cxr_model.settings import get_settings

VIEWS = ["Side by side", "Overlay only"]


@st.cache_resource(show_spinner="Loading the model ...")
def get_bundle():
    # Shared by every session of this process: read-only from here on.
    return load_cxr_bundle(get_settings().cxr_model_dir)


@st.cache_resource
def get_ood(_bundle, model_id: str):
    try:
        return load_ood(_bundle), None
    except OodError as exc:
        return None, str(exc)


@st.cache_data(max_entries=64, show_spinner="Running the model and the CAM ...")
def analysed(sha256: str, method: str, name: str, _data: bytes):
    bundle = get_bundle()
    return analyse_study(bundle, _data, name, method, get_ood(bundle, bundle.model_id)[0])


@st.cache_data(max_entries=64, show_spinner="Measuring the map's faithfulness (ROAD) ...")
def faith(sha256: str, method: str, name: str, _data: bytes, _cam):
    return study_faithfulness(get_bundle(), _data, name, _cam)


@st.cache_data(max_entries=16)
def dicom_view(sha256: str, name: str, _data: bytes):
    """Raw (modality-LUT) pixels, window presets, MONOCHROME1 flag and header rows (PHI and not)."""
    ds = read_dicom_dataset(_data, name)
    raw = dicom_to_array(ds, name, apply_voi=False)
    mono1 = str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1"
    return raw, window_presets(raw, ds), mono1, header_fields(ds, show_phi=False), header_fields(ds, show_phi=True)


st.title("Chest X-ray review")
st.info("**Decision support, not a diagnosis.** The probability and the map are for a radiologist to weigh "
        "with the image and the patient.")
try:
    bundle = get_bundle()
except BundleError as exc:
    st.error(f"The chest X-ray model cannot be loaded: {exc}")
    st.stop()
ood, ood_error = get_ood(bundle, bundle.model_id)

files = st.file_uploader("Chest radiographs (PNG, JPEG or DICOM)", type=["png", "jpg", "jpeg", "dcm", "dicom"],
                         accept_multiple_files=True, key="xray_upload")


def past_decisions() -> None:
    st.subheader("Past decisions")
    try:
        df = review_store.list_decisions()
    except Exception as exc:  # database unreachable: say so, keep the page usable
        st.error(f"The decision store cannot be read ({get_settings().db_url.split('://')[0]}): {exc}")
        return
    if df.empty:
        st.caption("No decisions saved yet.")
        return
    st.dataframe(df, hide_index=True, key="decisions_table")
    st.download_button("Download decisions (CSV)", review_store.decisions_csv(), "review_decisions.csv",
                       "text/csv", key="decisions_csv")


if not files:
    st.caption("Upload one or more frontal chest radiographs to review them.")
    past_decisions()
    st.stop()

# ------------------------------------------------------------------------------------ study list
studies = []
for f in files:
    data = f.getvalue()
    studies.append((analysed(file_sha256(data), "GradCAM", f.name, data), data))
rows = [{"file": s.name, "P(pneumonia)": s.probability, "label": s.label or "",
         "OOD": "" if s.error or s.ood_flag is None else ("unlike training" if s.ood_flag else "ok"),
         "problem": s.error or ""} for s, _ in studies]
st.subheader("Studies")
st.dataframe(pd.DataFrame(rows), hide_index=True,
             column_config={"P(pneumonia)": st.column_config.NumberColumn(format="%.3f")})
for s, _ in studies:
    if s.error:
        st.error(s.error)
readable = [(s, d) for s, d in studies if not s.error]
if not readable:
    past_decisions()
    st.stop()
names = [s.name for s, _ in readable]
choice = st.selectbox("Study", range(len(readable)), format_func=lambda i: names[i], key="xray_study")
base, data = readable[choice if choice is not None and choice < len(readable) else 0]

# ------------------------------------------------------------------------------ selected study
c1, c2, c3 = st.columns([2, 2, 2])
method = c1.selectbox("CAM method", list(METHODS), key="cam_method",
                      help="All target the pneumonia logit. ScoreCAM runs one forward pass per feature map "
                           "(tens of seconds on CPU).")
alpha = c2.slider("CAM opacity", 0.0, 1.0, 0.4, 0.05, key="cam_opacity")
view = c3.radio("View", VIEWS, horizontal=True, key="cam_view")
with st.spinner("ScoreCAM: one forward pass per feature map ..." if method in SLOW_METHODS else "Computing the map ..."):
    study = analysed(base.sha256, method, base.name, data)

display = study.gray
header = None
if study.is_dicom:
    try:
        raw, presets, mono1, header_masked, header_full = dicom_view(study.sha256, study.name, data)
    except ImageReadError as exc:
        st.error(str(exc))
    else:
        w1, w2, w3 = st.columns([2, 2, 2])
        preset = w1.selectbox("Window preset", list(presets), key="dicom_window")
        p = presets[preset]
        lo, hi = float(raw.min()), float(raw.max())
        span = max(hi - lo, 1.0)
        center = w2.slider("Window level (centre)", lo - span / 2, hi + span / 2, float(p.center),
                           key=f"dicom_center_{preset}")
        width = w3.slider("Window width", 1.0, 2 * span, float(min(max(p.width, 1.0), 2 * span)),
                          key=f"dicom_width_{preset}")
        display = apply_window(raw, Window(center, width), mono1)
        header = (header_masked, header_full)

over = overlay(display, study.cam, alpha)
unreliable = bool(study.ood_flag)
m1, m2, m3 = st.columns(3)
m1.metric("P(pneumonia)", f"{study.probability:.3f}", help="Calibrated probability from the model.")
m2.metric("Threshold", f"{study.threshold:.3f}", help=bundle.meta["threshold"]["rule"])
m3.metric("Model's call", f"{study.label}" + (" (unreliable)" if unreliable else ""))
st.caption(f"Decision support, not a diagnosis · model `{study.model_id}` · file SHA-256 `{study.sha256[:16]}…`")
if ood_error:
    st.info(f"Out-of-distribution check unavailable: {ood_error}")
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
        show = st.toggle("Show identifying fields (PHI)", value=False, key="show_phi")
        rows = header[1] if show else header[0]
        st.dataframe(pd.DataFrame([{"tag": r.tag, "field": r.keyword or r.name, "value": r.value, "PHI": r.phi}
                                   for r in rows]), hide_index=True, key="phi_table")

# -------------------------------------------------------------------------------------- decision
st.subheader("Your decision")
decision = st.radio("Do you agree with the model's call?", list(review_store.DECISIONS), index=None,
                    horizontal=True, key="review_decision")
note = st.text_area("Note (no patient identifiers)", key="review_note", max_chars=review_store.NOTE_MAX)
if st.button("Save decision", key="review_save", type="primary"):
    if decision is None:
        st.error("Choose agree, disagree or uncertain before saving.")
    else:
        try:
            rid = review_store.save_decision(
                reviewer=st.session_state.get("reviewer_name", ""), image_sha256=study.sha256,
                model_id=bundle.meta["name"], model_version=str(bundle.meta["version"]),
                probability=study.probability, threshold=study.threshold, cam_method=method,
                decision=decision, note=note)
            st.success(f"Decision saved (#{rid}).")
        except ValueError as exc:
            st.error(f"Not saved: {exc}")
        except Exception as exc:  # database errors: a message, never a traceback
            st.error(f"Not saved: the decision store failed ({type(exc).__name__}: {exc})")

latest = None
try:
    mine = review_store.list_decisions(image_sha256=study.sha256)
    latest = None if mine.empty else mine.iloc[0].to_dict()
except Exception:
    pass
d1, d2 = st.columns(2)
d1.download_button("Download overlay (PNG)", png_bytes(over), f"{study.sha256[:12]}_{method}_overlay.png",
                   "image/png", key="download_overlay")
report_slot = d2.empty()
past_decisions()

fa = faith(study.sha256, method, study.name, data, study.cam)
with faith_box:
    st.metric("Map faithfulness (ROAD)", "n/a" if fa.score != fa.score else f"{fa.score:+.3f}",
              help="ROAD (Rong et al. 2022): pixels removed in map order and imputed; difference in P(pneumonia).")
    st.caption(fa.meaning)
report_slot.download_button("Download study report (HTML)",
                            render_study_report(study, display, over, bundle.meta, fa, latest).encode("utf-8"),
                            f"{study.sha256[:12]}_report.html", "text/html", key="download_report")
