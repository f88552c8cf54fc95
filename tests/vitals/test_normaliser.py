"""The batched LSTM inputs equal a plain per-stay, per-hour, per-channel computation on real stays."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cxr_model.settings import get_settings
from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.lstm import features
from cxr_model.vitals.normaliser import STATIC_FEATURES, Normaliser, log_hours
from cxr_model.vitals.reader import N_HOURS, channel_table, read_record


def reference_inputs(norm: Normaliser, grid) -> np.ndarray:
    """The documented columns, one number at a time in Python floats."""
    logs = [c["transform"] == "log" for c in channel_table()["channels"]]
    n_c = len(norm.channels)
    d = grid.descriptors

    def z(key):
        v = d.get(key, math.nan)
        return ((v - norm.static_mean[key]) / norm.static_std[key], 1.0) if math.isfinite(v) else (0.0, 0.0)

    g, icu = d.get("Gender", math.nan), d.get("ICUType", math.nan)
    static = [z("Age")[0], float(g == 1), float(math.isfinite(g)), *z("Height"), *z("Weight"),
              *(float(icu == k) for k in (1, 2, 3, 4))]
    out = np.zeros((N_HOURS, 3 * n_c + len(STATIC_FEATURES)))
    for t in range(N_HOURS):
        for c in range(n_c):
            v = float(grid.values[t, c])
            v = math.log1p(max(v, 0.0)) if logs[c] else v
            out[t, c] = min(max((v - norm.mean[c]) / norm.std[c], -norm.clip), norm.clip)
            out[t, n_c + c] = grid.mask[t, c]
            out[t, 2 * n_c + c] = math.log1p(float(grid.delta[t, c])) / math.log1p(N_HOURS)
        out[t, 3 * n_c:] = static
    return out


@pytest.fixture(scope="module")
def real_grids(physionet_dir):
    paths = sorted(p for p in (physionet_dir / "set-a").glob("*.txt") if not p.name.lower().startswith("outcomes"))
    return [to_grid(read_record(p)) for p in paths[:60]]


def test_batched_inputs_equal_the_per_hour_reference_on_real_stays(real_grids):
    norm = Normaliser.from_json(get_settings().models_dir / "vitals-ensemble" / "normaliser.json")
    x = features(norm, real_grids).numpy()
    assert x.shape == (len(real_grids), N_HOURS, norm.n_features) and x.dtype == np.float32
    for i, g in enumerate(real_grids):
        np.testing.assert_allclose(x[i], reference_inputs(norm, g), rtol=1e-5, atol=1e-5, err_msg=f"stay {g.record_id}")
        if i % 20 == 0:
            np.testing.assert_array_equal(norm.features(g), x[i])  # alone or in a batch: the same numbers
    n_c = len(norm.channels)
    assert (np.abs(x[:, :, :n_c]) == norm.clip).any()  # the clip is exercised on real stays
    assert (x[:, :, 3 * n_c + STATIC_FEATURES.index("height_known")] == 0).any()  # so is an unknown height
    assert features(norm, []).shape == (0, N_HOURS, norm.n_features)


def test_hours_since_observed_are_looked_up_for_whole_hours_and_computed_otherwise():
    whole = np.array([[0, 1, 7, 48]], dtype=np.float32)
    part = np.array([[0.5, 2.25, 60.0, 1.0]], dtype=np.float32)
    for hours in (whole, part):
        expected = [math.log1p(float(h)) / math.log1p(N_HOURS) for h in hours[0]]
        got = log_hours(hours)
        assert got.dtype == np.float32 and got.shape == hours.shape
        np.testing.assert_allclose(got[0], expected, rtol=1e-6)
