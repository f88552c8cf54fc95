"""Tables for the pages: analysis rows -> labelled DataFrames, numbers through the one formatter."""
from __future__ import annotations

import pandas as pd

from cxr_model.metrics.format import fmt
from cxr_model.vitals.news2 import LABELS, WINDOW_H

SUBGROUP_COLUMNS = {"n": "n", "n_positive": "pneumonia", "n_negative": "normal", "mean_probability": "mean P",
                    "auroc": "AUROC", "auroc_ci95": "AUROC 95% CI", "sensitivity": "sensitivity",
                    "sensitivity_ci95": "sensitivity 95% CI", "specificity": "specificity",
                    "specificity_ci95": "specificity 95% CI", "accuracy": "accuracy", "accuracy_ci95": "accuracy 95% CI"}


def rows_frame(rows: list[dict]) -> pd.DataFrame:
    """Metric rows of an analysis (value, CI, method, n, split) as the page's metrics table."""
    return pd.DataFrame([{"metric": r["metric"], "value": fmt(r["value"]), "95% CI": fmt(r["ci95"]) if r["ci95"] else "",
                          "CI method": r["ci_method"], "n": r["n"], "n counts": r["n_of"], "split": r["split"]}
                         for r in rows])


def subgroup_frame(rows: list[dict]) -> pd.DataFrame:
    """Subgroup rows (one per group) with readable column names."""
    return pd.DataFrame([{"group": r["group"], **{v: fmt(r[k]) for k, v in SUBGROUP_COLUMNS.items()}} for r in rows])


def formatted_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows of numbers (e.g. the vitals metric groups), every value through :func:`fmt`."""
    return pd.DataFrame([{k: fmt(v) for k, v in r.items()} for r in rows])


def points_change(delta: float) -> float:
    """A change of risk (a fraction) in percentage points to one decimal, never ``-0.0`` (shown as "-0.0 pts",
    it reads as a fall that did not happen)."""
    return round(100.0 * float(delta), 1) + 0.0


def news2_rows(observations: dict) -> pd.DataFrame:
    """The NEWS2 table at the cursor: each parameter (human label, stand-ins named), its value, points and age.

    A missing parameter reads "not measured", "not in the last 12 h" and scores nothing; no cell is empty,
    ``None`` or a bare "-" (which a static table draws as a list bullet).
    """
    rows = []
    for key, o in observations.items():
        if o.value is None:
            rows.append({"Parameter": LABELS[key], "Value": "not measured", "Points": "none (missing)",
                         "Measured": f"not in the last {WINDOW_H} h"})
            continue
        value = f"{o.value:.1f}" if isinstance(o.value, float) and key == "temperature" else (
            f"{o.value:.0f}" if isinstance(o.value, float) else str(o.value))
        rows.append({"Parameter": LABELS[key], "Value": value,
                     "Points": "not scorable (air/oxygen unknown)" if o.points is None else str(o.points),
                     "Measured": "this hour" if not o.hours_since_measured else f"{o.hours_since_measured:.0f} h ago"})
    return pd.DataFrame(rows)


CHANNEL_LABELS = {
    "ALP": "Alkaline phosphatase", "ALT": "ALT (liver enzyme)", "AST": "AST (liver enzyme)", "Albumin": "Albumin",
    "BUN": "Blood urea nitrogen", "Bilirubin": "Bilirubin", "Cholesterol": "Cholesterol", "Creatinine": "Creatinine",
    "DiasABP": "Diastolic BP (arterial line)", "FiO2": "Inspired oxygen fraction (FiO2)", "GCS": "Glasgow Coma Scale",
    "Glucose": "Glucose", "HCO3": "Bicarbonate", "HCT": "Haematocrit", "HR": "Heart rate", "K": "Potassium",
    "Lactate": "Lactate", "MAP": "Mean arterial pressure (arterial line)", "MechVent": "Mechanical ventilation",
    "Mg": "Magnesium", "NIDiasABP": "Diastolic BP (cuff)", "NIMAP": "Mean arterial pressure (cuff)",
    "NISysABP": "Systolic BP (cuff)", "Na": "Sodium", "PaCO2": "Arterial CO2 (PaCO2)", "PaO2": "Arterial O2 (PaO2)",
    "Platelets": "Platelets", "RespRate": "Respiration rate", "SaO2": "Arterial O2 saturation (SaO2)",
    "SysABP": "Systolic BP (arterial line)", "Temp": "Temperature", "TroponinI": "Troponin I", "TroponinT": "Troponin T",
    "Urine": "Urine output", "WBC": "White cell count", "Weight": "Weight", "pH": "Arterial pH",
    "descriptors": "Age, sex, height, weight, ICU type",
}


def channel_label(name: str) -> str:
    """A PhysioNet channel name as a person reads it (``NIDiasABP`` -> "Diastolic BP (cuff)")."""
    return CHANNEL_LABELS.get(name, name)
