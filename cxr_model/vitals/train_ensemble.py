"""Train the GBT half of the ensemble on train + validation, calibrate, and write the bundle.

Stays and split come from the LSTM bundle's ``splits.csv`` (``strat-622-seed2012``); the held-out
test stays are never read here. Steps:
  1. summary features (:mod:`summary`) of every train and validation stay at every hour;
  2. ``folds``-fold cross-validation by stay (stratified by outcome) over train + validation:
     each fold's trees are fitted on rows at ``HOURS`` of the other stays and predict every hour of
     the held-out stays -> out-of-fold log-odds; per-hour Platt scaling is fitted on them;
  3. the final trees are fitted on all train + validation rows;
  4. the ensemble (fixed weight, chosen before looking at any score) is Platt-scaled per hour on
     validation, where the LSTM was early-stopped and calibrated, and the alert threshold maximises
     event-1 of the 48 h risk on validation.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from cxr_model.files import write_json
from cxr_model.metrics.calibration import fit_platt
from cxr_model.metrics.classification import event1_threshold
from cxr_model.registry import sha256_file
from cxr_model.vitals.bundle import load_vitals_bundle
from cxr_model.vitals.ensemble import combine, logit
from cxr_model.vitals.ensemble_card import render_ensemble_card
from cxr_model.vitals.evaluate import metrics_for, score_grids
from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.reader import N_HOURS, load_outcomes, read_dir
from cxr_model.vitals.splits import read_split
from cxr_model.vitals.summary import stack_features, summary_feature_names
from cxr_model.vitals.trees import Trees, export_trees

log = logging.getLogger(__name__)
HOURS = [6, 12, 24, 36, 48]
GBT_PARAMS = {"learning_rate": 0.03, "max_iter": 300, "max_leaf_nodes": 8, "min_samples_leaf": 80,
              "l2_regularization": 1.0, "early_stopping": False}
WEIGHT_LSTM = 0.5


def _fit(x: np.ndarray, y: np.ndarray, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier  # training only; inference needs numpy

    rows = x[:, [h - 1 for h in HOURS]].reshape(-1, x.shape[2])
    return HistGradientBoostingClassifier(random_state=seed, **GBT_PARAMS).fit(rows, np.repeat(y, len(HOURS)))


def _hourly(model, x: np.ndarray) -> np.ndarray:
    n, h, f = x.shape
    return model.decision_function(x.reshape(n * h, f)).reshape(n, h)


def _platt_per_hour(y: np.ndarray, z: np.ndarray, how: str) -> dict:
    fits = [fit_platt(y, z[:, t]) for t in range(z.shape[1])]
    return {"a": [f["a"] for f in fits], "b": [f["b"] for f in fits], "method": how}


class _Fixed:
    """Stand-in bundle for scoring validation stays with precomputed (out-of-fold) components."""

    def __init__(self, lstm_risk, gbt_raw, comp):
        self._c, self.trees = combine(lstm_risk, gbt_raw, comp), True

    def components(self, grids):
        return self._c


def train_ensemble(records: str, outcomes_file: str, lstm_dir: str, out: str, folds: int = 5, seed: int = 2012) -> dict:
    """Fit, calibrate and bundle the ensemble; returns the metadata written (see module docstring)."""
    from sklearn.model_selection import StratifiedKFold

    t0 = time.time()
    lstm = load_vitals_bundle(lstm_dir)
    outcomes = load_outcomes(outcomes_file)
    split = {s: read_split(Path(lstm_dir) / "splits.csv", s) for s in ("train", "val")}
    ids = split["train"] + split["val"]
    recs, errors = read_dir(records, ids)
    if errors:
        raise ValueError(f"{records}: {len(errors)} train/validation records unreadable, e.g. {errors[0]}")
    grids = [to_grid(r) for r in recs]
    y = np.array([int(outcomes[g.record_id]["In-hospital_death"]) for g in grids])
    is_val = np.isin([g.record_id for g in grids], split["val"])
    x = stack_features(grids)
    log.info("features %s in %.0fs", x.shape, time.time() - t0)

    oof = np.zeros((len(grids), N_HOURS))
    for k, (fit_idx, held) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y)):
        oof[held] = _hourly(_fit(x[fit_idx], y[fit_idx], seed + k), x[held])
        log.info("fold %d done at %.0fs", k + 1, time.time() - t0)
    gbt_cal = _platt_per_hour(y, oof, f"Platt scaling per hour on {folds}-fold out-of-fold log-odds, train + validation")
    final = _fit(x, y, seed)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    export_trees(final, out_dir / "trees.npz")
    if not np.allclose(Trees.load(out_dir / "trees.npz").decision_function(x[:50, -1]), final.decision_function(x[:50, -1])):
        raise RuntimeError("exported trees disagree with the fitted model")

    lstm_risk = lstm.risk(grids)
    comp = {"weight_lstm": WEIGHT_LSTM, "gbt_calibration": gbt_cal, "calibration": None}
    z_val = WEIGHT_LSTM * logit(lstm_risk[is_val]) + (1 - WEIGHT_LSTM) * logit(combine(lstm_risk, oof, comp)["gbt"][is_val])
    comp["calibration"] = _platt_per_hour(y[is_val], z_val, "Platt scaling per hour on validation (out-of-fold trees)")
    risks = combine(lstm_risk[is_val], oof[is_val], comp)
    thresholds = {k: event1_threshold(y[is_val], r[:, -1]) for k, r in risks.items()}

    meta = json.loads((Path(lstm_dir) / "metadata.json").read_text())
    meta.update({
        "name": "vitals-ensemble", "version": "1.0.0", "architecture": "VitalsEnsemble+GBT",
        "components": dict(comp, trees="trees.npz", trees_sha256=sha256_file(out_dir / "trees.npz"),
                           gbt_params=dict(GBT_PARAMS, training_hours=HOURS, folds=folds, seed=seed),
                           features=summary_feature_names(), lstm=f"{lstm.model_id} (weights copied as model.pt)",
                           thresholds_val=thresholds),
        "threshold": {"value": thresholds["ensemble"], "split": "val",
                      "rule": "maximise event-1 = min(sensitivity, PPV) of the 48 h ensemble risk on the validation split"},
        "train_seconds_gbt": round(time.time() - t0, 1),
    })
    for name in ("model.pt", "normaliser.json", "splits.csv"):
        shutil.copyfile(Path(lstm_dir) / name, out_dir / name)
    meta.pop("history", None)
    write_json(out_dir / "metadata.json", meta)
    load_vitals_bundle(out_dir)  # checks both hashes and loads the trees back
    # Validation figures use the out-of-fold trees: the final trees have seen the validation stays.
    val_grids = [g for g, v in zip(grids, is_val) if v]
    scored = score_grids(_Fixed(lstm_risk[is_val], oof[is_val], comp), val_grids, outcomes)
    val = metrics_for(scored, meta, n_boot=200)
    meta["validation"] = {k: {kk: vv for kk, vv in v.items() if kk != "auroc_ci95"} for k, v in val.items() if "auroc" in v}
    write_json(out_dir / "metadata.json", meta)
    (out_dir / "MODEL_CARD.md").write_text(render_ensemble_card(meta))  # re-rendered with the test run later
    return meta
