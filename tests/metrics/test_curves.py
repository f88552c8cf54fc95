"""ROC and PR curves and AUPRC against scikit-learn, with ties and degenerate inputs."""
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from cxr_model.metrics.curves import compute_auprc, pr_curve, roc_curve


@pytest.fixture(scope="module")
def tied_scores():
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 250)
    return y, np.round(rng.random(250) * 0.8 + 0.2 * y, 1)


def test_roc_curve_matches_sklearn(tied_scores):
    y, s = tied_scores
    c = roc_curve(y, s)
    fpr, tpr, thr = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(c.x, fpr)
    np.testing.assert_allclose(c.y, tpr)
    np.testing.assert_allclose(c.thresholds[1:], thr[1:])
    assert (c.x[0], c.y[0], c.x[-1], c.y[-1]) == (0, 0, 1, 1)


def test_roc_area_equals_auroc(tied_scores):
    y, s = tied_scores
    c = roc_curve(y, s)
    assert np.trapezoid(c.y, c.x) == pytest.approx(skm.roc_auc_score(y, s))


def test_pr_curve_matches_sklearn_reversed(tied_scores):
    y, s = tied_scores
    c = pr_curve(y, s)
    prec, rec, thr = skm.precision_recall_curve(y, s)
    np.testing.assert_allclose(c.x, rec[::-1][1:])
    np.testing.assert_allclose(c.y, prec[::-1][1:])
    np.testing.assert_allclose(c.thresholds, thr[::-1])


def test_auprc_matches_average_precision(tied_scores):
    y, s = tied_scores
    assert compute_auprc(y, s) == pytest.approx(skm.average_precision_score(y, s))


def test_all_tied_scores_move_in_one_step():
    c = roc_curve([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])
    assert c.x.tolist() == [0, 1] and c.y.tolist() == [0, 1]
    assert compute_auprc([0, 1, 0, 1], [0.5] * 4) == pytest.approx(0.5)  # the prevalence


def test_one_class_only():
    assert math.isnan(compute_auprc([0, 0, 0], [0.1, 0.5, 0.9]))
    assert compute_auprc([1, 1], [0.1, 0.9]) == 1.0
    c = roc_curve([1, 1], [0.1, 0.9])
    assert np.isnan(c.x).all() and c.y[-1] == 1.0


def test_empty_input_gives_empty_curves():
    assert len(roc_curve([], [])) == 0 and len(pr_curve([], [])) == 0
    assert math.isnan(compute_auprc([], []))


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="y_true has 2 values but y_score has 3"):
        roc_curve([0, 1], [0.1, 0.2, 0.3])
