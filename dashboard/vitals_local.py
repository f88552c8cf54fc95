"""The vitals tab's local validation: the installed model scored on a unit's own labelled stays.

A ward that wants to know how the model does on its patients before relying on it uploads the stays'
record files and an outcomes file; they are scored in memory (never written to disk) with the bundle's
own alert threshold, which is not refitted on them. Layout only: the scoring is
:func:`cxr_model.vitals.evaluate.evaluate_records`.
"""
from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from cxr_model.files import json_safe
from cxr_model.registry import BundleError
from cxr_model.vitals.evaluate import evaluate_records, predictions_csv
from cxr_model.vitals.reader import RecordError
from cxr_model.vitals.stay_review import failure_cases
from cxr_model.vitals.uploads import MAX_UPLOAD_BYTES, parse_outcomes_upload, read_uploads
from dashboard.auth import audit
from dashboard.resources import vitals_bundle
from dashboard.text import plain, show_problems
from dashboard.vitals_tab import case_frame, vitals_test_section

#: Fewer labelled stays than this, or no death or no survivor among them, give no metrics: an AUROC or
#: event-1 from a handful of stays would look like evidence and is not.
MIN_STAYS = 20


@st.cache_data(show_spinner="Scoring your stays ...", max_entries=4)
def _scored(bundle_dir: str, records: tuple[tuple[str, bytes], ...], outcomes: tuple[str, bytes]) -> dict:
    """``{"metrics", "csv", "cases"}``, or ``{"error"}`` naming the file and problem."""
    try:
        labels = parse_outcomes_upload(*outcomes)
        bundle = vitals_bundle(bundle_dir)  # the process's one loaded copy, as the ward page uses
    except (RecordError, BundleError, OSError, ValueError) as exc:
        return {"error": str(exc)}
    recs, errors = read_uploads(list(records))
    metrics, stays = evaluate_records(bundle, recs, errors, labels, outcomes[0], "uploaded records", "uploaded")
    cases = {"model": bundle.model_id, "split": "uploaded", "threshold": bundle.threshold, **failure_cases(stays)}
    return {"metrics": metrics, "csv": predictions_csv(stays), "cases": cases}


def local_section(bundle_dir: Path) -> None:
    """Upload records and outcomes, then the same tables and charts as the held-out run, on those stays."""
    st.subheader("Your own labelled stays")
    st.caption("How the installed model does on your unit's stays, before you rely on it. Upload the stays' "
               "records (PhysioNet 2012 text, or FHIR R4 Bundles as .json, one stay each) and an outcomes file "
               "with a header holding RecordID and In-hospital_death (as Outcomes-a.txt; Survival and SAPS-I are "
               "used where present). The model's alert threshold stays the one chosen on its own training stays, "
               "never refitted on yours. The files are scored in memory and not written to disk.")
    mb = MAX_UPLOAD_BYTES // 2**20
    records = st.file_uploader("Records of the stays", type=["txt", "csv", "json"], accept_multiple_files=True,
                               key="eval_vitals_local_records", max_upload_size=mb)
    outcomes = st.file_uploader("Outcomes file", type=["txt", "csv"], key="eval_vitals_local_outcomes",
                                max_upload_size=mb)
    if not records or outcomes is None:
        return
    out = _scored(str(bundle_dir), tuple((f.name, f.getvalue()) for f in records), (outcomes.name, outcomes.getvalue()))
    if "error" in out:
        st.error(plain(f"Not scored: {out['error']}"))
        return
    m = out["metrics"]
    show_problems("Stay left out: ", m["errors"], m["n_errors"], "stays left out")
    if m["n_seen_in_training"]:
        st.warning(f"{m['n_seen_in_training']} of these {m['n']} stays were used to train or tune this model (its splits.csv): "
                   "on them the metrics are optimistic, not a validation.")
    deaths = (m.get("ensemble_48h") or m.get("lstm_48h") or {}).get("n_positive") or 0
    if m["n"] < MIN_STAYS or deaths in (0, m["n"]):
        st.info(f"{m['n']} labelled stays scored, {deaths} of them deaths: metrics need at least {MIN_STAYS} stays "
                "with both deaths and survivors among them.")
        return
    vitals_test_section(m, f"Your stays (n = {m['n']}, {deaths} deaths)", "your stays", key="eval_vitals_local")
    st.caption("Deaths with the lowest 48 h risk (missed)")
    st.dataframe(case_frame(out["cases"]["missed_deaths"]), hide_index=True, key="eval_vitals_local_missed")
    st.caption("Survivors with the highest 48 h risk (false alarms)")
    st.dataframe(case_frame(out["cases"]["false_alarms"]), hide_index=True, key="eval_vitals_local_false_alarms")
    c1, c2 = st.columns(2)
    c1.download_button("Metrics of your stays (metrics.json)", json.dumps(json_safe(m), indent=2, allow_nan=False),
                       file_name="vitals_local_metrics.json", mime="application/json", key="eval_vitals_local_metrics",
                       on_click=audit, args=("report.export", m["model"], {"file": "local metrics.json", "n": m["n"]}))
    c2.download_button("Every stay (predictions.csv)", out["csv"], file_name="vitals_local_predictions.csv",
                       mime="text/csv", key="eval_vitals_local_predictions",
                       on_click=audit, args=("report.export", m["model"], {"file": "local predictions.csv", "n": m["n"]}))
