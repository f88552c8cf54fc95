"""Per-window summary features of a stay at every hour, for the gradient-boosted trees.

The challenge winners summarised each variable over the window seen so far (Johnson et al.,
Citi and Barbieri, CinC 2012). At hour ``t`` every channel gives: the last, first, lowest,
highest and mean observed value, the number of hourly observations and the hours since the last
one, each computed from hours ``<= t`` only (causal, like the LSTM). A channel never observed so
far is ``nan`` (the trees learn where missing goes; nothing is filled from normal values). Then the
descriptors (age, gender, height, weight, ICU type) and the hour itself.
"""
from __future__ import annotations

import numpy as np

from cxr_model.vitals.grid import Grid
from cxr_model.vitals.reader import channel_names

STATS = ["last", "first", "min", "max", "mean", "n_obs", "hours_since"]
DESCRIPTORS = ["Age", "Gender", "Height", "Weight", "ICUType"]


def summary_feature_names() -> list[str]:
    """Column names of :func:`summary_features`, in order."""
    return [f"{c}:{s}" for s in STATS for c in channel_names()] + DESCRIPTORS + ["hour"]


def summary_features(grid: Grid) -> np.ndarray:
    """One stay -> ``float32 [48, 7 C + 6]``: row ``t`` summarises hours ``0..t``.

    Args:
        grid: the stay on the hourly grid (``values``, ``mask``, ``delta`` ``[48, C]``).
    """
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
    return np.concatenate([last, first, lo, hi, mean, n_obs, since, static, hour], axis=1).astype(np.float32)


def stack_features(grids: list[Grid], hours: list[int] | None = None) -> np.ndarray:
    """Grids -> ``[N, H, F]`` (all 48 hours, or only the 1-based ``hours``)."""
    if not grids:
        return np.zeros((0, len(hours) if hours else 48, len(summary_feature_names())), dtype=np.float32)
    x = np.stack([summary_features(g) for g in grids])
    return x if hours is None else x[:, [h - 1 for h in hours]]
