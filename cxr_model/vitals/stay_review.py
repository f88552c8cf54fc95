"""Per-stay review of a vitals evaluation: subgroups, failure cases and the predictions table.

TRIPOD+AI asks for performance in key subgroups and for the cases a model gets wrong; a ward team
asks the same ("does it work for our cardiac surgery patients?", "which deaths did it miss?"). Groups
come from the stays' own descriptors: ICU type, age band and sex (PhysioNet 2012 codes). The model is
judged at its fixed alert threshold (chosen before these stays were scored), never a threshold refitted
per group; each row carries n and the number of deaths, so a small group reads as the guess it is.
"""
from __future__ import annotations

import numpy as np

from cxr_model.metrics.classification import bootstrap_ci, compute_auroc, compute_event1
from cxr_model.metrics.subgroups import subgroup_table
from cxr_model.vitals.news2 import NEWS2_TRIGGERS

# PhysioNet/CinC 2012 descriptors (challenge README)
ICU_TYPES = {1: "Coronary care unit", 2: "Cardiac surgery recovery unit", 3: "Medical ICU", 4: "Surgical ICU"}
SEXES = {0: "female", 1: "male"}
AGE_BANDS = ((0, 65, "under 65"), (65, 80, "65 to 79"), (80, 200, "80 and over"))
GROUPINGS = {"icu_type": "ICU type", "age_band": "age", "sex": "sex"}
UNKNOWN = "unknown"
MIN_GROUP_STAYS = 10  # smaller groups get their counts only
STAY_COLUMNS = ["record_id", "in_hospital_death", "survival_days", "icu_type", "age_band", "sex", "risk_24h", "risk_48h",
                "model_first_alert_hour", "news2_max_48h", "news2_first_5_hour", "saps1"]
WHOLE_COLUMNS = ["survival_days", "model_first_alert_hour", "news2_first_5_hour", "saps1"]


def _code(value, names: dict) -> str:
    try:
        return names.get(int(value), UNKNOWN) if np.isfinite(value) else UNKNOWN
    except (TypeError, ValueError):  # None, text
        return UNKNOWN


def age_band(age) -> str:
    """``72.0`` -> "65 to 79"; a missing or non-numeric age is "unknown"."""
    try:
        a = float(age)
    except (TypeError, ValueError):
        return UNKNOWN
    return next((label for lo, hi, label in AGE_BANDS if lo <= a < hi), UNKNOWN)


def describe_stay(descriptors: dict) -> str:
    """The patient line a ward team reads first: "Medical ICU · 72 years · male · 80 kg"; unknown parts are left
    out, and a stay without any says "ICU type, age and sex not recorded"."""
    def known(key: str) -> float | None:
        try:
            v = float(descriptors.get(key, np.nan))
        except (TypeError, ValueError):
            return None
        return v if np.isfinite(v) else None

    icu, sex = _code(known("ICUType"), ICU_TYPES), _code(known("Gender"), SEXES)
    age, kg = known("Age"), known("Weight")
    parts = [icu if icu != UNKNOWN else None, None if age is None else f"{age:.0f} years",
             sex if sex != UNKNOWN else None, None if kg is None else f"{kg:.0f} kg"]
    return " · ".join(p for p in parts if p) or "ICU type, age and sex not recorded"


def held_out_note(descriptors: dict, test: dict | None) -> str | None:
    """How the model ranked held-out stays of this patient's ICU type, beside all of them, from a held-out run's
    metrics (``test_evaluation/metrics.json``): the figure a clinician weighs one risk against. ``None`` without
    a run, its subgroups or the patient's ICU type."""
    if not test or not test.get("subgroups_48h") or not test.get("ensemble_48h", test.get("lstm_48h")):
        return None
    icu = _code(descriptors.get("ICUType", np.nan), ICU_TYPES)
    row = next((r for r in test["subgroups_48h"] if r["grouping"] == GROUPINGS["icu_type"] and r["group"] == icu), None)
    if icu == UNKNOWN or row is None:
        return None
    if row.get("too_few") or row.get("auroc") is None:
        return f"Too few held-out {icu} stays (n = {row['n']}) to say how well the model ranks them."
    whole = test.get("ensemble_48h") or test["lstm_48h"]
    lo, hi = row["auroc_ci95"]
    return (f"On held-out {icu} stays the model's 48 h AUROC was {row['auroc']:.3f} [{lo:.3f}, {hi:.3f}] "
            f"(n = {row['n']}, {row['n_positive']} deaths), against {whole['auroc']:.3f} on all {whole['n']} held-out stays.")


def stay_groups(descriptors: list[dict]) -> dict[str, list[str]]:
    """The group of each stay under each grouping: ``{"icu_type": [...], "age_band": [...], "sex": [...]}``."""
    return {"icu_type": [_code(d.get("ICUType", np.nan), ICU_TYPES) for d in descriptors],
            "age_band": [age_band(d.get("Age", np.nan)) for d in descriptors],
            "sex": [_code(d.get("Gender", np.nan), SEXES) for d in descriptors]}


def subgroup_rows(labels: np.ndarray, risk: np.ndarray, news2: np.ndarray, descriptors: list[dict], threshold: float,
                  n_boot: int) -> list[dict]:
    """One row per group of each grouping: the model's 48 h risk at ``threshold`` and NEWS2's AUROC beside it.

    Rows: ``grouping`` (its label), ``group``, ``n``, ``n_positive`` (deaths), ``observed_mortality`` and the
    model's ``mean_probability`` (calibration in the large), ``auroc`` and ``auroc_ci95``, sensitivity, ppv
    and specificity with their intervals, ``event1`` = min(sensitivity, ppv) at the fixed threshold, and
    ``news2_auroc`` (highest NEWS2 in 48 h) with its interval. Undefined metrics (a group without deaths) are nan;
    a group of fewer than :data:`MIN_GROUP_STAYS` stays has its counts and ``too_few`` only. Intervals: percentile
    bootstrap with ``n_boot`` resamples (seed 0), as the whole set's.
    """
    y, s, nw = (np.asarray(a, dtype=np.float64) for a in (labels, risk, news2))
    rows = []
    for key, groups in stay_groups(descriptors).items():
        for row in subgroup_table(y.astype(np.int64), s, groups, threshold, n_resamples=n_boot):
            m = np.asarray(groups, dtype=object) == row["group"]
            yg, sg, ng = y[m].astype(np.int64), s[m], nw[m]
            if yg.size < MIN_GROUP_STAYS:  # counted, not measured: a rate of 1 in 3 stays is no finding
                rows.append({"grouping": GROUPINGS[key], "group": row["group"], "n": row["n"],
                             "n_positive": row["n_positive"], "too_few": True})
                continue
            two = 0 < yg.sum() < yg.size
            rows.append({"grouping": GROUPINGS[key], **{k: v for k, v in row.items() if not k.endswith("_n")},
                         "observed_mortality": float(yg.mean()),
                         "event1": compute_event1(yg, sg, threshold),
                         "news2_auroc": compute_auroc(yg, ng) if two else float("nan"),
                         "news2_auroc_ci95": (bootstrap_ci(compute_auroc, yg, ng, n_resamples=n_boot) if two
                                              else [float("nan"), float("nan")])})
    order = {g: i for i, g in enumerate([*ICU_TYPES.values(), *(b[2] for b in AGE_BANDS), *SEXES.values(), UNKNOWN])}
    return sorted(rows, key=lambda r: (list(GROUPINGS.values()).index(r["grouping"]), order[r["group"]]))


def stay_rows(record_ids: list[int], labels: np.ndarray, risk: np.ndarray, news2_hourly: np.ndarray,
              descriptors: list[dict], saps1: np.ndarray, survival_days: np.ndarray | None,
              threshold: float) -> list[dict]:
    """The predictions table, one row per stay: outcome, groups, the model's risk at 24 h and 48 h, the hour
    of its first alert (``None``: never), the highest NEWS2 in 48 h and the hour it first reached 5, SAPS-I."""
    groups = stay_groups(descriptors)
    risk, news2_hourly = np.asarray(risk, dtype=np.float64), np.asarray(news2_hourly, dtype=np.float64)
    surv = np.full(len(record_ids), np.nan) if survival_days is None else np.asarray(survival_days, dtype=np.float64)

    def first(hit: np.ndarray) -> int | None:
        return int(hit.argmax()) + 1 if hit.any() else None

    return [{"record_id": int(rid), "in_hospital_death": int(labels[i]),
             "survival_days": None if np.isnan(surv[i]) else float(surv[i]),
             "icu_type": groups["icu_type"][i], "age_band": groups["age_band"][i], "sex": groups["sex"][i],
             "risk_24h": float(risk[i, 23]), "risk_48h": float(risk[i, -1]),
             "model_first_alert_hour": first(risk[i] >= threshold),
             "news2_max_48h": int(news2_hourly[i].max()),
             "news2_first_5_hour": first(news2_hourly[i] >= NEWS2_TRIGGERS[0]),
             "saps1": None if np.isnan(saps1[i]) else float(saps1[i])} for i, rid in enumerate(record_ids)]


def failure_cases(rows: list[dict], k: int = 10) -> dict[str, list[dict]]:
    """From :func:`stay_rows`: ``missed_deaths``, the ``k`` deaths with the lowest 48 h risk, and
    ``false_alarms``, the ``k`` survivors with the highest (ties by record id), to review with the record."""
    deaths = sorted((r for r in rows if r["in_hospital_death"]), key=lambda r: (r["risk_48h"], r["record_id"]))
    survivors = sorted((r for r in rows if not r["in_hospital_death"]), key=lambda r: (-r["risk_48h"], r["record_id"]))
    return {"missed_deaths": deaths[:k], "false_alarms": survivors[:k]}
