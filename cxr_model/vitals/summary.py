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
    """One stay -> ``float32 [48, 7 C + 6]``: row ``t`` summarises hours ``0..t`` (one row of :func:`stack_features`).

    Args:
        grid: the stay on the hourly grid (``values``, ``mask``, ``delta`` ``[48, C]``).
    """
    return stack_features([grid])[0]


def stack_features(grids: list[Grid], hours: list[int] | None = None) -> np.ndarray:
    """Grids -> ``float32 [N, H, 7 C + 6]`` (all 48 hours, or only the 1-based ``hours``).

    Computed for all stays at once along the hour axis (running min, max, sums and counts; the
    mean summed in float64), stored as float32; a stay gets the same numbers alone or in any batch.
    """
    n_feat = len(summary_feature_names())
    if not grids:
        return np.zeros((0, len(hours) if hours else 48, n_feat), dtype=np.float32)
    values = np.stack([g.values for g in grids])  # [N, T, C] float32
    mask = np.stack([g.mask for g in grids]) > 0
    n, t, c = values.shape
    out = np.empty((n, t, n_feat), dtype=np.float32)
    last, first, lo, hi, mean, n_obs, since = (out[:, :, i * c:(i + 1) * c] for i in range(len(STATS)))
    # last, first, min, max and hours since are values of the grid: exact in float32
    seen = np.logical_or.accumulate(mask, axis=1)
    raw = np.where(mask, values, np.float32(np.nan))
    last[...] = np.where(seen, values, np.float32(np.nan))
    first[...] = np.where(seen, np.take_along_axis(raw, np.argmax(mask, axis=1)[:, None, :], axis=1), np.float32(np.nan))
    np.fmin.accumulate(raw, axis=1, out=lo)
    np.fmax.accumulate(raw, axis=1, out=hi)
    np.cumsum(mask, axis=1, dtype=np.float32, out=n_obs)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 = nan before the first observation
        mean[...] = np.cumsum(np.where(mask, values, np.float32(0)), axis=1, dtype=np.float64) / n_obs
    since[...] = np.where(seen, np.stack([g.delta for g in grids]), np.float32(np.nan))
    desc = np.array([[g.descriptors.get(k, np.nan) for k in DESCRIPTORS] for g in grids], dtype=np.float64)
    out[:, :, 7 * c:7 * c + len(DESCRIPTORS)] = desc[:, None, :]
    out[:, :, -1] = np.arange(1, t + 1, dtype=np.float64)
    return out if hours is None else out[:, [h - 1 for h in hours]]
