"""Everything an evaluation report shows, computed from labels and probabilities.

The report (:mod:`cxr_model.imaging.report.html`) and the Streamlit page both call these
functions; the page re-runs only :func:`threshold_rows` and the confusion matrix when its
threshold slider moves.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from cxr_model.imaging.labels import CLASSES
from cxr_model.metrics import classification as M
from cxr_model.metrics.calibration import ReliabilityBins, calibration_slope_intercept, reliability_bins
from cxr_model.metrics.curves import Curve, compute_auprc, pr_curve, roc_curve
from cxr_model.metrics.subgroups import subgroup_table
from cxr_model.registry import model_id

BOOTSTRAP = "percentile bootstrap, {n} resamples, seed {seed}"
#: Columns of predictions.csv that are never subgroups (identifiers, outcomes, continuous values).
NOT_SUBGROUPS = {"path", "label", "probability", "predicted", "group", "height", "width", "error", "ood", "ood_score",
                 "scope_reason", "sha256", "age", "patient_id", "boxes_xywh", "nih_labels", "source_repo", "source_path", "orig_width",
                 "orig_height"}
MAX_SUBGROUP_LEVELS = 12
#: Subgroups shown first when present (the population a set puts a film in, the one the model judged, view, sex,
#: age band), then any other categorical column.
FIRST_SUBGROUPS = ("source_population", "population", "view", "sex", "age band")
#: How a report names a subgroup column (any other: its name, underscores as spaces).
SUBGROUP_LABELS = {"source_population": "population in the data set",
                   "population": "population the model used (DICOM age, else its image estimate)",
                   "confirmed_by": "label source"}


def subgroup_label(column: str) -> str:
    return SUBGROUP_LABELS.get(column, column.replace("_", " "))

#: Age bands in years: [low, high) and the label; children by developmental stage, adults by decade.
AGE_BANDS = [(0, 1, "0"), (1, 5, "1-4"), (5, 12, "5-11"), (12, 18, "12-17"), (18, 30, "18-29"), (30, 40, "30-39"),
             (40, 50, "40-49"), (50, 60, "50-59"), (60, 70, "60-69"), (70, 200, "70+")]
ADULT_AGE = 18

_THRESHOLD_METRICS = [  # key, display name, what n counts
    ("sensitivity", "Sensitivity", "pneumonia cases"),
    ("specificity", "Specificity", "normal cases"),
    ("ppv", "PPV", "called pneumonia"),
    ("npv", "NPV", "called normal"),
    ("f1", "F1", "TP + FP + FN"),
    ("accuracy", "Accuracy", "images"),
]


def _row(key, name, value, ci, method, n, n_of, split) -> dict:
    return {"key": key, "metric": name, "value": float(value), "ci95": [float(c) for c in ci] if ci else None,
            "ci_method": method, "n": int(n), "n_of": n_of, "split": split}


def ranking_rows(y, p, split: str, n_resamples: int = 2000, seed: int = 0) -> list[dict]:
    """Threshold-free rows of the metrics table: AUROC, AUPRC, ECE, Brier, calibration fit.

    Each row: ``{"key", "metric", "value", "ci95", "ci_method", "n", "n_of", "split"}``.
    """
    y, p = np.asarray(y), np.asarray(p, dtype=np.float64)
    n, n_pos = int(y.size), int(np.sum(y))
    boot = BOOTSTRAP.format(n=n_resamples, seed=seed)
    ci = lambda f: M.bootstrap_ci(f, y, p, n_resamples=n_resamples, seed=seed)  # noqa: E731
    both = f"images ({n_pos} pneumonia, {n - n_pos} normal)"
    cal = calibration_slope_intercept(y, p)
    return [
        _row("auroc", "AUROC", M.compute_auroc(y, p), ci(M.compute_auroc), boot, n, both, split),
        _row("auprc", "AUPRC (average precision)", compute_auprc(y, p), ci(compute_auprc), boot, n, both, split),
        _row("ece", "ECE (10 equal-width bins)", M.compute_ece(y, p), ci(M.compute_ece), boot, n, "images", split),
        _row("brier", "Brier score", M.compute_brier(y, p), ci(M.compute_brier), boot, n, "images", split),
        _row("calibration_slope", "Calibration slope (ideal 1)", cal["slope"], None, "logistic recalibration", n,
             "images", split),
        _row("calibration_intercept", "Calibration intercept (ideal 0)", cal["intercept"], None,
             "logistic recalibration", n, "images", split),
        _row("citl", "Calibration-in-the-large (ideal 0)", cal["citl"], None, "slope fixed at 1", n, "images", split),
    ]


def threshold_rows(y, p, threshold: float, split: str, n_resamples: int = 2000, seed: int = 0) -> list[dict]:
    """Rows of the metrics table at ``threshold`` (score >= threshold is pneumonia), with 95% CIs."""
    point = M.compute_threshold_metrics(y, p, threshold)
    cis = M.threshold_metric_cis(y, p, threshold, n_resamples=n_resamples, seed=seed)
    dens = M.threshold_metric_denominators(y, p, threshold)
    boot = BOOTSTRAP.format(n=n_resamples, seed=seed) + " (multinomial over the confusion matrix)"
    return [
        _row(k, name, point[k], cis[k], boot if k == "f1" else "Wilson score", dens[k], n_of, split)
        for k, name, n_of in _THRESHOLD_METRICS
    ]


def age_band(age) -> str:
    """The :data:`AGE_BANDS` label of an age in years; ``""`` (missing) when it is not a number >= 0."""
    a = pd.to_numeric(pd.Series([age]), errors="coerce").iloc[0]
    if pd.isna(a) or a < 0:
        return ""
    return next(label for lo, hi, label in AGE_BANDS if lo <= a < hi) if a < AGE_BANDS[-1][1] else ""


def subgroup_frame(predictions: pd.DataFrame) -> pd.DataFrame:
    """``predictions`` with derived subgroup columns: ``age band`` from ``age`` (years), and ``population``
    (child under 18, adult from 18) from ``age`` where no ``population`` column says it. A film the model
    scored on the pooled map (its population uncertain, ``population_source`` "pooled") is in the population
    group "pooled (uncertain)", not among the missing."""
    df = predictions
    if {"population", "population_source"} <= set(df.columns):
        pooled = df["population"].isna() & (df["population_source"] == "pooled")
        if pooled.any():
            df = df.copy()
            df.loc[pooled, "population"] = "pooled (uncertain)"
    if "age" in df.columns:
        df = df.copy()
        bands = df["age"].map(age_band)
        df["age band"] = bands.replace("", None)
        if "population" not in df.columns:
            years = pd.to_numeric(df["age"], errors="coerce")
            df["population"] = np.where(years.isna(), None, np.where(years < ADULT_AGE, "child", "adult"))
    return df


def subgroup_columns(predictions: pd.DataFrame) -> list[str]:
    """Columns usable as subgroups: categorical (not numbers, not identifiers), 2..12 distinct values.

    Population, view, sex and age band come first when present (see :func:`subgroup_frame` for
    the derived ones); ages themselves are only ever shown in bands.
    """
    cols = []
    for c in predictions.columns:
        if c in NOT_SUBGROUPS or pd.api.types.is_numeric_dtype(predictions[c]):
            continue
        if 2 <= predictions[c].nunique(dropna=False) <= MAX_SUBGROUP_LEVELS:
            cols.append(c)
    return sorted(cols, key=lambda c: FIRST_SUBGROUPS.index(c) if c in FIRST_SUBGROUPS else len(FIRST_SUBGROUPS))


def data_summary(predictions: pd.DataFrame, n_errors: int = 0) -> dict:
    """Counts per class (and per subtype and per population of the set, when present) and image sizes."""
    labels = predictions["label"].astype(int)
    out = {"n": int(len(predictions)), "n_errors": int(n_errors),
           "classes": {CLASSES[k]: int((labels == k).sum()) for k in (0, 1)}}
    if "subtype" in predictions:
        # adults' films carry no bacterial/viral subtype: "not recorded", not "(missing)" (nothing was lost)
        out["subtypes"] = {str(k): int(v) for k, v in predictions["subtype"].fillna("not recorded").value_counts().items()}
    if "source_population" in predictions:  # the population the set puts each film in (own-split runs)
        out["populations"] = {str(k): int(v) for k, v in
                              predictions["source_population"].fillna("(missing)").value_counts().items()}
    if {"width", "height"} <= set(predictions.columns) and len(predictions):
        w, h = predictions["width"].astype(int), predictions["height"].astype(int)
        sizes = (w.astype(str) + " x " + h.astype(str)).value_counts()
        out["sizes"] = {"distinct": int(sizes.size), "most_common": {k: int(v) for k, v in sizes.head(5).items()},
                        "width_min_median_max": [int(w.min()), float(w.median()), int(w.max())],
                        "height_min_median_max": [int(h.min()), float(h.median()), int(h.max())]}
    return out


def mixed_population_note(summary: dict) -> str | None:
    """What a reader must know when a set mixes populations (``data_summary``'s ``populations``); else ``None``."""
    pops = summary.get("populations") or {}
    if len(pops) < 2:
        return None
    return (f"This set mixes populations ({', '.join(f'{k} {v}' for k, v in pops.items())}): the pooled metrics weigh "
            "them by their numbers, and each population has its own operating point. Read each one under Subgroups, "
            f"by {SUBGROUP_LABELS['source_population']}.")


def training_summary(bundle_meta: dict | None) -> dict:
    """The model card's description of its training data (``training.counts`` etc.); a two-population
    bundle's counts (population -> part -> counts) come as one row per population and part."""
    if not bundle_meta:
        return {}
    tr = bundle_meta.get("training") or {}
    counts = tr.get("counts") or {}
    if counts and all(isinstance(c, dict) and c and all(isinstance(v, dict) for v in c.values()) for c in counts.values()):
        counts = {f"{pop} {part}": c for pop, parts in counts.items() for part, c in parts.items()}  # per population
    return {"model": model_id(bundle_meta),
            "data": tr.get("data", ""), "split": tr.get("split", ""), "counts": counts,
            "threshold_rule": (bundle_meta.get("threshold") or {}).get("rule", ""),
            "input": (bundle_meta.get("input") or {}).get("pipeline", "") + _branch_input(bundle_meta)}


def _branch_input(bundle_meta: dict) -> str:
    branch = bundle_meta.get("adult_branch")
    return f"; films judged adult are read again at {branch['img_size']} px by the adult branch" if branch else ""


@dataclass
class Analysis:
    """All numbers of one evaluation at one threshold.

    Attributes:
        split: name of the evaluated set, shown beside every metric.
        rows: the metrics table (:func:`ranking_rows` + :func:`threshold_rows`).
        confusion: ``{"tp", "fp", "tn", "fn"}`` at ``threshold``.
        subgroups: ``{column: subgroup_table rows}``.
    """

    split: str
    n: int
    prevalence: float
    threshold: float
    rows: list[dict]
    confusion: dict
    roc: Curve
    pr: Curve
    reliability: ReliabilityBins
    calibration: dict
    subgroups: dict[str, list[dict]]

    def row(self, key: str) -> dict:
        return next(r for r in self.rows if r["key"] == key)

    def operating_point(self) -> dict:
        """The threshold's point on both curves: fpr/tpr for ROC, recall/precision for PR."""
        c = self.confusion
        nan = float("nan")
        tpr = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else nan
        fpr = c["fp"] / (c["fp"] + c["tn"]) if c["fp"] + c["tn"] else nan
        prec = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else nan
        return {"fpr": fpr, "tpr": tpr, "recall": tpr, "precision": prec}


def analyse(predictions: pd.DataFrame, threshold: float, split: str, n_resamples: int = 2000, seed: int = 0,
            subgroups: list[str] | None = None) -> Analysis:
    """Compute the whole report for a predictions table (columns ``label``, ``probability``, ...).

    Args:
        subgroups: columns to tabulate; default :func:`subgroup_columns`.
    """
    y = predictions["label"].to_numpy(dtype=np.int64)
    p = predictions["probability"].to_numpy(dtype=np.float64)
    cal = calibration_slope_intercept(y, p)
    predictions = subgroup_frame(predictions)
    cols = subgroup_columns(predictions) if subgroups is None else subgroups
    return Analysis(
        split=split, n=int(y.size), prevalence=float(y.mean()) if y.size else math.nan, threshold=float(threshold),
        rows=ranking_rows(y, p, split, n_resamples, seed) + threshold_rows(y, p, threshold, split, n_resamples, seed),
        confusion=M.confusion_at(y, p, threshold), roc=roc_curve(y, p), pr=pr_curve(y, p),
        reliability=reliability_bins(y, p), calibration=cal,
        subgroups={c: subgroup_table(y, p, predictions[c].to_numpy(dtype=object), threshold, n_resamples, seed)
                   for c in cols},
    )


def at_threshold(base: Analysis, predictions: pd.DataFrame, threshold: float, n_resamples: int = 2000,
                 seed: int = 0) -> Analysis:
    """``base`` with its threshold-dependent parts (confusion, threshold rows, subgroups) redone.

    Curves, calibration and the bootstrap intervals of AUROC/AUPRC/ECE/Brier do not depend on
    the threshold and are reused, so moving a threshold slider costs a re-count, not a re-run.
    """
    y = predictions["label"].to_numpy(dtype=np.int64)
    p = predictions["probability"].to_numpy(dtype=np.float64)
    ranking = [r for r in base.rows if r["key"] not in {k for k, _, _ in _THRESHOLD_METRICS}]
    predictions = subgroup_frame(predictions)
    return replace(
        base, threshold=float(threshold),
        rows=ranking + threshold_rows(y, p, threshold, base.split, n_resamples, seed),
        confusion=M.confusion_at(y, p, threshold),
        subgroups={c: subgroup_table(y, p, predictions[c].to_numpy(dtype=object), threshold, n_resamples, seed)
                   for c in base.subgroups},
    )


def summary_of(a: Analysis) -> dict:
    """The ``metrics.json`` block of an analysis: the numbers of ``metrics.classification.summary``,
    read from the analysis instead of computed a second time (same functions, same seed)."""
    c = a.confusion
    return {"n": a.n, "n_positive": int(c["tp"] + c["fn"]), "n_negative": int(c["tn"] + c["fp"]),
            "auroc": a.row("auroc")["value"], "auroc_ci95": a.row("auroc")["ci95"],
            **{k: a.row(k)["value"] for k in ("sensitivity", "specificity", "ppv", "npv", "f1", "accuracy")},
            "threshold": float(a.threshold), "ece": a.row("ece")["value"]}
