"""The vectorised summary features equal a plain per-stay, per-hour, per-channel computation on real stays."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.reader import channel_names, read_record
from cxr_model.vitals.summary import (
    DESCRIPTORS, LABS, STATS, STAY, TRENDS, VITAL_SIGNS, base_feature_count, stack_features, summary_feature_names,
    summary_features,
)


def reference_summary(grid) -> np.ndarray:
    """Row ``t``: for each channel the observed values of hours ``0..t`` summarised one by one."""
    hours, n_c = grid.values.shape
    out = np.full((hours, len(STATS) * n_c + len(DESCRIPTORS) + 1), np.nan)
    for c in range(n_c):
        seen: list[tuple[int, float]] = []
        for t in range(hours):
            if grid.mask[t, c] > 0:
                seen.append((t, float(grid.values[t, c])))
            if seen:
                vals = [v for _, v in seen]
                total = 0.0
                for v in vals:
                    total += v
                stats = [vals[-1], vals[0], min(vals), max(vals), total / len(vals), len(vals), t - seen[-1][0]]
            else:
                stats = [math.nan] * 5 + [0, math.nan]
            for k, v in enumerate(stats):
                out[t, k * n_c + c] = v
    for t in range(hours):
        out[t, len(STATS) * n_c:-1] = [grid.descriptors.get(k, math.nan) for k in DESCRIPTORS]
        out[t, -1] = t + 1
    return out.astype(np.float32)


@pytest.fixture(scope="module")
def real_grids(physionet_dir):
    paths = sorted(p for p in (physionet_dir / "set-a").glob("*.txt") if not p.name.lower().startswith("outcomes"))
    return [to_grid(read_record(p)) for p in paths[:60]]


def test_batched_summary_equals_the_per_hour_reference_on_real_stays(real_grids):
    x = stack_features(real_grids)
    assert x.shape == (len(real_grids), 48, len(summary_feature_names())) and x.dtype == np.float32
    for i, g in enumerate(real_grids):
        np.testing.assert_array_equal(x[i, :, :base_feature_count()], reference_summary(g), err_msg=f"stay {g.record_id}")
    n_c = len(channel_names())
    n_obs = x[:, :, STATS.index("n_obs") * n_c:(STATS.index("n_obs") + 1) * n_c]
    assert np.isnan(x).any() and (n_obs > 1).any() and (n_obs == 0).any()  # repeats and never-measured channels


def test_a_stay_gets_the_same_summary_alone_as_in_a_batch_and_hours_select_rows(real_grids):
    x = stack_features(real_grids)
    for i in (0, 17, len(real_grids) - 1):
        np.testing.assert_array_equal(summary_features(real_grids[i]), x[i])
    np.testing.assert_array_equal(stack_features(real_grids, hours=[6, 48]), x[:, [5, 47]])
    assert stack_features([], hours=[6, 48]).shape == (0, 2, x.shape[-1])


def reference_trends(grid) -> np.ndarray:
    """Row ``t``, per channel: std, least-squares slope per hour, mean of hours t-5..t, its change
    against the mean before, hour of the first observation, from a plain list of observations."""
    hours, n_c = grid.values.shape
    out = np.full((hours, len(TRENDS) * n_c), np.nan)
    for c in range(n_c):
        seen: list[tuple[int, float]] = []
        for t in range(hours):
            if grid.mask[t, c] > 0:
                seen.append((t, float(grid.values[t, c])))
            if not seen:
                continue
            ts, vs = np.array([h for h, _ in seen], dtype=float), np.array([v for _, v in seen])
            recent = [v for h, v in seen if h > t - 6]
            before = [v for h, v in seen if h <= t - 6]
            row = [vs.std() if len(vs) > 1 else math.nan,
                   np.polyfit(ts, vs, 1)[0] if len(set(ts)) > 1 else math.nan,
                   np.mean(recent) if recent else math.nan,
                   np.mean(recent) - np.mean(before) if recent and before else math.nan,
                   seen[0][0]]
            for k, v in enumerate(row):
                out[t, k * n_c + c] = v
    return out


def test_the_trend_block_equals_a_per_hour_reference_on_real_stays(real_grids):
    x = stack_features(real_grids)
    base, n_c = base_feature_count(), len(channel_names())
    assert x.shape[-1] == base + len(TRENDS) * n_c + len(STAY) == len(summary_feature_names())
    for g, row in zip(real_grids, x):
        ref = reference_trends(g)
        got = row[:, base:base + ref.shape[1]]
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=f"stay {g.record_id}")
        # float64 running sums against numpy's two-pass std and polyfit: equal to float32 precision
        np.testing.assert_allclose(got, ref, rtol=2e-4, atol=2e-4, equal_nan=True, err_msg=f"stay {g.record_id}")
    slope = x[:, :, base + n_c:base + 2 * n_c]
    assert np.isfinite(slope).any() and np.isnan(slope).any()


def test_urine_sums_ratios_and_never_measured_stay_missing(record_writer):
    rows = [("00:30", "Urine", 100), ("01:30", "Urine", 50), ("07:30", "Urine", 30), ("02:00", "PaO2", 80),
            ("01:00", "FiO2", 0.5), ("03:00", "HR", 90), ("03:00", "NISysABP", 100)]
    grid = to_grid(read_record(record_writer(5, rows, {"Weight": 50})))
    f = summary_features(grid)
    col = {n: i for i, n in enumerate(summary_feature_names())}
    assert f[0, col["Urine:last_6h"]] == 100 and f[0, col["Urine:total"]] == 100
    assert f[7, col["Urine:total"]] == 180 and f[7, col["Urine:last_6h"]] == 30 and f[7, col["Urine:last_12h"]] == 180
    assert f[7, col["Urine:per_kg_hour"]] == pytest.approx(180 / 8 / 50)
    assert f[1, col["PaO2/FiO2:last"]] == pytest.approx(160) and np.isnan(f[0, col["PaO2/FiO2:last"]])
    assert f[2, col["HR/SysABP:last"]] == pytest.approx(0.9) and f[2, col["SysABP_any:min"]] == 100
    assert f[7, col["hours_charted"]] == 4 and f[7, col["observations"]] == 7
    # never measured: missing, not a normal value and not zero urine
    assert np.isnan(f[:, col["RespRate:std"]]).all() and np.isnan(f[:, col["RespRate:slope"]]).all()
    assert np.isnan(f[:, col["BUN/Creatinine:last"]]).all() and np.isnan(f[:, col["MAP_any:min"]]).all()
    no_urine = summary_features(to_grid(read_record(record_writer(6, [("01:00", "HR", 80)]))))
    assert np.isnan(no_urine[:, [col[k] for k in STAY[:6]]]).all()


def test_the_base_columns_alone_are_the_first_columns_and_other_counts_are_refused(real_grids):
    x = stack_features(real_grids[:5])
    np.testing.assert_array_equal(stack_features(real_grids[:5], n_features=base_feature_count()),
                                  x[:, :, :base_feature_count()])
    with pytest.raises(ValueError, match="not 100"):
        stack_features(real_grids[:5], n_features=100)


def running_sum_trends(grid) -> np.ndarray:
    """The trend block by its documented float64 running-sum formulas, one channel and hour at a time
    in plain Python floats (which are float64): the same numbers bit for bit, so a shortcut in the
    vectorised code (float32 arithmetic, another order of sums) fails here, not only against the
    tolerance of :func:`reference_trends`."""
    hours, n_c = grid.values.shape
    out = np.full((hours, len(TRENDS) * n_c), np.nan)
    for c in range(n_c):
        n = s = sq = sh = shh = shv = 0.0
        cum: list[tuple[float, float]] = []  # (count, sum) after each hour
        first = None
        for t in range(hours):
            if grid.mask[t, c] > 0:
                v = float(grid.values[t, c])
                n, s, sq, sh, shh, shv = n + 1, s + v, sq + v * v, sh + t, shh + t * t, shv + t * v
                first = t if first is None else first
            cum.append((n, s))
            n6, s6 = (n - cum[t - 6][0], s - cum[t - 6][1]) if t >= 6 else (n, s)
            mean6 = s6 / n6 if n6 else math.nan
            row = [math.sqrt(max(sq / n - (s / n) * (s / n), 0.0)) if n >= 2 else math.nan,
                   (n * shv - sh * s) / (n * shh - sh * sh) if n >= 2 else math.nan,
                   mean6, mean6 - (s - s6) / (n - n6) if n6 and n - n6 else math.nan,
                   first if first is not None else math.nan]
            for k, v in enumerate(row):
                out[t, k * n_c + c] = v
    return out.astype(np.float32)


def test_the_trend_block_is_its_running_sum_formulas_to_the_bit_on_real_stays(real_grids):
    x = stack_features(real_grids[:30])
    base, width = base_feature_count(), len(TRENDS) * len(channel_names())
    for g, row in zip(real_grids, x):
        np.testing.assert_array_equal(row[:, base:base + width], running_sum_trends(g), err_msg=f"stay {g.record_id}")


def reference_stay(grid) -> np.ndarray:
    """The stay columns (``STAY``) of row ``t``, from the grid's hours ``0..t`` one at a time."""
    ix = {c: i for i, c in enumerate(channel_names())}
    hours = grid.values.shape[0]
    obs, val = grid.mask > 0, grid.values
    w = grid.descriptors.get("Weight", math.nan)
    kg = w if 20 <= w <= 300 else math.nan
    f32 = np.float32
    out = np.full((hours, len(STAY)), np.nan)
    urine: list[float] = []  # running sum of charted urine, 0 for hours without a chart
    best_pf = math.nan
    for t in range(hours):
        urine.append((urine[-1] if urine else 0.0) + (float(val[t, ix["Urine"]]) if obs[t, ix["Urine"]] else 0.0))
        seen = obs[:t + 1].any(axis=0)

        def last(ch):
            return f32(val[t, ix[ch]]) if seen[ix[ch]] else f32(np.nan)

        def low(ch):
            return f32(min(val[:t + 1, ix[ch]][obs[:t + 1, ix[ch]]], default=np.nan))

        row = [math.nan] * 6
        if seen[ix["Urine"]]:
            last6 = urine[t] - (urine[t - 6] if t >= 6 else 0.0)
            row = [urine[t], last6, urine[t] - (urine[t - 12] if t >= 12 else 0.0), urine[t] / (t + 1),
                   urine[t] / (t + 1) / kg, last6 / 6 / kg]
        row += [obs[:t + 1].any(axis=1).sum(), obs[:t + 1].sum(),
                obs[:t + 1][:, [ix[k] for k in VITAL_SIGNS]].any(axis=1).sum(), obs[:t + 1][:, [ix[k] for k in LABS]].sum()]
        if obs[t, ix["PaO2"]] and seen[ix["FiO2"]]:
            best_pf = np.fmin(best_pf, float(val[t, ix["PaO2"]]) / float(val[t, ix["FiO2"]]))
        sys_any = last("SysABP") if seen[ix["SysABP"]] else last("NISysABP")
        hr = val[:t + 1, ix["HR"]][obs[:t + 1, ix["HR"]]]
        row += [last("PaO2") / last("FiO2"), best_pf, last("BUN") / last("Creatinine"),
                np.fmin(low("SysABP"), low("NISysABP")), np.fmin(low("MAP"), low("NIMAP")), last("HR") / sys_any,
                hr.max() - hr.min() if hr.size else math.nan]
        out[t] = row
    return out.astype(np.float32)


def test_the_stay_columns_equal_a_plain_per_hour_reference_on_real_stays(real_grids):
    x = stack_features(real_grids)
    for g, row in zip(real_grids, x):
        np.testing.assert_array_equal(row[:, -len(STAY):], reference_stay(g), err_msg=f"stay {g.record_id}")
    col = {n: i for i, n in enumerate(summary_feature_names())}
    for name in ("Urine:last_6h", "PaO2/FiO2:min", "BUN/Creatinine:last", "HR/SysABP:last", "Urine:per_kg_hour"):
        assert np.isfinite(x[:, :, col[name]]).any() and np.isnan(x[:, :, col[name]]).any(), name  # both cases seen


@pytest.mark.parametrize("weight, per_kg", [(20, True), (300, True), (19.5, False), (300.5, False), (math.nan, False)])
def test_urine_per_kg_needs_a_weight_within_the_descriptors_valid_range(record_writer, weight, per_kg):
    grid = to_grid(read_record(record_writer(7, [("00:30", "Urine", 120), ("01:00", "HR", 80)])))
    grid.descriptors["Weight"] = weight  # set on the grid: the reader alone never passes an invalid weight
    f = summary_features(grid)
    col = {n: i for i, n in enumerate(summary_feature_names())}
    got = f[5, [col["Urine:per_kg_hour"], col["Urine:last_6h_per_kg_hour"]]]
    if per_kg:
        np.testing.assert_allclose(got, [120 / 6 / weight, 120 / 6 / weight], rtol=1e-6)
    else:
        assert np.isnan(got).all() and f[5, col["Urine:per_hour"]] == 20  # the unweighted rate is kept


def test_no_stays_give_an_empty_float32_block_of_48_hours():
    n = len(summary_feature_names())
    for hours, shape in ((None, (0, 48, n)), ([6, 48], (0, 2, n))):
        empty = stack_features([], hours=hours)
        assert empty.shape == shape and empty.dtype == np.float32
    assert stack_features([], n_features=base_feature_count()).shape == (0, 48, base_feature_count())


def test_real_stays_are_summarised_without_a_numpy_warning(real_grids):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0 / 0 before a first observation is expected, and silenced
        x = stack_features(real_grids)
    assert np.isnan(x).any()
