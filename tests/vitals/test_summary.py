"""The vectorised summary features equal a plain per-stay, per-hour, per-channel computation on real stays."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.reader import channel_names, read_record
from cxr_model.vitals.summary import DESCRIPTORS, STATS, stack_features, summary_feature_names, summary_features


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
        np.testing.assert_array_equal(x[i], reference_summary(g), err_msg=f"stay {g.record_id}")
    n_c = len(channel_names())
    n_obs = x[:, :, STATS.index("n_obs") * n_c:(STATS.index("n_obs") + 1) * n_c]
    assert np.isnan(x).any() and (n_obs > 1).any() and (n_obs == 0).any()  # repeats and never-measured channels


def test_a_stay_gets_the_same_summary_alone_as_in_a_batch_and_hours_select_rows(real_grids):
    x = stack_features(real_grids)
    for i in (0, 17, len(real_grids) - 1):
        np.testing.assert_array_equal(summary_features(real_grids[i]), x[i])
    np.testing.assert_array_equal(stack_features(real_grids, hours=[6, 48]), x[:, [5, 47]])
    assert stack_features([], hours=[6, 48]).shape == (0, 2, x.shape[-1])
