"""The operating-threshold rule (Youden's J) against hand cases and scikit-learn's ROC curve."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from cxr_model.metrics.classification import youden_threshold


def test_separable_scores_give_the_lowest_positive_score():
    # J = 1 only at 0.6; every lower cut keeps sensitivity 1 but loses specificity, so a rule
    # that maximised sensitivity alone would answer 0.1 (or any score up to 0.6).
    y = [0, 0, 0, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.6, 0.7, 0.8]
    assert youden_threshold(y, s) == 0.6


def test_trades_sensitivity_for_specificity_when_j_says_so():
    # cut 0.2: sens 1, spec 0.25 (J 0.25); 0.5: sens 0.75, spec 1 (J 0.75); 0.9: sens 0.25, spec 1
    y = [0, 0, 0, 1, 1, 1, 0, 1]
    s = [0.2, 0.3, 0.4, 0.5, 0.6, 0.9, 0.45, 0.25]
    assert youden_threshold(y, s) == 0.5


def test_equal_j_is_broken_toward_the_higher_sensitivity():
    # cut 0.35: sens 1, spec 0.5 (J 0.5); cut 0.8: sens 0.5, spec 1 (J 0.5)
    assert youden_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.35


def test_inverted_scores_still_pick_the_best_cut_and_it_is_an_observed_score():
    # a score where positives are low: the best J is at the lowest cut (everyone positive), J = 0
    y = [1, 1, 0, 0]
    s = [0.1, 0.2, 0.3, 0.4]
    assert youden_threshold(y, s) == 0.1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_argmax_of_tpr_minus_fpr_on_sklearn_roc_curve(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 400)
    s = rng.normal(y * 1.2, 1.0)  # continuous: no ties, so the argmax is unique
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    assert youden_threshold(y, s) == pytest.approx(thr[np.argmax(tpr - fpr)])


@pytest.mark.parametrize("y,s", [([], []), ([1, 1], [0.3, 0.9]), ([0, 0, 0], [0.1, 0.2, 0.3])])
def test_one_class_or_empty_is_refused(y, s):
    with pytest.raises(ValueError, match="^Youden's J needs both classes$"):
        youden_threshold(y, s)
