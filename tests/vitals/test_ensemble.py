"""The bundled LSTM + GBT ensemble: trees loaded without pickle and hash-checked, risk = the stated formula."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from cxr_model.registry import BundleError
from cxr_model.settings import get_settings
from cxr_model.vitals.bundle import load_vitals_bundle
from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.reader import N_HOURS, read_dir, read_record
from cxr_model.vitals.summary import stack_features

ENSEMBLE = get_settings().models_dir / "vitals-ensemble"


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def test_ensemble_risk_is_the_documented_combination(physionet_dir):
    bundle = load_vitals_bundle(ENSEMBLE)
    assert bundle.trees is not None and (ENSEMBLE / "trees.npz").stat().st_size < 3_000_000
    records, errors = read_dir(physionet_dir / "set-a", [132539, 132540, 132541])
    assert not errors
    grids = [to_grid(r) for r in records]
    c = bundle.meta["components"]
    x = stack_features(grids, n_features=len(c["features"]))  # the columns the bundle was trained on
    raw = bundle.trees.decision_function(x.reshape(-1, len(c["features"]))).reshape(3, N_HOURS)
    g = _sigmoid(np.asarray(c["gbt_calibration"]["a"]) * raw + np.asarray(c["gbt_calibration"]["b"]))
    lstm = bundle.components(grids)["lstm"]
    w = c["weight_lstm"]
    z = w * _logit(lstm) + (1 - w) * _logit(g)
    expected = _sigmoid(np.asarray(c["calibration"]["a"]) * z + np.asarray(c["calibration"]["b"]))
    assert np.allclose(bundle.risk(grids), expected, atol=1e-9)
    assert ((bundle.risk(grids) >= 0) & (bundle.risk(grids) <= 1)).all()


def test_tree_logits_in_blocks_of_stays_equal_one_walk_over_the_whole_ward(physionet_dir):
    from cxr_model.vitals.ensemble import BLOCK_STAYS, gbt_logits

    trees = load_vitals_bundle(ENSEMBLE).trees
    paths = sorted(p for p in (physionet_dir / "set-a").glob("*.txt") if not p.name.lower().startswith("outcomes"))
    grids = [to_grid(read_record(p)) for p in paths[:2 * BLOCK_STAYS + 7]]  # two full blocks and a short one
    whole = trees.decision_function(stack_features(grids, n_features=trees.n_features).reshape(len(grids) * N_HOURS, -1)).reshape(len(grids), N_HOURS)
    assert np.allclose(gbt_logits(trees, grids), whole, rtol=0, atol=1e-12) and whole.std() > 0.1
    assert gbt_logits(trees, []).shape == (0, N_HOURS)


def test_altered_trees_are_refused_naming_the_file(tmp_path):
    d = tmp_path / "b"
    shutil.copytree(ENSEMBLE, d, ignore=shutil.ignore_patterns("test_evaluation"))
    with open(d / "trees.npz", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(BundleError, match="trees.npz: sha256"):
        load_vitals_bundle(d)
    (d / "trees.npz").unlink()
    with pytest.raises(BundleError, match="trees.npz"):
        load_vitals_bundle(d)


@pytest.mark.parametrize("tree_bags, deploy", [(2, "refit"), (1, "folds")])
def test_a_tiny_ensemble_trains_on_train_and_validation_only(physionet_dir, tmp_path, monkeypatch, tree_bags, deploy):
    import torch

    from cxr_model.vitals import train_ensemble as te
    from cxr_model.vitals.splits import read_split
    from cxr_model.vitals.train import VitalsTrainConfig, train

    torch.set_num_threads(1)
    lstm = tmp_path / "lstm"
    train(VitalsTrainConfig(records=str(physionet_dir / "set-a"), outcomes=str(physionet_dir / "Outcomes-a.txt"),
                            out=str(lstm), max_records=150, epochs=1, hidden=8, members=1))
    read = []
    real_read_dir = te.read_dir
    monkeypatch.setattr(te, "read_dir", lambda d, ids=None: read.extend(ids) or real_read_dir(d, ids))
    meta = te.train_ensemble(str(physionet_dir / "set-a"), str(physionet_dir / "Outcomes-a.txt"), str(lstm),
                             str(tmp_path / "ens"), folds=2, max_epochs=2, lstm_members=1, tree_bags=tree_bags,
                             deploy=deploy)
    test_ids = set(read_split(lstm / "splits.csv", "test"))
    assert read and not (set(read) & test_ids)  # the held-out stays are never read
    bundle = load_vitals_bundle(tmp_path / "ens")
    assert bundle.trees is not None and "out-of-fold" in meta["threshold"]["split"]
    td = meta["training_data"]
    assert meta["validation"]["ensemble_48h"]["n"] == td["n_train"] + td["n_val"]  # every choice on OOF stays
    for cal in (meta["calibration"], meta["components"]["gbt_calibration"], meta["components"]["calibration"]):
        assert len(cal["a"]) == N_HOURS and "out-of-fold" in cal["method"]
    assert meta["components"]["weight_lstm"] in meta["components"]["weight_scores_oof"]
    hp = meta["hyperparameters"]
    assert hp["epochs"] in (1, 2) and hp["epochs_oof_auroc"][hp["epochs"] - 1] == max(hp["epochs_oof_auroc"])
    card = (tmp_path / "ens" / "MODEL_CARD.md").read_text()
    assert "Decision support, not a diagnosis" in card
    gp = meta["components"]["gbt_params"]
    assert meta["components"]["deploy"] == deploy
    if deploy == "refit":  # two bagged tree models, written as one set of trees; one LSTM refitted on all stays
        assert gp["bags"] == 2 and len(bundle.trees.roots) == 2 * gp["max_iter"] and "2 such models" in card
        assert bundle.meta["hyperparameters"]["members"] == 1 and "--deploy" not in card
    else:  # each fold's trees and LSTM, averaged
        assert gp["bags"] == 1 and len(bundle.trees.roots) == 2 * gp["max_iter"]
        assert bundle.meta["hyperparameters"]["members"] == 2 and "--lstm-members 1 --deploy folds" in card
        first, second = (m.lstm.weight_ih_l0 for m in bundle.model.members)
        assert not torch.equal(first, second) and "fold models" in meta["training_data"]["trained_on"]


def test_trees_trained_on_other_summary_features_are_refused(tmp_path):
    import json

    d = tmp_path / "b"
    shutil.copytree(ENSEMBLE, d, ignore=shutil.ignore_patterns("test_evaluation"))
    meta = json.loads((d / "metadata.json").read_text())
    names = meta["components"]["features"]
    meta["components"]["features"] = names[1:] + names[:1]  # same count, another order
    (d / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="trees.npz: the trees' .* features are not this version's summary features"):
        load_vitals_bundle(d)


def test_dev_stays_reads_train_and_validation_only_and_names_the_folder_of_an_unreadable_record(tmp_path):
    from tests.vitals.conftest import write_record
    from cxr_model.vitals.train_ensemble import dev_stays

    for rid in (1, 2, 3):
        write_record(tmp_path, rid, [("01:00", "HR", 80 + rid), ("02:30", "SysABP", 110)])
    splits = tmp_path / "splits.csv"
    splits.write_text("record_id,split\n1,train\n2,val\n3,test\n")
    outcomes = {1: {"In-hospital_death": 1}, 2: {"In-hospital_death": 0}, 3: {"In-hospital_death": 1}}
    grids, y, x = dev_stays(str(tmp_path), outcomes, str(splits))  # plain strings, as a script passes them
    assert sorted(g.record_id for g in grids) == [1, 2]  # the test stay is never read
    assert dict(zip((g.record_id for g in grids), y.tolist())) == {1: 1, 2: 0}
    assert x.shape[:2] == (2, N_HOURS)
    (tmp_path / "2.txt").write_text("not,a record\n")
    with pytest.raises(ValueError, match=f"{tmp_path}.*unreadable"):
        dev_stays(tmp_path, outcomes, splits)


def test_logit_clips_certain_risks_to_finite_log_odds():
    from cxr_model.vitals.ensemble import EPS, logit

    z = logit(np.array([0.0, 1.0, 0.5, 0.25], dtype=np.float32))
    assert z.dtype == np.float64 and np.isfinite(z).all()
    np.testing.assert_allclose(z, [np.log(EPS / (1 - EPS)), np.log((1 - EPS) / EPS), 0.0, np.log(1 / 3)], rtol=1e-10)


def test_combine_gives_each_component_calibrated_and_the_mix():
    from cxr_model.metrics.calibration import apply_platt
    from cxr_model.vitals.ensemble import combine

    rng = np.random.default_rng(3)
    lstm, raw = rng.uniform(0.01, 0.9, size=(4, N_HOURS)), rng.normal(size=(4, N_HOURS))
    comp = {"weight_lstm": 0.3, "gbt_calibration": {"a": [0.8] * N_HOURS, "b": [-1.0] * N_HOURS},
            "calibration": {"a": [1.1] * N_HOURS, "b": [0.2] * N_HOURS}}
    out = combine(lstm.astype(np.float32), raw, comp)
    assert set(out) == {"lstm", "gbt", "ensemble"} and out["lstm"].dtype == np.float64
    np.testing.assert_allclose(out["gbt"], _sigmoid(0.8 * raw - 1.0), rtol=1e-12)
    z = 0.3 * _logit(lstm.astype(np.float32).astype(np.float64)) + 0.7 * _logit(out["gbt"])
    np.testing.assert_allclose(out["ensemble"], apply_platt(z, comp["calibration"]), rtol=1e-12)


def test_trees_trained_without_the_trend_block_are_given_the_base_columns(physionet_dir, tmp_path):
    from sklearn.ensemble import HistGradientBoostingClassifier

    from cxr_model.vitals.ensemble import gbt_logits
    from cxr_model.vitals.summary import base_feature_count
    from cxr_model.vitals.trees import Trees, export_trees

    records, errors = read_dir(physionet_dir / "set-a", [132539, 132540, 132541, 132543])
    assert not errors
    grids = [to_grid(r) for r in records]
    x = stack_features(grids, n_features=base_feature_count()).reshape(-1, base_feature_count())
    y = (np.arange(len(x)) % 3 == 0).astype(int)
    fit_x = np.where(np.isnan(x).all(axis=0), np.float32(0), x)  # sklearn cannot bin a column without a value
    model = HistGradientBoostingClassifier(max_iter=5, max_leaf_nodes=4, min_samples_leaf=5, random_state=0).fit(fit_x, y)
    export_trees(model, tmp_path / "trees.npz")
    trees = Trees.load(tmp_path / "trees.npz")
    assert trees.n_features == base_feature_count()
    np.testing.assert_allclose(gbt_logits(trees, grids), model.decision_function(x).reshape(4, N_HOURS), atol=1e-9)
