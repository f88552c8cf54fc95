"""The learning-curve benchmark's cuts and lines (``benchmarks/vitals_learning_curve.py``): only the fitting
stays shrink, by outcome, and the extrapolated line is the least-squares one in log2(stays)."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from cxr_model.settings import PROJECT_ROOT
from cxr_model.vitals.crossval import fold_indices

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
import vitals_learning_curve as LC  # noqa: E402  (benchmarks/ is not a package)


def _labels(n=400, deaths=56):
    y = np.zeros(n, int)
    y[np.random.default_rng(0).choice(n, deaths, replace=False)] = 1
    return y


def test_cutting_shrinks_each_fitting_set_by_outcome_and_keeps_every_held_out_fold_whole():
    y = _labels()
    folds = fold_indices(y, 5, 2012)
    cut = LC.cut_folds(folds, y, 0.25, 100)
    for (fit, held), (fit_cut, held_cut) in zip(folds, cut):
        np.testing.assert_array_equal(held, held_cut)
        assert set(fit_cut) <= set(fit) and len(fit_cut) == len(fit) // 4
        assert y[fit_cut].sum() == pytest.approx(y[fit].sum() / 4, abs=1)
    assert all(len(np.intersect1d(a[0], b[0])) < len(a[0]) for a, b in zip(cut, LC.cut_folds(folds, y, 0.25, 101)))
    assert LC.cut_folds(folds, y, 1.0, 100) is folds


def test_the_line_is_fitted_in_log2_of_the_stays_and_read_at_two_and_four_times_the_largest():
    slope, (x2, x4) = LC.projection([500, 1000, 2000], [0.40, 0.43, 0.46])
    assert slope == pytest.approx(0.03)
    assert (x2, x4) == (pytest.approx(0.49), pytest.approx(0.52))


def test_the_figures_are_auroc_at_24_and_48_h_and_event1_at_the_count_rule():
    y = np.array([1, 1, 0, 0, 0, 0])
    risk = np.zeros((6, 48))
    risk[:, 23] = [0.9, 0.1, 0.8, 0.2, 0.3, 0.0]
    risk[:, -1] = [0.9, 0.6, 0.8, 0.2, 0.3, 0.1]
    f = LC.figures(y, risk)
    assert f["auroc_24"] == pytest.approx(5 / 8)
    assert f["auroc_48"] == pytest.approx(7 / 8)
    assert f["event1_48"] == pytest.approx(0.5)  # top 2 called (0.9, 0.8): one death of two, one of two called
