"""Floors for the bundled chest X-ray model, and metrics.json checked against predictions.csv.

The bundle's own held-out test split (``splits.csv``, part ``test``: children and, for a
two-population bundle, adults never used for training, calibration or the threshold) and the 16
official Kaggle val films are scored through the ``evaluate`` pipeline (``run_evaluation``, the
default path: population estimated from the image). The floors sit a little below the figures
measured for the default bundle, cxr-pneumonia-resnet18-v2.6 2.6.0 (own child test, n = 782:
AUROC 0.995, sensitivity 0.962, specificity 0.970; own adult test, n = 113, 109 of them scored by
the 448 px adult branch: AUROC 0.772, accuracy 0.717, sensitivity 0.744, specificity 0.700; official
val, n = 16: AUROC 0.938, sensitivity 7/8, specificity 6/8, normal films at P 0.61 and 0.51), so a model
that is flipped, uncalibrated at its threshold, or fed the wrong preprocessing falls through them.
2.3.0 (the network's own 224 px head, which leans on film sharpness) had child test AUROC 0.989,
specificity 0.955 and official-val specificity 3/8: those 16 films come from another uploader and
their normal films are softer, which that head read as pneumonia; 2.4.0 (head refitted against
that) had 0.994, 0.980 and 7/8; 2.5.0 (also seen cropped) sensitivity 0.948. 2.1.0 (no adult branch) had adult AUROC 0.743.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from cxr_model.imaging.data import kermany_items
from cxr_model.imaging.evaluate import finalize_run, run_evaluation
from cxr_model.imaging.splits import split_items

pytestmark = pytest.mark.slow


def _score(bundle, items, out):
    run_evaluation(items, bundle, out, batch_size=64, workers=0, show_bar=False, finalize=False)
    finalize_run(out, bundle, report=False)
    return pd.read_csv(out / "predictions.csv"), json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def own_test(cxr_bundle, kermany_dir, tmp_path_factory):
    items = split_items(cxr_bundle, kermany_dir, "test")
    return _score(cxr_bundle, items, tmp_path_factory.mktemp("own-test"))


@pytest.fixture(scope="module")
def adult_test(cxr_bundle, kermany_dir, data_dir, tmp_path_factory):
    if "adult" not in cxr_bundle.meta.get("populations", []):
        pytest.skip(f"{cxr_bundle.model_id} is a children-only model")
    items = split_items(cxr_bundle, kermany_dir, "test", "adult", data_dir / "cxr" / "nih_adult")
    return _score(cxr_bundle, items, tmp_path_factory.mktemp("adult-test"))


@pytest.fixture(scope="module")
def official_val(cxr_bundle, kermany_dir, tmp_path_factory):
    return _score(cxr_bundle, kermany_items(kermany_dir, "val"), tmp_path_factory.mktemp("official-val"))


def test_floor_on_the_bundles_own_held_out_test_split(own_test):
    preds, m = own_test
    assert (m["n"], m["n_positive"], m["n_negative"], m["n_errors"]) == (782, 581, 201, 0)
    assert m["auroc"] >= 0.99
    assert m["sensitivity"] >= 0.945  # 2.5.0: 0.948, 2.6.0: 0.962
    assert m["specificity"] >= 0.96
    assert m["auroc_ci95"][0] >= 0.985


def test_floor_on_the_16_official_val_films(official_val):
    preds, m = official_val
    assert (m["n"], m["n_positive"], m["n_negative"], m["n_errors"]) == (16, 8, 8, 0)
    assert m["auroc"] >= 0.9
    assert m["sensitivity"] >= 7 / 8
    assert m["specificity"] >= 6 / 8  # 2.3.0: 3 / 8


def test_floor_on_the_bundles_own_held_out_adult_patients(adult_test):
    preds, m = adult_test
    assert (m["n"], m["n_positive"], m["n_negative"], m["n_errors"]) == (113, 43, 70, 0)
    assert m["auroc"] >= 0.75  # 2.1.0, without the adult branch: 0.743
    assert m["accuracy"] >= 0.68
    assert m["specificity"] >= 0.68  # the children's map would call most normal adults (specificity 0.26)
    assert m["sensitivity"] >= 0.65


def test_pneumonia_films_get_higher_probabilities_than_normal_films(official_val):
    preds, _ = official_val
    p_pneu = preds.loc[preds["label"] == 1, "probability"]
    p_norm = preds.loc[preds["label"] == 0, "probability"]
    assert p_pneu.median() > p_norm.median() + 0.3
    assert p_pneu.max() > 0.9 and p_norm.min() < 0.5


def test_bundle_metadata_reports_what_the_test_split_gives(own_test, cxr_bundle):
    _, m = own_test
    metrics = cxr_bundle.meta["metrics"]
    reported = metrics["test"] if "test" in metrics else metrics["child_test"]  # model 2: per population
    assert reported["n"] == m["n"]
    for k in ("auroc", "sensitivity", "specificity", "accuracy"):
        assert reported[k] == pytest.approx(m[k], abs=2e-3), k


@pytest.mark.parametrize("run", ["own_test", "official_val"])
def test_metrics_json_values_are_recomputed_from_predictions_csv(run, request, cxr_bundle):
    preds, m = request.getfixturevalue(run)
    y, p = preds["label"].to_numpy(), preds["probability"].to_numpy()
    called = (p >= cxr_bundle.threshold).astype(int)
    assert m["threshold"] == cxr_bundle.threshold and m["model"] == cxr_bundle.model_id
    assert np.array_equal(preds["predicted"].to_numpy(), called)
    assert m["n"] == len(preds) and m["n_positive"] == int(y.sum())
    assert m["auroc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-9)
    assert m["sensitivity"] == pytest.approx(skm.recall_score(y, called))
    assert m["specificity"] == pytest.approx(skm.recall_score(1 - y, 1 - called))
    assert m["ppv"] == pytest.approx(skm.precision_score(y, called))
    assert m["npv"] == pytest.approx(skm.precision_score(1 - y, 1 - called))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, called))
    assert m["f1"] == pytest.approx(skm.f1_score(y, called))
    assert m["auroc_ci95"][0] < m["auroc"] <= m["auroc_ci95"][1] or m["auroc"] == 1.0
