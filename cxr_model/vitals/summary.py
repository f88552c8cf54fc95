"""Per-window summary features of a stay at every hour, for the gradient-boosted trees.

The challenge winners summarised each variable over the window seen so far (Johnson et al.,
Citi and Barbieri, CinC 2012). At hour ``t`` every channel gives: the last, first, lowest,
highest and mean observed value, the number of hourly observations and the hours since the last
one, each computed from hours ``<= t`` only (causal, like the LSTM). A channel never observed so
far is ``nan`` (the trees learn where missing goes; nothing is filled from normal values). Then the
descriptors (age, gender, height, weight, ICU type) and the hour itself.

Feature set ``v2`` adds the trend and the recent state per channel: the change from the first to
the last value and the mean over the last 6 hours, and the urine output per hour so far (the total
is what the challenge models used; the trees cannot multiply a mean by a count). A bundle names
its set in ``components["feature_set"]`` (``v1`` when absent).
"""
from __future__ import annotations

import numpy as np

from cxr_model.vitals.grid import Grid
from cxr_model.vitals.reader import channel_names

STATS = ["last", "first", "min", "max", "mean", "n_obs", "hours_since"]
DESCRIPTORS = ["Age", "Gender", "Height", "Weight", "ICUType"]
TREND_STATS = ["change", "mean_6h"]
FEATURE_SET = "v2"  # the set new bundles are trained on
RECENT_HOURS = 6


def summary_feature_names(feature_set: str = FEATURE_SET) -> list[str]:
    """Column names of :func:`summary_features`, in order."""
    names = [f"{c}:{s}" for s in STATS for c in channel_names()] + DESCRIPTORS + ["hour"]
    if feature_set == "v1":
        return names
    if feature_set != "v2":
        raise ValueError(f"unknown summary feature set {feature_set!r} (v1 or v2)")
    return names + [f"{c}:{s}" for s in TREND_STATS for c in channel_names()] + ["Urine:per_hour"]


def summary_features(grid: Grid, feature_set: str = FEATURE_SET) -> np.ndarray:
    """One stay -> ``float32 [48, F]`` (``v1``: ``7 C + 6``; ``v2``: ``9 C + 7``): row ``t`` summarises hours ``0..t``.

    Args:
        grid: the stay on the hourly grid (``values``, ``mask``, ``delta`` ``[48, C]``).
    """
    summary_feature_names(feature_set)  # names an unknown set
    mask = grid.mask > 0
    raw = np.where(mask, grid.values, np.nan).astype(np.float64)
    seen = np.maximum.accumulate(mask, axis=0)
    n_obs = np.cumsum(mask, axis=0).astype(np.float64)
    last = np.where(seen, grid.values, np.nan)
    first_idx = np.argmax(mask, axis=0)
    first_val = raw[first_idx, np.arange(raw.shape[1])]
    first = np.where(seen, first_val[None, :], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.fmin.accumulate(raw, axis=0)
        hi = np.fmax.accumulate(raw, axis=0)
        mean = np.nancumsum(raw, axis=0) / n_obs
    mean[n_obs == 0] = np.nan
    since = np.where(seen, grid.delta, np.nan)
    hours = grid.values.shape[0]
    desc = np.array([grid.descriptors.get(k, np.nan) for k in DESCRIPTORS], dtype=np.float64)
    static = np.broadcast_to(desc, (hours, len(DESCRIPTORS)))
    hour = np.arange(1, hours + 1, dtype=np.float64)[:, None]
    cols = [last, first, lo, hi, mean, n_obs, since, static, hour]
    if feature_set == "v2":
        cols += _trend(raw, mask, last - first)
    return np.concatenate(cols, axis=1).astype(np.float32)


def _trend(raw: np.ndarray, mask: np.ndarray, change: np.ndarray) -> list[np.ndarray]:
    """``[change, mean over the last RECENT_HOURS hours (nan if none), urine per hour so far (nan until the first urine reading)]``."""
    total = np.nancumsum(raw, axis=0)
    count = np.cumsum(mask, axis=0)
    pad = np.zeros((RECENT_HOURS, raw.shape[1]))
    recent_sum = total - np.vstack([pad, total[:-RECENT_HOURS]])
    recent_n = count - np.vstack([pad, count[:-RECENT_HOURS]])
    with np.errstate(invalid="ignore", divide="ignore"):
        recent = np.where(recent_n > 0, recent_sum / recent_n, np.nan)
    u = channel_names().index("Urine")
    urine = np.where(count[:, u] > 0, total[:, u] / np.arange(1, raw.shape[0] + 1), np.nan)
    return [change, recent, urine[:, None]]


def stack_features(grids: list[Grid], hours: list[int] | None = None, feature_set: str = FEATURE_SET) -> np.ndarray:
    """Grids -> ``[N, H, F]`` (all 48 hours, or only the 1-based ``hours``)."""
    if not grids:
        return np.zeros((0, len(hours) if hours else 48, len(summary_feature_names(feature_set))), dtype=np.float32)
    x = np.stack([summary_features(g, feature_set) for g in grids])
    return x if hours is None else x[:, [h - 1 for h in hours]]
