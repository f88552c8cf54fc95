"""ROC and precision-recall curves and the area under the PR curve, as pure functions.

Labels are 0/1 (1 = positive); scores are probabilities or any monotone score; a case is called
positive when ``score >= threshold``, as in :mod:`cxr_model.metrics.classification`. Every distinct
score is a threshold, so tied scores move the curve in one diagonal step.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cxr_model.metrics.classification import _arrays


@dataclass(frozen=True)
class Curve:
    """One curve as parallel arrays.

    Attributes:
        x: ``float64 (K,)``: false positive rate (ROC) or recall (PR).
        y: ``float64 (K,)``: true positive rate (ROC) or precision (PR).
        thresholds: ``float64 (K,)``: the score threshold of each point (``inf`` for the
            ROC start, where nothing is called positive).
    """

    x: np.ndarray
    y: np.ndarray
    thresholds: np.ndarray

    def __len__(self) -> int:
        return int(self.x.size)


def _cumulative_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and false positives called at each distinct score, highest score first."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    # the last index of each run of equal scores: all tied cases flip together
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]
    tps = np.cumsum(y_sorted)[last].astype(np.float64)
    fps = (last + 1 - tps).astype(np.float64)
    return tps, fps, s_sorted[last]


def roc_curve(y_true, y_score) -> Curve:
    """ROC curve from (0, 0) to (1, 1), one point per distinct score.

    Equals ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``. With one class only the
    undefined rate is ``nan``; empty input gives an empty curve.
    """
    y, s = _arrays(y_true, y_score)
    if y.size == 0:
        return Curve(np.array([]), np.array([]), np.array([]))
    tps, fps, thr = _cumulative_counts(y, s)
    n_pos, n_neg = tps[-1], fps[-1]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = tps / n_pos if n_pos else np.full(tps.shape, np.nan)
        fpr = fps / n_neg if n_neg else np.full(fps.shape, np.nan)
    return Curve(fpr, tpr, np.r_[np.inf, thr])


def pr_curve(y_true, y_score) -> Curve:
    """Precision-recall curve, one point per distinct score (highest threshold first).

    Ends at recall 1 (the lowest score). Equals sklearn's ``precision_recall_curve`` read in
    reverse without its final ``(recall 0, precision 1)`` anchor. Empty without positives.
    """
    y, s = _arrays(y_true, y_score)
    if y.size == 0 or y.sum() == 0:
        return Curve(np.array([]), np.array([]), np.array([]))
    tps, fps, thr = _cumulative_counts(y, s)
    return Curve(tps / tps[-1], tps / (tps + fps), thr)


def compute_auprc(y_true, y_score) -> float:
    """Area under the PR curve as average precision: ``sum_k (R_k - R_{k-1}) P_k``.

    The step-wise estimator of ``sklearn.metrics.average_precision_score`` (no trapezoids,
    which overstate the area: Davis & Goadrich, ICML 2006). ``nan`` without positives; the
    chance level is the prevalence.
    """
    c = pr_curve(y_true, y_score)
    if not len(c):
        return float("nan")
    return float(np.sum(np.diff(np.r_[0.0, c.x]) * c.y))
