"""Per-window summary features of a stay at every hour, for the gradient-boosted trees.

The challenge winners summarised each variable over the window seen so far (Johnson et al.,
Citi and Barbieri, CinC 2012). At hour ``t`` every channel gives: the last, first, lowest,
highest and mean observed value, the number of hourly observations and the hours since the last
one, each computed from hours ``<= t`` only (causal, like the LSTM). A channel never observed so
far is ``nan`` (the trees learn where missing goes; nothing is filled from normal values). Then the
descriptors (age, gender, height, weight, ICU type) and the hour itself: the first
:func:`base_feature_count` columns (the feature set of bundles up to vitals-ensemble 2.0.0).

Then the trend block (version 2.1), also causal and ``nan`` where undefined: per channel the standard
deviation and least-squares slope (per hour) of the observed values, the mean of the last 6 hours
and its change against the mean before them, and the hour of the first observation; urine output
summed over the stay, the last 6 and 12 hours, per hour and per kg per hour (weight descriptor);
how densely the stay was charted; and ratios the winners used (PaO2/FiO2, BUN/creatinine, shock
index, the lowest systolic and mean pressure of either cuff or line, the heart-rate range).
"""
from __future__ import annotations

import numpy as np

from cxr_model.vitals.grid import Grid
from cxr_model.vitals.reader import channel_names

STATS = ["last", "first", "min", "max", "mean", "n_obs", "hours_since"]
DESCRIPTORS = ["Age", "Gender", "Height", "Weight", "ICUType"]
TRENDS = ["std", "slope", "mean_6h", "change_6h", "first_hour"]
STAY = ["Urine:total", "Urine:last_6h", "Urine:last_12h", "Urine:per_hour", "Urine:per_kg_hour",
        "Urine:last_6h_per_kg_hour", "hours_charted", "observations", "vital_sign_hours", "lab_observations",
        "PaO2/FiO2:last", "PaO2/FiO2:min", "BUN/Creatinine:last", "SysABP_any:min", "MAP_any:min",
        "HR/SysABP:last", "HR:range"]
VITAL_SIGNS = ("HR", "SysABP", "NISysABP", "RespRate", "Temp")
LABS = ("Lactate", "pH", "PaO2", "BUN", "Creatinine", "WBC", "HCT")
WEIGHT_KG = (20.0, 300.0)  # the weight descriptor's valid range (channels.json); outside it = unknown


def base_feature_count() -> int:
    """Columns of the feature set without the trend block (``7 C + 6``)."""
    return len(STATS) * len(channel_names()) + len(DESCRIPTORS) + 1


def summary_feature_names() -> list[str]:
    """Column names of :func:`summary_features`, in order."""
    ch = channel_names()
    return ([f"{c}:{s}" for s in STATS for c in ch] + DESCRIPTORS + ["hour"]
            + [f"{c}:{s}" for s in TRENDS for c in ch] + STAY)


def summary_features(grid: Grid) -> np.ndarray:
    """One stay -> ``float32 [48, F]``: row ``t`` summarises hours ``0..t`` (one row of :func:`stack_features`).

    Args:
        grid: the stay on the hourly grid (``values``, ``mask``, ``delta`` ``[48, C]``).
    """
    return stack_features([grid])[0]


def stack_features(grids: list[Grid], hours: list[int] | None = None, n_features: int | None = None) -> np.ndarray:
    """Grids -> ``float32 [N, H, F]`` (all 48 hours, or only the 1-based ``hours``).

    Computed for all stays at once along the hour axis (running min, max, sums and counts; sums in
    float64), stored as float32; a stay gets the same numbers alone or in any batch.

    Args:
        n_features: ``None`` for every column, or :func:`base_feature_count` for the columns of a
            bundle trained without the trend block (which is then not computed).
    """
    full, base = len(summary_feature_names()), base_feature_count()
    n_feat = full if n_features is None else n_features
    if n_feat not in (base, full):
        raise ValueError(f"summary features come as {base} or {full} columns, not {n_feat}")
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
    sums = np.cumsum(np.where(mask, values, np.float32(0)), axis=1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 = nan before the first observation
        mean[...] = sums / n_obs
    since[...] = np.where(seen, np.stack([g.delta for g in grids]), np.float32(np.nan))
    desc = np.array([[g.descriptors.get(k, np.nan) for k in DESCRIPTORS] for g in grids], dtype=np.float64)
    out[:, :, 7 * c:7 * c + len(DESCRIPTORS)] = desc[:, None, :]
    out[:, :, base - 1] = np.arange(1, t + 1, dtype=np.float64)
    if n_feat == full:
        with np.errstate(invalid="ignore", divide="ignore"):
            _trends(out[:, :, base:], values, mask, sums, out[:, :, :base], desc[:, DESCRIPTORS.index("Weight")])
    return out if hours is None else out[:, [h - 1 for h in hours]]


def _window(cum: np.ndarray, w: int) -> np.ndarray:
    """Sum over the last ``w`` hours from a running sum along axis 1."""
    before = np.zeros_like(cum)
    before[:, w:] = cum[:, :-w]
    return cum - before


def _trends(out: np.ndarray, values: np.ndarray, mask: np.ndarray, sums: np.ndarray, base: np.ndarray,
            weight: np.ndarray) -> None:
    """Fill the trend block ``out [N, T, 5 C + len(STAY)]`` (see the module docstring)."""
    n, t, c = values.shape
    ix = {name: i for i, name in enumerate(channel_names())}
    col = {s: base[:, :, i * c:(i + 1) * c] for i, s in enumerate(STATS)}
    cnt = np.cumsum(mask, axis=1, dtype=np.float64)
    hour = np.arange(t, dtype=np.float64)[None, :, None]
    vm = np.multiply(values, mask, dtype=np.float64)  # the observed values, 0 elsewhere (grid values are finite)
    hm = np.multiply(mask, hour, dtype=np.float64)  # the hour of each observation, 0 elsewhere
    sq = np.cumsum(vm * vm, axis=1)
    st = np.cumsum(hm, axis=1)
    stt = np.cumsum(hm * hour, axis=1)
    sty = np.cumsum(np.multiply(hm, vm, out=hm), axis=1)
    mean = sums / cnt
    std, slope, mean6, change6, first_hour = (out[:, :, i * c:(i + 1) * c] for i in range(len(TRENDS)))
    std[...] = np.where(cnt >= 2, np.sqrt(np.maximum(sq / cnt - mean * mean, 0.0)), np.nan)
    den = cnt * stt - st * st
    slope[...] = np.where((cnt >= 2) & (den > 0), (cnt * sty - st * sums) / den, np.nan)
    s6, c6 = _window(sums, 6), _window(cnt, 6)
    m6 = np.where(c6 > 0, s6 / c6, np.nan)
    mean6[...] = m6
    change6[...] = m6 - np.where(cnt - c6 > 0, (sums - s6) / (cnt - c6), np.nan)
    first_hour[...] = np.where(cnt > 0, np.argmax(mask, axis=1)[:, None, :], np.nan)
    # urine: hours without a chart count 0 once urine has been charted (nan before)
    u, charted = sums[:, :, ix["Urine"]], cnt[:, :, ix["Urine"]] > 0
    kg = np.where((weight >= WEIGHT_KG[0]) & (weight <= WEIGHT_KG[1]), weight, np.nan)[:, None]
    total = np.where(charted, u, np.nan)
    per_hour = total / np.arange(1, t + 1)[None, :]
    last6 = np.where(charted, _window(u, 6), np.nan)
    stay = [total, last6, np.where(charted, _window(u, 12), np.nan), per_hour, per_hour / kg, last6 / 6 / kg]
    stay += [np.cumsum(mask.any(axis=2), axis=1), np.cumsum(mask.sum(axis=2), axis=1),
             np.cumsum(mask[:, :, [ix[k] for k in VITAL_SIGNS]].any(axis=2), axis=1),
             np.cumsum(mask[:, :, [ix[k] for k in LABS]].sum(axis=2), axis=1)]
    last, lo, hi = col["last"], col["min"], col["max"]
    fio2 = np.where(cnt[:, :, ix["FiO2"]] > 0, values[:, :, ix["FiO2"]], np.nan)
    pao2 = np.where(mask[:, :, ix["PaO2"]], values[:, :, ix["PaO2"]].astype(np.float64), np.nan)
    line_sys = last[:, :, ix["SysABP"]]
    sys_any = np.where(np.isnan(line_sys), last[:, :, ix["NISysABP"]], line_sys)
    stay += [last[:, :, ix["PaO2"]] / fio2, np.fmin.accumulate(pao2 / fio2, axis=1),
             last[:, :, ix["BUN"]] / last[:, :, ix["Creatinine"]],
             np.fmin(lo[:, :, ix["SysABP"]], lo[:, :, ix["NISysABP"]]), np.fmin(lo[:, :, ix["MAP"]], lo[:, :, ix["NIMAP"]]),
             last[:, :, ix["HR"]] / sys_any, hi[:, :, ix["HR"]] - lo[:, :, ix["HR"]]]
    out[:, :, len(TRENDS) * c:] = np.stack(stay, axis=2)
