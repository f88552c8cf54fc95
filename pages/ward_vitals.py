"""Ward vitals: the ward replayed hour by hour, NEWS2 beside the model's risk, alerts with actions.

Layout only: scoring, NEWS2, alerts and explanations come from ``cxr_model.vitals``; figures from
``dashboard.ward_figures``.
"""
from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from cxr_model.registry import BundleError
from cxr_model.settings import get_settings
from cxr_model.vitals.alert_store import actions_for, record_action
from cxr_model.vitals.alerts import sort_alerts, status_of, still_triggering
from cxr_model.vitals.demo import DEMO_LABEL, demo_records
from cxr_model.vitals.explain import occlusion
from cxr_model.vitals.news2 import LEVEL_LABELS, LEVEL_RULES, LEVEL_SHORT, RISK_COLOURS, STAND_INS, observation_set
from cxr_model.vitals.stay_review import describe_stay, held_out_note
from cxr_model.vitals.uploads import MAX_UPLOAD_BYTES, read_uploads, unused_readings
from cxr_model.vitals.ward import ADMISSION_SPREAD_H, build_ward, has_real_ward, real_ward_records, snapshot
from dashboard.auth import current_identity
from dashboard.frame import require_frame
from dashboard.resources import held_out_metrics, vitals_bundle
from dashboard.tables import channel_label, news2_rows, points_change
from dashboard.text import plain, show_problems
from dashboard.ward_figures import risk_figure, trends_figure

require_frame()  # gate and sidebar, also when Streamlit runs this page alone (dashboard/frame.py)

REAL = "PhysioNet 2012 set A (30 held-out test stays)"
DEMO = "Simulated demo ward"
UPLOAD = "Records you upload"
TICK_SECONDS = 1.5
WARD_HOURS = 48 + ADMISSION_SPREAD_H


@st.cache_data(show_spinner="Scoring the ward ...", max_entries=8)
def load_ward(source: str, physionet_dir: str, model_dir: str, uploads: tuple[tuple[str, bytes], ...] = ()):
    """``(patients, errors, unused)``: ``unused`` names, for uploaded files only, the readings not used."""
    bundle = vitals_bundle(model_dir)
    if source == REAL:
        records, errors = real_ward_records(physionet_dir, bundle)
    elif source == UPLOAD:
        records, errors = read_uploads(list(uploads))
    else:
        records, errors = demo_records(), []
    unused = unused_readings(records) if source == UPLOAD else []
    return (build_ward(records, bundle) if records else []), errors, unused


@st.cache_data(show_spinner=False, max_entries=256)
def contributions(source: str, physionet_dir: str, model_dir: str, uploads: tuple, index: int, step: int) -> list[dict]:
    patients = load_ward(source, physionet_dir, model_dir, uploads)[0]
    return occlusion(vitals_bundle(model_dir), patients[index].grid, step)


settings = get_settings()
model_dir, physionet_dir = str(settings.vitals_model_dir), str(settings.physionet_dir)

me = current_identity()  # signed out: the sign-in screen, and the page stops here
st.title("Ward vitals: early warning")
st.caption("**Decision support, not a diagnosis.** NEWS2 (RCP 2017) beside the model's risk of in-hospital "
           "death from the ICU record so far. An alert is raised by either; thresholds and limits are in the "
           "model card.")

try:
    bundle = vitals_bundle(model_dir)
except (BundleError, OSError, ValueError) as exc:
    st.error(f"The vitals model cannot be loaded: {plain(exc)}")
    st.stop()
MODEL_LABEL = "Model risk (LSTM + gradient-boosted trees)" if bundle.trees is not None else "Model risk (LSTM)"

has_data = has_real_ward(physionet_dir, model_dir)
sources = ([REAL] if has_data else []) + [DEMO, UPLOAD]
with st.sidebar:
    source = st.radio("Ward", sources, key="ward_source")
    autoplay = st.toggle("Auto-play (one hour per tick)", key="ward_autoplay")
if not has_data:
    st.info(f"PhysioNet 2012 data not found at `{physionet_dir}` (set CXR_DATA_DIR); showing the simulated ward.")
if source == DEMO:
    st.warning(f"**{DEMO_LABEL}**")
uploads: tuple[tuple[str, bytes], ...] = ()
if source == UPLOAD:
    files = st.file_uploader(
        "ICU records, one file per stay: PhysioNet 2012 text ('Time,Parameter,Value' lines from ICU admission) "
        "or a FHIR R4 Bundle (.json: the Patient, the Encounter and its LOINC-coded Observations); the first 48 h "
        "are used", type=["txt", "csv", "json"], accept_multiple_files=True, key="ward_upload",
        max_upload_size=MAX_UPLOAD_BYTES // 2**20)
    st.caption("The model was trained and validated on PhysioNet 2012 ICU stays only; on stays from another unit "
               "its risk has not been validated (with their outcomes, check it first: Evaluation report, Ward vitals "
               "model, Your own labelled stays). In a FHIR file, pulse oximetry (SpO2) is read where the charts say "
               "arterial SaO2, and the ICU type and ventilation are unknown. The files are read in memory and not "
               "written to disk; alert actions are saved by record id.")
    if not files:
        st.info("Upload one or more records to replay them on the ward.")
        st.stop()
    uploads = tuple((f.name, f.getvalue()) for f in files)

patients, errors, unused = load_ward(source, physionet_dir, model_dir, uploads)
show_problems("Record skipped: ", errors)  # the messages quote the record files' names and content
if unused:  # the stays are scored; what in them was not read is said, by file and reason
    with st.expander(f"Readings not used in {len(unused)} of the uploaded files"):
        st.text("\n".join(unused))
if not patients:
    st.error("No stays could be read for this ward." + (" Each file's problem is named above." if errors else ""))
    st.stop()

labels = [f"{p.bed} · record {p.record_id}" for p in patients]
# Assigned on every run, not set by default: after a run that stopped before the clock was drawn (no upload
# yet), Streamlit draws a new slider at its minimum unless the value is sent again, while the tables
# below would still read the old hour.
st.session_state["ward_hour"] = st.session_state.get("ward_hour", 24)


def level_style(level: str) -> str:
    colour = RISK_COLOURS.get(level.split(" ")[0].lower())
    return f"background-color: {colour}; color: white" if colour else ""


def with_scales(ward: list) -> list:
    """The ward with each patient's chosen SpO2 scale (kept in session state, default scale 1)."""
    scales = st.session_state.setdefault("ward_spo2_scales", {})
    return [p.with_spo2_scale(scales.get(p.record_id, 1)) for p in ward]


def _keep_scale(record_id: int) -> None:
    st.session_state["ward_spo2_scales"][record_id] = st.session_state[f"ward_spo2_scale_{record_id}"]


def overview(patients: list, ward_hour: int) -> None:
    rows = snapshot(patients, ward_hour, bundle.threshold)
    n_alert = sum(r["alerting"] != "no" for r in rows)
    st.metric("Patients alerting now", f"{n_alert} of {len(rows)} admitted",
              help=f"NEWS2 response level low-medium or above, or model risk ≥ {100 * bundle.threshold:.1f}%")
    df = pd.DataFrame([{
        "Bed": r["bed"], "Record": str(r["record_id"]), "Hour of stay": r["hour_of_stay"],
        "NEWS2": f"{r['news2']} (incomplete)" if r["news2_incomplete"] else str(r["news2"]),
        "NEWS2 response": LEVEL_SHORT[r["news2_level"]], "Model risk %": 100 * r["risk"],
        "Risk change in 4 h": points_change(r["trend"]), "Since last vitals": r["since_vitals"],
        "Alerting now": r["alerting"],
    } for r in rows])
    if df.empty:
        st.info("No patient admitted yet at this ward hour.")
        return
    st.dataframe(
        df.style.map(level_style, subset=["NEWS2 response"]), hide_index=True, width="stretch",
        # widths that fit the page (about 940 px): auto-sized, a long response label pushed "Alerting now" off it
        column_config={
            "Bed": st.column_config.TextColumn(width=62), "Record": st.column_config.TextColumn(width=70),
            "Hour of stay": st.column_config.NumberColumn(width=90),
            "NEWS2": st.column_config.TextColumn(width=108),
            "NEWS2 response": st.column_config.TextColumn(width=150, help=LEVEL_RULES),
            "Model risk %": st.column_config.ProgressColumn("Model risk %", min_value=0, max_value=100, format="%.0f%%",
                                                           width=110),
            "Risk change in 4 h": st.column_config.NumberColumn(
                format="%+.1f pts", width=120,
                help="Model risk now minus model risk 4 hours earlier, in percentage points"),
            "Since last vitals": st.column_config.TextColumn(width=112),
            "Alerting now": st.column_config.TextColumn(width=112),
        },
    )


def alert_list(patients: list, ward_hour: int) -> None:
    admitted = [(p, s) for p in patients if (s := p.step_at(ward_hour)) is not None]
    alerts = [a for p, s in admitted for a in p.alerts(s, bundle.threshold)]
    level_now = {p.record_id: p.news2.risk[s] for p, s in admitted}
    try:
        actions = actions_for([a.alert_id for a in alerts])
    except Exception as exc:  # noqa: BLE001 - the database being down must not hide the alerts
        st.warning(f"Alert actions cannot be read from the database: {plain(exc)}")
        actions = {}
    status = {a.alert_id: status_of(actions.get(a.alert_id, [])) for a in alerts}
    ordered = sort_alerts(alerts, {k for k, v in status.items() if v != "new"})
    st.subheader(f"Alerts ({sum(v == 'new' for v in status.values())} not acknowledged)")
    if not ordered:
        st.caption("No alerts raised so far.")
        return
    st.dataframe(pd.DataFrame([{
        "Status": status[a.alert_id], "Bed": a.bed, "Source": a.source, "Alert": a.text,
        "Raised at hour of stay": a.hour, "Still triggering": still_triggering(a, level_now[a.record_id]),
        "Last action by": (actions.get(a.alert_id) or [{}])[-1].get("reviewer", "-"),
    } for a in ordered]), hide_index=True, width="stretch", key="ward_alert_table",
        # widths that fit the page: the auto-sized alert text pushed "still triggering" and "last action by" off it
        column_config={"Alert": st.column_config.TextColumn(width=375),
                       "Raised at hour of stay": st.column_config.NumberColumn("Raised at hour", width=110,
                                                                               help="Hour of this patient's stay"),
                       "Still triggering": st.column_config.TextColumn(width=140),
                       "Last action by": st.column_config.TextColumn(width=120)})
    by_label = {f"{a.bed} · {a.source}: {a.text} (hour {a.hour})": a for a in ordered}
    choice = st.selectbox("Alert to act on", list(by_label), key="ward_alert")
    note = st.text_input("Note (optional)", key="ward_alert_note", max_chars=2000)
    if not me.can_review:
        st.caption(f"Read only: your role ({plain(me.role)}) may not acknowledge or escalate alerts.")
        return
    c1, c2 = st.columns(2)
    for col, action, label in ((c1, "acknowledge", "Acknowledge"), (c2, "escalate", "Escalate")):
        if col.button(label, key=f"ward_{action}"):
            a = by_label[choice]
            try:
                record_action(reviewer=me.name, role=me.role, record_id=a.record_id, alert_id=a.alert_id,
                              alert_kind=a.kind, action=action, note=note)
                st.success(f"{label}d by {plain(me.display)}: {plain(choice)}")
                st.rerun()
            except (ValueError, PermissionError) as exc:
                st.error(plain(exc))
            except Exception as exc:  # noqa: BLE001 - the database may be down: say so, keep the choice
                st.error(f"Not saved: the database failed or cannot be reached ({plain(type(exc).__name__)}); "
                         "the alert and your note are still here: press the button again later.")


def detail(patients: list, ward_hour: int) -> None:
    admitted = [i for i, p in enumerate(patients) if p.step_at(ward_hour) is not None]
    if not admitted:
        return
    if st.session_state.get("ward_patient") not in [labels[i] for i in admitted]:
        st.session_state["ward_patient"] = labels[max(admitted, key=lambda i: patients[i].risk[patients[i].step_at(ward_hour)])]
    st.selectbox("Patient", [labels[i] for i in admitted], key="ward_patient")
    index = labels.index(st.session_state["ward_patient"])
    p = patients[index]
    step = p.step_at(ward_hour)
    st.subheader(f"{p.bed} · record {p.record_id} · hour {step + 1} of this stay")
    st.caption(describe_stay(p.grid.descriptors))
    st.radio("SpO2 scale for this patient", [1, 2], index=p.spo2_scale - 1, horizontal=True,
             key=f"ward_spo2_scale_{p.record_id}", on_change=_keep_scale, args=(p.record_id,),
             format_func=lambda s: "Scale 1" if s == 1 else "Scale 2 (hypercapnic respiratory failure; clinician's decision)")
    c1, c2, c3 = st.columns(3)
    change = points_change(p.risk[step] - p.risk[max(0, step - 4)])
    c1.metric(MODEL_LABEL, f"{100 * p.risk[step]:.1f}%", f"{change:+.1f} points in 4 h",
              delta_color="inverse" if change else "off")  # no change: no red arrow
    note = held_out_note(p.grid.descriptors, held_out_metrics(str(bundle.path)))
    if note:
        c1.caption(note)
    incomplete = " (incomplete)" if p.news2.incomplete[step] else ""
    c2.metric("NEWS2", f"{int(p.news2.total[step])}{incomplete}")
    c2.caption(f"Response level: {LEVEL_LABELS[p.news2.risk[step]]}")
    active = [a for a in p.alerts(step, bundle.threshold) if a.active]
    c3.metric("Alerting now", " + ".join(sorted({a.source for a in active})) or "no")
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(trends_figure(p, step), key="ward_trends")
        st.caption("Dots are measurements; lines join consecutive hourly measurements only (a gap is a gap in "
                   "measuring). Shading: NEWS2 points (amber 1, orange 2, red 3).")
    with right:
        st.markdown("**NEWS2 at the cursor**")
        # static tables: they wrap to the column's width (a data grid there cut off its last column)
        st.table(news2_rows(observation_set(p.grid, step)), hide_index=True)
        st.caption(f"Stand-ins: {STAND_INS}")
        st.markdown("**What moved the model's risk** (occlusion: risk minus risk with the input unmeasured)")
        contrib = contributions(source, physionet_dir, model_dir, uploads, index, step)[:8]
        st.table(pd.DataFrame([{"Input": channel_label(c["input"]), "Risk change (points)": f"{100 * c['contribution']:+.1f}",
                                "Measured so far": "yes" if c["observed"] else "no"} for c in contrib]),
                 hide_index=True)
    st.plotly_chart(risk_figure(p, step, bundle.threshold, MODEL_LABEL), key="ward_risk")


@st.fragment(run_every=TICK_SECONDS if autoplay else None)
def ward_view() -> None:
    if st.session_state.get("ward_autoplay"):
        now = time.monotonic()
        if now - st.session_state.get("_ward_tick", 0.0) >= TICK_SECONDS * 0.9:
            st.session_state["ward_hour"] = st.session_state["ward_hour"] % WARD_HOURS + 1
            st.session_state["_ward_tick"] = now
    ward_hour = st.slider("Ward clock: hours since the replay started (each patient has their own hour of stay)",
                          1, WARD_HOURS, key="ward_hour")
    ward = with_scales(patients)
    overview(ward, ward_hour)
    alert_list(ward, ward_hour)
    detail(ward, ward_hour)


ward_view()
_chosen_on = ("validation stays" if bundle.meta["threshold"].get("split", "val") == "val"
              else "cross-validated predictions of the training and validation stays")
_ward_data = {REAL: "held-out stays of PhysioNet 2012 set A", DEMO: "simulated, not patients",
              UPLOAD: f"{len(patients)} uploaded record{'s' if len(patients) != 1 else ''}"}[source]
st.caption(f"Model {bundle.model_id}, trained on PhysioNet/CinC Challenge 2012 set A (Silva et al. 2012, "
           f"ODC-BY 1.0); alert threshold {100 * bundle.threshold:.1f}% chosen on {_chosen_on}. "
           f"This ward: {_ward_data}.")
