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

from functools import lru_cache

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


@lru_cache(maxsize=1)
def _layout() -> tuple[int, int, dict[str, int]]:
    """(all columns, base columns, channel -> index), worked out once: the channel table is fixed."""
    return len(summary_feature_names()), base_feature_count(), {c: i for i, c in enumerate(channel_names())}


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

    Computed for all stays at once (running min, max, sums and counts; sums in float64), stored as
    float32; a stay gets the same numbers alone or in any batch.

    Args:
        n_features: ``None`` for every column, or :func:`base_feature_count` for the columns of a
            bundle trained without the trend block (which is then not computed).
    """
    full, base, ix = _layout()
    n_feat = full if n_features is None else n_features
    if n_feat not in (base, full):
        raise ValueError(f"summary features come as {base} or {full} columns, not {n_feat}")
    if not grids:
        return np.zeros((0, len(hours) if hours else 48, n_feat), dtype=np.float32)
    # hour-major [T, N, C]: a running sum, min or max is then a loop over the 48 hours, each step one
    # vector op over every stay and channel (numpy's accumulate, a short loop per stay and channel, is ~4x slower);
    # "unless observed" is a multiplication by 1 or nan, not np.where (branchy on real masks)
    values = np.stack([g.values for g in grids], axis=1)  # float32
    mask = np.stack([g.mask for g in grids], axis=1)  # float32 0/1
    t, n, c = values.shape
    out = np.empty((n, t, n_feat), dtype=np.float32)
    ot = out.transpose(1, 0, 2)  # the same memory, hour-major
    last, first, lo, hi, mean, n_obs, since = (ot[:, :, i * c:(i + 1) * c] for i in range(len(STATS)))
    n_sums = 1 if n_feat == base else 3
    ints, acc = np.empty((t, n_sums, n, c), dtype=np.float32), np.empty((t, n_sums, n, c))  # see _running_sums
    with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 = nan before the first observation
        cnt, sums = _running_sums(ints, acc, values, mask)
        n_obs[...] = cnt
        seen = _ones(cnt > 0, np.float32)  # 1 once observed, nan before
        np.multiply(values, seen, out=last)  # grid values are finite: v * 1 == v
        first_hour = np.argmax(mask, axis=0)  # [N, C] (0 when never observed)
        np.multiply(np.take_along_axis(values, first_hour[None], axis=0), seen, out=first)
        raw = values * _ones(mask > 0, np.float32)  # nan in hours without an observation
        lo[0], hi[0] = raw[0], raw[0]
        for i in range(1, t):
            np.fmin(lo[i - 1], raw[i], out=lo[i])
            np.fmax(hi[i - 1], raw[i], out=hi[i])
        np.divide(sums, cnt, out=mean)  # in float64 (the count is exact), stored as float32
        np.multiply(np.stack([g.delta for g in grids], axis=1), seen, out=since)
        desc = np.array([[g.descriptors.get(k, np.nan) for k in DESCRIPTORS] for g in grids], dtype=np.float64)
        ot[:, :, 7 * c:7 * c + len(DESCRIPTORS)] = desc[None, :, :]
        ot[:, :, base - 1] = np.arange(1, t + 1, dtype=np.float64)[:, None]
        if n_feat == full:
            weight = desc[:, DESCRIPTORS.index("Weight")]
            _trends(ot[:, :, base:], ints, acc, mask, values, seen, first_hour, ot, weight, ix)
    return out if hours is None else out[:, [h - 1 for h in hours]]


def _running_sums(ints: np.ndarray, acc: np.ndarray, values: np.ndarray,
                  mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill ``[T, K, N, C]`` running sums over the hours: ``ints`` (float32) the observation count and
    (K = 3) the sums of the observation hours ``h`` and ``h^2``; ``acc`` (float64) the sum of the
    observed values and (K = 3) of their squares and of ``h * value``.

    The integer sums are exact in float32 (at most ``48 * 47 * 95 / 6``; products used later stay
    under ``2^24``), so they equal float64 ones at half the memory traffic. Sums add hour by hour in
    order, as ``np.cumsum`` does. Returns the count and the sum of values ``[T, N, C]`` (views).
    """
    ints[:, 0] = mask
    np.multiply(values, mask, out=acc[:, 0])  # the observed values, 0 elsewhere (grid values are finite)
    if acc.shape[1] == 3:
        hour = np.arange(acc.shape[0], dtype=np.float32)[:, None, None]
        np.multiply(ints[:, 0], hour, out=ints[:, 1])
        np.multiply(ints[:, 1], hour, out=ints[:, 2])
        np.multiply(acc[:, 0], acc[:, 0], out=acc[:, 1])
        np.multiply(ints[:, 1], acc[:, 0], out=acc[:, 2])
    for i in range(1, acc.shape[0]):
        np.add(ints[i - 1], ints[i], out=ints[i])
        np.add(acc[i - 1], acc[i], out=acc[i])
    return ints[:, 0], acc[:, 0]


def _ones(cond: np.ndarray, dtype=np.float64, out: np.ndarray | None = None) -> np.ndarray:
    """1 where ``cond``, nan elsewhere (numpy's positive nan: 0 / 0 gives a negative one, abs drops the sign)."""
    if out is None:
        one = cond.astype(dtype)
    else:
        one = out
        np.copyto(one, cond)
    np.divide(one, one, out=one)
    return np.abs(one, out=one)


def _nan_if_zero(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``x >= 0`` with its zeros replaced by (positive) nan, so that ``y / x`` is nan there, as ``np.nan`` is."""
    y = np.divide(x, x, out=out)
    np.abs(y, out=y)
    return np.multiply(y, x, out=y)


def _window(cum: np.ndarray, w: int, out: np.ndarray | None = None) -> np.ndarray:
    """Sum over the last ``w`` hours from a running sum along axis 0."""
    win = np.empty_like(cum) if out is None else out
    win[:w] = cum[:w]
    np.subtract(cum[w:], cum[:-w], out=win[w:])
    return win


def _trends(out: np.ndarray, ints: np.ndarray, acc: np.ndarray, mask: np.ndarray, values: np.ndarray, seen: np.ndarray,
            first_hour: np.ndarray, base: np.ndarray, weight: np.ndarray, ix: dict[str, int]) -> None:
    """Fill the trend block ``out [T, N, 5 C + len(STAY)]`` (hour-major; see the module docstring).

    ``ints``, ``acc``: the running sums of :func:`_running_sums`; ``seen``: 1 or nan (float32); ``first_hour``:
    ``[N, C]`` the hour of the first observation; ``base``: the base columns, hour-major.
    """
    t, n, c = values.shape
    (cnt, st, stt), (sums, sq, sty) = (ints[:, k] for k in range(3)), (acc[:, k] for k in range(3))
    col = {s: base[:, :, i * c:(i + 1) * c] for i, s in enumerate(STATS)}
    std, slope, mean6, change6, first_at = (out[:, :, i * c:(i + 1) * c] for i in range(len(TRENDS)))
    # In place in the running sums once each is used up, with two more buffers: every fresh array costs
    # page faults, about as much as the arithmetic. Each undefined entry is x / nan with one nan operand
    # (positive, as np.nan), never 0 / 0 (a negative nan).
    work, work32 = np.empty_like(sums), np.empty_like(cnt)
    den = np.multiply(stt, cnt, out=stt)  # exact in float32, as the running sums
    den -= np.multiply(st, st, out=work32)  # > 0 from the second observation on (distinct integer hours)
    num = np.multiply(sty, cnt, out=sty)
    num -= np.multiply(st, sums, out=work)
    two = _ones(den > 0, np.float32, out=work32)  # 1 from the second observation on, nan before
    np.divide(num, np.multiply(den, two, out=den), out=slope)
    cnt2 = np.multiply(cnt, two, out=st)
    var = np.divide(sq, cnt2, out=sq)
    mean2 = np.divide(sums, cnt2, out=sty)  # the mean from the second observation on
    var -= np.multiply(mean2, mean2, out=mean2)
    np.sqrt(np.maximum(var, 0.0, out=var), out=std)
    s6, c6 = _window(sums, 6, out=sq), _window(cnt, 6, out=st)
    m6 = np.divide(s6, _nan_if_zero(c6, out=stt), out=sty)  # no observation in the window: nan
    mean6[...] = m6
    np.subtract(sums, s6, out=s6)
    np.subtract(cnt, c6, out=c6)  # observations before the window
    np.subtract(m6, np.divide(s6, _nan_if_zero(c6, out=stt), out=s6), out=change6)
    np.multiply(first_hour.astype(np.float32), seen, out=first_at)
    # urine: hours without a chart count 0 once urine has been charted (nan before)
    u, charted = sums[:, :, ix["Urine"]], cnt[:, :, ix["Urine"]] > 0
    kg = np.where((weight >= WEIGHT_KG[0]) & (weight <= WEIGHT_KG[1]), weight, np.nan)[None, :]
    total = np.where(charted, u, np.nan)
    per_hour = total / np.arange(1, t + 1)[:, None]
    last6 = np.where(charted, _window(u, 6), np.nan)
    stay = [total, last6, np.where(charted, _window(u, 12), np.nan), per_hour, per_hour / kg, last6 / 6 / kg]
    obs = mask > 0
    stay += [np.cumsum(obs.any(axis=2), axis=0), np.cumsum(obs.sum(axis=2), axis=0),
             np.cumsum(obs[:, :, [ix[k] for k in VITAL_SIGNS]].any(axis=2), axis=0),
             np.cumsum(obs[:, :, [ix[k] for k in LABS]].sum(axis=2), axis=0)]
    last, lo, hi = col["last"], col["min"], col["max"]
    fio2 = np.where(cnt[:, :, ix["FiO2"]] > 0, values[:, :, ix["FiO2"]], np.nan)
    pao2 = np.where(obs[:, :, ix["PaO2"]], values[:, :, ix["PaO2"]].astype(np.float64), np.nan)
    line_sys = last[:, :, ix["SysABP"]]
    sys_any = np.where(np.isnan(line_sys), last[:, :, ix["NISysABP"]], line_sys)
    stay += [last[:, :, ix["PaO2"]] / fio2, np.fmin.accumulate(pao2 / fio2, axis=0),
             last[:, :, ix["BUN"]] / last[:, :, ix["Creatinine"]],
             np.fmin(lo[:, :, ix["SysABP"]], lo[:, :, ix["NISysABP"]]), np.fmin(lo[:, :, ix["MAP"]], lo[:, :, ix["NIMAP"]]),
             last[:, :, ix["HR"]] / sys_any, hi[:, :, ix["HR"]] - lo[:, :, ix["HR"]]]
    out[:, :, len(TRENDS) * c:] = np.stack(stay, axis=2)
