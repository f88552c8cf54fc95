"""Metrics per subgroup of any column (e.g. Kermany's bacteria / virus / normal, a site, a size)."""
from __future__ import annotations

import numpy as np

from cxr_model.metrics.classification import (
    _arrays, bootstrap_ci, compute_auroc, compute_threshold_metrics, threshold_metric_cis,
    threshold_metric_denominators,
)

MISSING = "(missing)"


def _group_labels(groups, n: int) -> np.ndarray:
    g = np.asarray(groups, dtype=object).ravel()
    if g.size != n:
        raise ValueError(f"groups has {g.size} values but y_true has {n}")
    out = np.empty(n, dtype=object)
    for i, v in enumerate(g):
        missing = v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip())
        out[i] = MISSING if missing else str(v)
    return out


def subgroup_table(
    y_true, y_score, groups, threshold: float, n_resamples: int = 2000, seed: int = 0, alpha: float = 0.05
) -> list[dict]:
    """One row of metrics per distinct value of ``groups``, sorted by value.

    Args:
        y_true: ``(N,)`` 0/1 labels.
        y_score: ``(N,)`` probabilities.
        groups: ``(N,)`` group values of any type; ``None``, ``nan`` and blank strings form the
            group ``"(missing)"``.
        threshold: operating threshold (score >= threshold is positive).

    Returns:
        Rows ``{"group", "n", "n_positive", "n_negative", "mean_probability", "auroc",
        "auroc_ci95", <metric>, <metric>_ci95, <metric>_n ...}`` for sensitivity, specificity,
        ppv, npv, f1 and accuracy; the same intervals as the whole set (bootstrap for AUROC,
        see :func:`~.metrics.threshold_metric_cis` for the others). Metrics a group cannot
        define (AUROC and specificity in an all-pneumonia group) are ``nan``.
    """
    y, s = _arrays(y_true, y_score)
    labels = _group_labels(groups, y.size)
    rows = []
    for value in sorted(set(labels.tolist())):
        m = labels == value
        yg, sg = y[m], s[m]
        n_pos = int(yg.sum())
        row = {"group": value, "n": int(m.sum()), "n_positive": n_pos, "n_negative": int(m.sum()) - n_pos,
               "mean_probability": float(sg.mean())}
        row["auroc"] = compute_auroc(yg, sg)
        # one class only: every resample is undefined too, so skip the 2,000 draws
        row["auroc_ci95"] = (bootstrap_ci(compute_auroc, yg, sg, n_resamples=n_resamples, seed=seed, alpha=alpha)
                             if 0 < n_pos < yg.size else [float("nan"), float("nan")])
        point = compute_threshold_metrics(yg, sg, threshold)
        cis = threshold_metric_cis(yg, sg, threshold, n_resamples=n_resamples, seed=seed, alpha=alpha)
        dens = threshold_metric_denominators(yg, sg, threshold)
        for k, v in point.items():
            row[k], row[f"{k}_ci95"], row[f"{k}_n"] = v, cis[k], dens[k]
        rows.append(row)
    return rows
