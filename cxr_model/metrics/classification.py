"""Classification metrics as pure functions: arrays in, numbers out.

Labels are 0/1 (1 = positive, e.g. pneumonia); scores are probabilities or any monotone score.
Undefined values (one class only, empty input, zero denominators) are ``nan``, never an error.
"""
from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np


def _arrays(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.int64).ravel()
    s = np.asarray(y_score, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} values but y_score has {s.size}")
    return y, s


def compute_auroc(y_true, y_score) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks for ties); nan for one class."""
    y, s = _arrays(y_true, y_score)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size, dtype=np.float64)
    sorted_s = s[order]
    # mid-ranks for ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    mid = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(mid, counts)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def bootstrap_ci(metric, y_true, y_score, n_resamples: int = 2000, seed: int = 0, alpha: float = 0.05) -> list[float]:
    """Percentile bootstrap ``[low, high]`` of ``metric(y_true, y_score)``, resampling cases.

    Resamples where the metric is undefined (e.g. one class drawn) are dropped; ``[nan, nan]``
    when none is defined.
    """
    y, s = _arrays(y_true, y_score)
    if y.size == 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_resamples):
        idx = rng.integers(0, y.size, y.size)
        v = metric(y[idx], s[idx])
        if not math.isnan(v):
            vals.append(v)
    if not vals:
        return [float("nan"), float("nan")]
    return [float(np.quantile(vals, alpha / 2)), float(np.quantile(vals, 1 - alpha / 2))]


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


def confusion_at(y_true, y_score, threshold: float) -> dict[str, int]:
    """Counts tp, fp, tn, fn, calling positive when ``score >= threshold``."""
    y, s = _arrays(y_true, y_score)
    pred = s >= threshold
    return {
        "tp": int(np.sum(pred & (y == 1))),
        "fp": int(np.sum(pred & (y == 0))),
        "tn": int(np.sum(~pred & (y == 0))),
        "fn": int(np.sum(~pred & (y == 1))),
    }


def compute_threshold_metrics(y_true, y_score, threshold: float) -> dict[str, float]:
    """Sensitivity, specificity, PPV, NPV, F1 and accuracy at ``threshold`` (score >= is positive)."""
    c = confusion_at(y_true, y_score, threshold)
    tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
    sens, ppv = _ratio(tp, tp + fn), _ratio(tp, tp + fp)
    return {
        "sensitivity": sens,
        "specificity": _ratio(tn, tn + fp),
        "ppv": ppv,
        "npv": _ratio(tn, tn + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
    }


def compute_ece(y_true, y_prob, n_bins: int = 10) -> float:
    """Expected calibration error with ``n_bins`` equal-width bins on [0, 1]; nan when empty."""
    y, p = _arrays(y_true, y_prob)
    if y.size == 0:
        return float("nan")
    bins = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(y[m].mean() - p[m].mean())
    return float(ece)


def compute_brier(y_true, y_prob) -> float:
    """Brier score: mean squared difference between probability and 0/1 outcome; nan when empty."""
    y, p = _arrays(y_true, y_prob)
    return float(np.mean((p - y) ** 2)) if y.size else float("nan")


def youden_threshold(y_true, y_score) -> float:
    """The score threshold maximising sensitivity + specificity - 1 (Youden's J).

    Ties between thresholds are broken toward the higher sensitivity. Candidate thresholds are
    the observed scores, so the rule is reproducible from the validation predictions alone.
    """
    y, s = _arrays(y_true, y_score)
    if y.size == 0 or y.min() == y.max():
        raise ValueError("Youden's J needs both classes")
    best, best_j, best_sens = 0.5, -2.0, -1.0
    for t in np.unique(s):
        m = compute_threshold_metrics(y, s, t)
        j = m["sensitivity"] + m["specificity"] - 1
        if j > best_j + 1e-12 or (abs(j - best_j) <= 1e-12 and m["sensitivity"] > best_sens):
            best, best_j, best_sens = float(t), j, m["sensitivity"]
    return best


def summary(y_true, y_prob, threshold: float, n_resamples: int = 2000, seed: int = 0) -> dict:
    """The standard block reported for a split: n, AUROC with CI, threshold metrics, ECE."""
    y, p = _arrays(y_true, y_prob)
    out = {"n": int(y.size), "n_positive": int(y.sum()), "n_negative": int(y.size - y.sum())}
    out["auroc"] = compute_auroc(y, p)
    out["auroc_ci95"] = bootstrap_ci(compute_auroc, y, p, n_resamples=n_resamples, seed=seed)
    out.update(compute_threshold_metrics(y, p, threshold))
    out["threshold"] = float(threshold)
    out["ece"] = compute_ece(y, p)
    return out


# ------------------------------------------------------------------------- intervals per metric
#: Which cells of the confusion matrix make each threshold metric a proportion ``k / n``.
_PROPORTIONS = {
    "sensitivity": (("tp",), ("tp", "fn")),
    "specificity": (("tn",), ("tn", "fp")),
    "ppv": (("tp",), ("tp", "fp")),
    "npv": (("tn",), ("tn", "fn")),
    "accuracy": (("tp", "tn"), ("tp", "tn", "fp", "fn")),
}


def wilson_interval(successes: int, total: int, alpha: float = 0.05) -> list[float]:
    """Wilson score interval ``[low, high]`` for a proportion ``successes / total``.

    Chosen over the Wald interval because it stays inside [0, 1] and keeps its coverage at
    proportions near 0 or 1 and at small ``total`` (Brown, Cai & DasGupta, Stat Sci 2001), which
    is where sensitivity and specificity of a screening model live. ``[nan, nan]`` when empty.
    """
    if total <= 0:
        return [float("nan"), float("nan")]
    z = NormalDist().inv_cdf(1 - alpha / 2)
    p = successes / total
    den = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / den
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / den
    return [max(0.0, centre - half), min(1.0, centre + half)]


def threshold_metric_denominators(y_true, y_score, threshold: float) -> dict[str, int]:
    """The ``n`` behind each threshold metric: positives for sensitivity, called positives for PPV..."""
    c = confusion_at(y_true, y_score, threshold)
    out = {name: sum(c[k] for k in den) for name, (_, den) in _PROPORTIONS.items()}
    out["f1"] = c["tp"] + c["fp"] + c["fn"]
    return out


def threshold_metric_cis(
    y_true, y_score, threshold: float, n_resamples: int = 2000, seed: int = 0, alpha: float = 0.05
) -> dict[str, list[float]]:
    """95% intervals (by default) for each metric of :func:`compute_threshold_metrics`.

    Sensitivity, specificity, PPV, NPV and accuracy are proportions: Wilson score intervals.
    F1 is not, so it gets a seeded percentile bootstrap over cases with ``n_resamples`` draws.
    Resampling cases with replacement and re-counting the confusion matrix is the same as one
    multinomial draw of the four cells with the observed cell frequencies, which is how it is
    done here (exact, and fast enough to follow a threshold slider).

    Returns:
        ``{metric: [low, high]}``; ``[nan, nan]`` where the metric is undefined.
    """
    c = confusion_at(y_true, y_score, threshold)
    out = {}
    for name, (num, den) in _PROPORTIONS.items():
        out[name] = wilson_interval(sum(c[k] for k in num), sum(c[k] for k in den), alpha)
    n = c["tp"] + c["fp"] + c["tn"] + c["fn"]
    if n == 0 or c["tp"] + c["fp"] + c["fn"] == 0:
        out["f1"] = [float("nan"), float("nan")]
        return out
    cells = np.array([c["tp"], c["fp"], c["tn"], c["fn"]], dtype=np.float64)
    draws = np.random.default_rng(seed).multinomial(n, cells / n, size=n_resamples)
    tp, fp, fn = draws[:, 0], draws[:, 1], draws[:, 3]
    den = 2 * tp + fp + fn
    f1 = (2 * tp[den > 0]) / den[den > 0]
    out["f1"] = [float(np.quantile(f1, alpha / 2)), float(np.quantile(f1, 1 - alpha / 2))] if f1.size else [
        float("nan"), float("nan")]
    return out


def _sens_spec(y: np.ndarray, s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pos, neg = np.sort(s[y == 1]), np.sort(s[y == 0])
    sens = 1.0 - np.searchsorted(pos, t, side="left") / max(len(pos), 1)
    spec = np.searchsorted(neg, t, side="left") / max(len(neg), 1)
    return sens, spec


def balanced_youden(y: np.ndarray, s: np.ndarray, groups: np.ndarray) -> float:
    """Threshold maximising the mean over groups of Youden's J (score >= t is positive).

    Candidates are the observed scores; ties go to the higher mean sensitivity.
    """
    cand = np.unique(s)
    j, sens = np.zeros(len(cand)), np.zeros(len(cand))
    gs = np.unique(groups)
    for g in gs:
        m = groups == g
        se, sp = _sens_spec(y[m], s[m], cand)
        j += (se + sp - 1) / len(gs)
        sens += se / len(gs)
    best = np.flatnonzero(j >= j.max() - 1e-12)
    return float(cand[best[np.argmax(sens[best])]])


def compute_event1(y_true, y_score, threshold: float) -> float:
    """min(sensitivity, PPV) calling positive when ``score >= threshold``; nan when undefined."""
    m = compute_threshold_metrics(y_true, y_score, threshold)
    se, ppv = m["sensitivity"], m["ppv"]
    if math.isnan(se) or math.isnan(ppv):
        return float("nan") if math.isnan(se) else 0.0
    return float(min(se, ppv))


def event1_threshold(y_true, y_score) -> float:
    """The observed score that maximises event-1 (ties: the higher threshold, fewer alerts)."""
    y = np.asarray(y_true, dtype=np.int64)
    s = np.asarray(y_score, dtype=np.float64)
    if y.size == 0 or y.min() == y.max():
        raise ValueError("event-1 threshold needs both classes")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    k = np.arange(1, y.size + 1)
    last_of_tie = np.r_[s_sorted[1:] != s_sorted[:-1], True]  # cut after every distinct score
    e1 = np.minimum(tp / y.sum(), tp / k)
    e1 = np.where(last_of_tie, e1, -1.0)
    best = int(np.argmax(e1))  # first maximum in descending order = highest threshold
    return float(s_sorted[best])


def event1_count_threshold(y_true, y_score) -> float:
    """The score at which as many cases are called positive as there are positives.

    At that cut sensitivity equals PPV (both TP / positives), where min(sensitivity, PPV) usually
    peaks; unlike :func:`event1_threshold`'s single best cut it depends on the whole ranking rather
    than on one lucky case, so it moves less between samples. Ties at the cut are called positive.
    """
    y, s = _arrays(y_true, y_score)
    if y.size == 0 or y.min() == y.max():
        raise ValueError("event-1 threshold needs both classes")
    return float(np.sort(s)[::-1][int(y.sum()) - 1])


def matched_auroc(y_true, y_score, covariate, bins: int = 5) -> float:
    """AUROC over (positive, negative) pairs in the same quantile bin of ``covariate`` only.

    What a score ranks beyond a confounder: pairs that differ mostly in the covariate (e.g. film
    sharpness, which on the Kermany films goes with the label) do not count. Ties count half.
    """
    y, s = _arrays(y_true, y_score)
    cov = np.asarray(covariate, dtype=np.float64)
    edges = np.quantile(cov, np.linspace(0, 1, bins + 1))
    b = np.clip(np.searchsorted(edges, cov, side="right") - 1, 0, bins - 1)
    good = pairs = 0.0
    for k in range(bins):
        pos, neg = s[(b == k) & (y == 1)], s[(b == k) & (y == 0)]
        good += (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
        pairs += len(pos) * len(neg)
    return float(good / pairs) if pairs else float("nan")
