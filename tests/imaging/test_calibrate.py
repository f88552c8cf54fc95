"""Platt scaling is fitted (the maximum-likelihood fit, as scikit-learn finds it) and applied.

``fit_platt`` is checked against scikit-learn's logistic regression on the same logits, with a
vanishing penalty; the bundle's probability against ``sigmoid(a * logit + b)`` with the stored
coefficients, on a real radiograph through the paths the CLI and the review page take.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from cxr_model.imaging.io import read_image
from cxr_model.imaging.operating import features_and_logits
from cxr_model.imaging.predict import predict_batch, predict_source
from cxr_model.imaging.review import analyse_study, display_copy
from cxr_model.imaging.transforms import load_tensor
from cxr_model.metrics.calibration import apply_platt, fit_platt


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


@pytest.mark.parametrize("a_true,b_true", [(0.6, -0.8), (1.7, 1.2)])
def test_fit_platt_is_the_maximum_likelihood_fit_sklearn_finds(a_true, b_true):
    rng = np.random.default_rng(int(10 * a_true))
    logits = rng.normal(0.5, 2.0, 3000)
    y = (rng.random(logits.size) < _sigmoid(a_true * logits + b_true)).astype(int)
    ref = LogisticRegression(C=1e10, tol=1e-12, max_iter=10_000).fit(logits[:, None], y)
    cal = fit_platt(y, logits)
    assert cal["a"] == pytest.approx(ref.coef_[0, 0], abs=1e-4)
    assert cal["b"] == pytest.approx(ref.intercept_[0], abs=1e-4)
    assert cal["a"] == pytest.approx(a_true, abs=0.3) and cal["b"] == pytest.approx(b_true, abs=0.3)


def test_fit_platt_undoes_a_class_weighted_shift():
    # a model trained with pos_weight over-calls positives by a constant logit offset
    rng = np.random.default_rng(3)
    true_logit = rng.normal(-1.0, 1.5, 4000)
    y = (rng.random(true_logit.size) < _sigmoid(true_logit)).astype(int)
    cal = fit_platt(y, true_logit + 1.3)
    assert cal["a"] == pytest.approx(1.0, abs=0.1) and cal["b"] == pytest.approx(-1.3, abs=0.15)


def test_prob_is_sigmoid_of_the_scaled_logit():
    logits = np.linspace(-5, 5, 11)
    assert np.allclose(apply_platt(logits, {"a": 0.5, "b": -1.0}), _sigmoid(0.5 * logits - 1.0))


@pytest.fixture(scope="module")
def film(kermany_dir):
    return sorted((kermany_dir / "val" / "NORMAL").glob("*.jpeg"))[0]


def test_stored_calibration_is_not_the_identity(cxr_bundle):
    cal = cxr_bundle.meta["calibration"]
    assert abs(cal["a"] - 1) > 1e-3 or abs(cal["b"]) > 0.1  # otherwise the tests below prove nothing


def _maps(bundle) -> dict:
    """Population -> stored Platt map (``None``: the one map of a single-population bundle)."""
    op = bundle.operating_point
    if op is None:
        return {None: bundle.meta["calibration"]}
    return {**op["per_population"], None: op["pooled"]}


def test_bundle_probability_applies_the_stored_platt_coefficients(cxr_bundle):
    logits = torch.linspace(-6, 6, 25)
    raw = _sigmoid(logits.double().numpy())
    far = 0.0
    for pop, cal in _maps(cxr_bundle).items():
        p = cxr_bundle.probability(logits, population=pop).double().numpy()
        assert np.allclose(p, _sigmoid(cal["a"] * logits.double().numpy() + cal["b"]), atol=1e-6), pop
        far = max(far, np.abs(p - raw).max())
    assert far > 0.2  # not the raw sigmoid
    if cxr_bundle.operating_point is not None:  # without features or population: the pooled map
        cal = cxr_bundle.meta["calibration"]
        assert np.allclose(cxr_bundle.probability(logits).double().numpy(),
                           _sigmoid(cal["a"] * logits.double().numpy() + cal["b"]), atol=1e-6)


def test_cli_and_review_paths_give_the_calibrated_probability_of_the_raw_logit(cxr_bundle, film):
    with torch.inference_mode():
        feats, logits = features_and_logits(cxr_bundle.model, cxr_bundle.arch, load_tensor(film, cxr_bundle.img_size).unsqueeze(0))
    logit = float(logits[0])
    pop = cxr_bundle.populations(feats.numpy())[0] if cxr_bundle.operating_point is not None else None
    cal = _maps(cxr_bundle)[pop]
    expected = float(_sigmoid(cal["a"] * logit + cal["b"]))
    assert abs(expected - float(_sigmoid(logit))) > 1e-3
    pred = predict_source(cxr_bundle, film)
    assert pred.probability == pytest.approx(expected, abs=1e-5)
    assert pred.label == ("PNEUMONIA" if expected >= cxr_bundle.threshold else "NORMAL")
    assert pred.threshold == cxr_bundle.threshold and pred.model == cxr_bundle.model_id
    x = load_tensor(film, cxr_bundle.img_size).unsqueeze(0)
    assert float(predict_batch(cxr_bundle, x)[0]) == pytest.approx(expected, abs=1e-5)
    study = analyse_study(cxr_bundle, film.read_bytes(), film.name)
    assert study.probability == pytest.approx(expected, abs=1e-4)
    assert study.threshold == cxr_bundle.threshold
    assert np.array_equal(study.display, display_copy(read_image(film)))
    assert torch.equal(study.x, x)  # the same model input as the CLI path
