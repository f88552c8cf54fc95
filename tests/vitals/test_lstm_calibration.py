"""The vitals risk is the per-hour Platt-scaled logit, with the coefficients stored in the bundle."""
from __future__ import annotations

import numpy as np
import torch

from cxr_model.vitals.bundle import VitalsBundle, load_vitals_bundle
from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.lstm import VitalsEnsemble
from cxr_model.vitals.reader import N_HOURS, read_dir


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def _bundle(calibration):
    meta = {"threshold": {"value": 0.5}, "name": "toy", "version": "0"}
    if calibration is not None:
        meta["calibration"] = calibration
    return VitalsBundle(VitalsEnsemble(4, hidden=4), None, meta, None)


def test_per_hour_coefficients_apply_to_their_own_hour():
    a = np.linspace(0.5, 2.0, N_HOURS)
    b = np.linspace(-2.0, 1.0, N_HOURS)
    logits = torch.tensor(np.random.default_rng(0).normal(0, 2, (3, N_HOURS)), dtype=torch.float32)
    risk = _bundle({"a": a.tolist(), "b": b.tolist()}).calibrate(logits).double().numpy()
    assert np.allclose(risk, _sigmoid(a * logits.double().numpy() + b), atol=1e-6)
    # and a shorter sequence uses the first hours' coefficients
    short = _bundle({"a": a.tolist(), "b": b.tolist()}).calibrate(logits[:, :5]).double().numpy()
    assert np.allclose(short, risk[:, :5], atol=1e-6)


def test_one_pair_for_all_hours_and_no_calibration():
    z = torch.linspace(-3, 3, N_HOURS)[None]
    assert torch.allclose(_bundle({"a": 2.0, "b": -1.0}).calibrate(z), torch.sigmoid(2 * z - 1))
    assert torch.allclose(_bundle(None).calibrate(z), torch.sigmoid(z))


def test_bundled_model_risk_is_the_stored_per_hour_platt_of_its_logits(settings, physionet_dir):
    bundle = load_vitals_bundle(settings.vitals_model_dir)
    cal = bundle.meta["calibration"]
    a, b = np.asarray(cal["a"]), np.asarray(cal["b"])
    assert a.shape == b.shape == (N_HOURS,) and np.ptp(b) > 0.1  # really one pair per hour
    records, errors = read_dir(physionet_dir / "set-a", [132539, 132540, 132541, 132543])
    assert not errors
    grids = [to_grid(r) for r in records]
    with torch.inference_mode():
        logits = bundle.model(bundle.features(grids)).double().numpy()
    risk = bundle.components(grids)["lstm"]  # the LSTM's own risk (an ensemble bundle combines it further)
    assert risk.shape == (len(grids), N_HOURS)
    assert np.allclose(risk, _sigmoid(a * logits + b), atol=1e-6)
    assert np.abs(risk - _sigmoid(logits)).max() > 0.05  # not the raw sigmoid
    assert np.allclose(bundle.risk_from_features(bundle.features(grids), batch_size=3), risk)
    assert bundle.risk([]).shape == (0, N_HOURS)
    if bundle.trees is None:
        assert np.allclose(bundle.risk(grids), risk)
