"""Score stays with the LSTM, NEWS2 and SAPS-I at 24 h and 48 h; write ``metrics.json``.

Event-1 is the 2012 challenge's score: min(sensitivity, positive predictivity) at a threshold
(Silva et al., CinC 2012). Thresholds are chosen on validation stays, never on the stays scored.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cxr_model.files import write_json, write_text
from cxr_model.metrics.calibration import calibration_slope_intercept, reliability_bins
from cxr_model.metrics.classification import (
    bootstrap_ci, compute_auroc, compute_brier, compute_ece, compute_event1, compute_threshold_metrics,
)
from cxr_model.metrics.curves import compute_auprc
from cxr_model.vitals.bundle import load_vitals_bundle
from cxr_model.vitals.grid import Grid, to_grid
from cxr_model.vitals.news2 import NEWS2_TRIGGERS, news2_grid
from cxr_model.vitals.reader import load_outcomes, read_dir
from cxr_model.vitals.splits import read_split
from cxr_model.vitals.stay_review import STAY_COLUMNS, WHOLE_COLUMNS, failure_cases, stay_rows, subgroup_rows

WINDOWS = (24, 48)


@dataclass
class Scored:
    """Per-stay scores for a set of stays (rows aligned with ``record_ids``)."""

    record_ids: list[int]
    labels: np.ndarray
    risk: np.ndarray  # [N, 48] calibrated LSTM risk
    news2_max: dict[int, np.ndarray]  # window hours -> [N] highest NEWS2 so far
    saps1: np.ndarray  # [N], nan when missing
    survival_days: np.ndarray | None = None  # [N], days from ICU admission to death; nan if unknown
    components: dict[str, np.ndarray] | None = None  # "lstm" (+ "gbt", "ensemble"): [N, 48] risk each
    news2_hourly: np.ndarray | None = None  # [N, 48] NEWS2 aggregate (missing parameters score nothing)
    descriptors: list[dict] | None = None  # per stay: Age, Gender, ICUType, ... (nan when unknown)


def score_grids(bundle, grids: list[Grid], outcomes: dict[int, dict]) -> Scored:
    """LSTM risk, highest NEWS2 in each window and SAPS-I for grids that have an outcome."""
    grids = [g for g in grids if g.record_id in outcomes]
    labels = np.array([int(outcomes[g.record_id]["In-hospital_death"]) for g in grids], dtype=np.int64)
    comps = bundle.components(grids)
    risk = comps["ensemble" if "ensemble" in comps and getattr(bundle, "trees", None) is not None else "lstm"]
    totals = np.array([news2_grid(g).total for g in grids]) if grids else np.zeros((0, 48))
    news = {w: totals[:, :w].max(axis=1) if len(grids) else np.zeros(0) for w in WINDOWS}
    saps = np.array([outcomes[g.record_id].get("SAPS-I", -1) for g in grids], dtype=np.float64)
    saps[saps < 0] = np.nan
    surv = np.array([outcomes[g.record_id].get("Survival", -1) for g in grids], dtype=np.float64)
    surv[surv < 0] = np.nan  # -1: survived or unknown
    return Scored([g.record_id for g in grids], labels, risk, news, saps, surv, comps, totals,
                  [dict(g.descriptors) for g in grids])


def alert_summary(risk: np.ndarray, labels: np.ndarray, threshold: float, survival_days: np.ndarray | None = None) -> dict:
    """Alert burden and lead time of an hourly risk at ``threshold``.

    Args:
        risk: ``[N, H]`` hourly risk (H hours of stay each, here 48).
        labels: ``[N]`` 1 = in-hospital death.
        threshold: alert when ``risk >= threshold``.
        survival_days: ``[N]`` days from ICU admission to death (PhysioNet ``Survival``; nan
            when unknown). Whole days only, so lead times are coarse (+-24 h).

    Returns:
        ``alerts_per_patient_day``: alert episodes (an hour at or above the threshold after an hour
        below it, or at hour 1) per 24 h of observed stay; ``stays_alerting``: share of stays with
        any alert; ``deaths_alerted`` and ``survivors_alerted``: the same per outcome;
        ``median_first_alert_hour_deaths``; ``median_lead_time_h``: for deaths that alerted and
        whose time of death is known, hours from the first alert to death (``n_lead_time`` of them).
    """
    risk = np.asarray(risk, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n, hours = risk.shape if risk.ndim == 2 else (0, 0)
    above = risk >= threshold
    starts = above & ~np.concatenate([np.zeros((n, 1), bool), above[:, :-1]], axis=1)
    episodes = int(starts.sum())
    alerted = above.any(axis=1)
    first = np.where(alerted, above.argmax(axis=1), -1)
    deaths = labels == 1

    def share(mask) -> float:
        return float(alerted[mask].mean()) if mask.any() else float("nan")

    lead = []
    if survival_days is not None:
        for i in np.flatnonzero(deaths & alerted & ~np.isnan(survival_days)):
            lead.append(24.0 * survival_days[i] - (first[i] + 1))
    return {
        "threshold": float(threshold), "n": int(n), "patient_days": n * hours / 24.0,
        "alert_episodes": episodes,
        "alerts_per_patient_day": episodes / (n * hours / 24.0) if n else float("nan"),
        "stays_alerting": share(np.ones(n, bool)), "deaths_alerted": share(deaths), "survivors_alerted": share(~deaths),
        "median_first_alert_hour_deaths": float(np.median(first[deaths & alerted] + 1)) if (deaths & alerted).any() else float("nan"),
        "median_lead_time_h": float(np.median(lead)) if lead else float("nan"), "n_lead_time": len(lead),
    }


def _block(y, s, threshold: float | None, brier: bool, n_boot: int) -> dict:
    """One score's metrics, each with its percentile bootstrap 95 % interval over stays (``n_boot`` resamples,
    seed 0: the same resamples for every metric); event-1 at the fixed ``threshold``, which is not refitted."""
    def ci(metric) -> list[float]:
        return bootstrap_ci(metric, y, s, n_resamples=n_boot)

    out = {"n": int(y.size), "n_positive": int(y.sum()), "auroc": compute_auroc(y, s), "auroc_ci95": ci(compute_auroc),
           "auprc": compute_auprc(y, s), "auprc_ci95": ci(compute_auprc)}
    if threshold is not None:
        out["threshold"] = float(threshold)
        out["event1"] = compute_event1(y, s, threshold)
        out["event1_ci95"] = ci(lambda yy, ss: compute_event1(yy, ss, threshold))
        out.update({k: v for k, v in compute_threshold_metrics(y, s, threshold).items() if k in ("sensitivity", "ppv")})
    if brier:
        out["brier"] = compute_brier(y, s)
        out["brier_ci95"] = ci(compute_brier)
    return out


def metrics_for(scored: Scored, meta: dict, n_boot: int = 1000, review: bool = False) -> dict:
    """The metrics.json groups: ``<model>_24h/48h`` for each component (``lstm``, and ``gbt`` and
    ``ensemble`` for an ensemble bundle), ``news2_24h/48h`` (highest NEWS2 so far, at trigger 5) and
    ``news2_..._ge7``, ``saps1``; ``alerts`` of the bundle's model, ``alerts_news2_5``/``_7`` and
    ``alerts_combined`` (model or NEWS2 >= 5). Model thresholds come from ``meta`` (validation). With
    ``review`` (a held-out run): ``subgroups_48h``, a list of rows (:func:`~cxr_model.vitals.stay_review.subgroup_rows`),
    and the reliability ``bins`` of ``calibration_48h`` (ten equal-width bins of the 48 h risk, those holding stays)."""
    comp = meta.get("comparators", {})
    y = scored.labels
    comps = scored.components or {"lstm": scored.risk}
    own = meta.get("components", {}).get("thresholds_val", {})
    primary = "ensemble" if "ensemble" in comps else "lstm"
    out = {}
    for w in WINDOWS:
        for name, r in comps.items():
            thr = meta["threshold"]["value"] if name == primary else own.get(name)
            out[f"{name}_{w}h"] = _block(y, r[:, w - 1] if y.size else np.zeros(0), thr, True, n_boot)
        out[f"news2_{w}h"] = _block(y, scored.news2_max[w], NEWS2_TRIGGERS[0], False, n_boot)
        out[f"news2_{w}h_ge7"] = _block(y, scored.news2_max[w], NEWS2_TRIGGERS[1], False, n_boot)
    ok = ~np.isnan(scored.saps1)
    if ok.any():
        out["saps1"] = _block(y[ok], scored.saps1[ok], comp.get("saps1_threshold"), False, n_boot)
    if y.size:
        thr = meta["threshold"]["value"]
        out["alerts"] = alert_summary(scored.risk, y, thr, scored.survival_days)
        if scored.news2_hourly is not None and len(scored.news2_hourly):
            for t in NEWS2_TRIGGERS:
                out[f"alerts_news2_{t}"] = alert_summary(scored.news2_hourly, y, t, scored.survival_days)
            both = np.maximum(scored.risk >= thr, scored.news2_hourly >= NEWS2_TRIGGERS[0]).astype(float)
            out["alerts_combined"] = dict(alert_summary(both, y, 1.0, scored.survival_days),
                                          rule=f"model risk >= {thr:.3f} or NEWS2 >= {NEWS2_TRIGGERS[0]}")

        out["calibration_48h"] = {"ece": compute_ece(y, scored.risk[:, -1]),
                                  **calibration_slope_intercept(y, scored.risk[:, -1])}
        if review:
            out["calibration_48h"]["bins"] = reliability_bins(y, scored.risk[:, -1]).rows()
        if review and scored.descriptors is not None and scored.news2_hourly is not None:
            out["subgroups_48h"] = subgroup_rows(y, scored.risk[:, -1], scored.news2_max[48], scored.descriptors,
                                                 thr, n_boot)
    return out


def stay_table(scored: Scored, threshold: float) -> list[dict]:
    """:func:`~cxr_model.vitals.stay_review.stay_rows` of scored stays (``predictions.csv``)."""
    return stay_rows(scored.record_ids, scored.labels, scored.risk, scored.news2_hourly, scored.descriptors,
                     scored.saps1, scored.survival_days, threshold)


def evaluate(records_dir, outcomes_file, bundle_dir, out_dir, split: str | None = None) -> dict:
    """Score every record in ``records_dir`` (or one split of the bundle's ``splits.csv``).

    Returns the metrics dict written to ``<out_dir>/metrics.json`` (``n``, ``n_errors``, ``errors``
    and the groups above); unreadable records are counted and named, the rest are scored, one row each
    in ``<out_dir>/predictions.csv``, the worst misses and false alarms in ``<out_dir>/failure_cases.json``.
    """

    outcomes = load_outcomes(outcomes_file)
    bundle = load_vitals_bundle(bundle_dir)
    ids = None
    if split and split != "all":
        ids = read_split(Path(bundle_dir) / "splits.csv", split)
    records, errors = read_dir(records_dir, ids)
    if not records and not errors:
        raise FileNotFoundError(f"{records_dir}: no <RecordID>.txt records found")
    metrics, stays = evaluate_records(bundle, records, errors, outcomes, Path(outcomes_file).name, str(records_dir),
                                      split or "all")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "metrics.json", metrics)  # strict JSON: undefined metrics are null, never NaN
    # per-stay rows of the data set (outcomes, groups): beside metrics.json, never inside it, so that the
    # aggregate metrics can be bundled with a model while these stay with the data (see .gitignore)
    write_json(out_dir / "failure_cases.json", {"model": bundle.model_id, "split": split or "all",
                                                "threshold": bundle.threshold, **failure_cases(stays)})
    write_text(out_dir / "predictions.csv", predictions_csv(stays))
    return metrics


def evaluate_records(bundle, records, errors: list[str], outcomes: dict[int, dict], outcomes_name: str,
                     source: str, split: str) -> tuple[dict, list[dict]]:
    """The metrics (``metrics.json``) and the per-stay rows of records already read, in memory.

    ``errors``: the readers' errors (kept, first 50 named); a record without an outcome row is one more.
    """
    errors = errors + [f"{r.source}: RecordID {r.record_id} has no row in {outcomes_name}"
                       for r in records if r.record_id not in outcomes]
    scored = score_grids(bundle, [to_grid(r) for r in records], outcomes)
    metrics = {"model": bundle.model_id, "records": source, "split": split,
               "n": len(scored.record_ids), "n_errors": len(errors), "errors": errors[:50],
               "n_seen_in_training": seen_in_training(bundle.path, scored.record_ids), **dropped_summary(records)}
    metrics.update(metrics_for(scored, bundle.meta, review=True))
    return metrics, stay_table(scored, bundle.threshold)


def seen_in_training(bundle_dir, record_ids: list[int]) -> int:
    """How many of ``record_ids`` the bundle was trained or tuned on (train, val and extra of its ``splits.csv``):
    metrics on them are optimistic, not a validation. 0 for a bundle without a ``splits.csv``."""
    splits = Path(bundle_dir) / "splits.csv"
    if not splits.exists():
        return 0
    seen = set(read_split(splits, "train")) | set(read_split(splits, "val")) | set(read_split(splits, "extra"))
    return sum(int(r) in seen for r in record_ids)


def predictions_csv(stays: list[dict]) -> str:
    """``predictions.csv``: one row per stay; hours, days and scores as whole numbers where they are."""
    rows = pd.DataFrame(stays, columns=STAY_COLUMNS)
    for col in WHOLE_COLUMNS:  # an hour, day or score, or blank (never alerted, unknown): 32, not 32.0
        if rows[col].dropna().map(lambda v: float(v).is_integer()).all():
            rows[col] = rows[col].astype("Int64")
    rows[["risk_24h", "risk_48h"]] = rows[["risk_24h", "risk_48h"]].round(6)
    return rows.to_csv(index=False)


def dropped_summary(records) -> dict:
    """Readings the reader removed, in total and by reason (``n_dropped``, ``dropped_by_reason``)."""
    reasons: dict[str, int] = {}
    for r in records:
        for why, k in r.drop_reasons.items():
            reasons[why] = reasons.get(why, 0) + k
    top = dict(sorted(reasons.items(), key=lambda kv: -kv[1])[:20])
    return {"n_dropped": sum(r.n_dropped for r in records), "dropped_by_reason": top}


