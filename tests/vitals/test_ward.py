"""The ward's per-patient trends: what the page plots is what NEWS2 scored."""
from __future__ import annotations

import numpy as np

from cxr_model.vitals.bundle import load_vitals_bundle
from cxr_model.vitals.news2 import news2_inputs
from cxr_model.vitals.reader import channel_names, read_dir
from cxr_model.vitals.ward import build_ward, has_real_ward


def test_sbp_trend_is_the_news2_input_and_observed_when_either_pressure_was(settings, physionet_dir):
    bundle = load_vitals_bundle(settings.vitals_model_dir)
    records, errors = read_dir(physionet_dir / "set-a", [132539, 132540])
    assert errors == []
    names = channel_names()
    for p in build_ward(records, bundle):
        step = 40
        values, observed = p.trend("SBP", step)
        assert values.shape == observed.shape == (step + 1,)
        assert values.tolist() == [news2_inputs(p.grid, t)["systolic_bp"] for t in range(step + 1)]
        either = (p.grid.mask[: step + 1, names.index("SysABP")] > 0) | (p.grid.mask[: step + 1, names.index("NISysABP")] > 0)
        assert np.array_equal(observed > 0, either) and either.any()
        hr, hr_seen = p.trend("HR", step)
        assert np.array_equal(hr, p.grid.values[: step + 1, names.index("HR")])
        assert np.array_equal(hr_seen, p.grid.mask[: step + 1, names.index("HR")])


def test_the_real_ward_needs_set_a_and_the_bundles_split(settings, physionet_dir, tmp_path):
    assert has_real_ward(physionet_dir, settings.vitals_model_dir)
    assert not has_real_ward(physionet_dir, tmp_path)  # no splits.csv
    assert not has_real_ward(tmp_path, settings.vitals_model_dir)  # no set-a/
