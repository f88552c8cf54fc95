"""Train the LSTM + GBT ensemble on train + validation with cross-validated choices, and write the bundle.

Stays and split come from the LSTM bundle's ``splits.csv`` (``strat-622-seed2012``); the held-out
test stays are never read here. Steps:
  1. summary features (:mod:`summary`) and LSTM inputs of every train and validation stay;
  2. ``folds``-fold cross-validation by stay (stratified by outcome) over train + validation: each
     fold's trees and LSTMs (same hyper-parameters as the LSTM bundle, up to ``max_epochs`` epochs)
     are fitted on the other stays and score the held-out stays at every hour (the LSTMs after every
     epoch) -> out-of-fold (OOF) log-odds of both halves (:func:`crossval.out_of_fold`); the LSTM's
     number of epochs is the one with the best mean OOF AUROC at 24 h and 48 h;
  3. on the OOF log-odds: per-hour Platt scaling of each half, the LSTM weight (highest mean OOF
     AUROC at 24 h and 48 h), per-hour Platt scaling of the mix, and the alert threshold (as many
     stays called as there are deaths, on the OOF 48 h risk: sensitivity = PPV);
  4. the bundled models: the folds' own models averaged, the LSTMs at the chosen epoch (``deploy="folds"``,
     2.2.0; chosen by ``benchmarks/vitals_deploy.py``), or trees and LSTMs refitted on all train +
     validation stays (``deploy="refit"``, 2.1.0).

``extra``: more labelled stays from elsewhere (e.g. the challenge's set C, ``vitals fetch --sets c``) join
train + validation in every step; none may be a stay of the split, and they are written to ``splits.csv``
as split ``extra`` (trained on, never tested on).
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from cxr_model.metrics.calibration import apply_platt, fit_platt
from cxr_model.metrics.classification import event1_count_threshold
from cxr_model.registry import save_bundle, sha256_file
from cxr_model.vitals.bundle import NORMALISER_FILE, load_vitals_bundle
from cxr_model.vitals.crossval import (
    BAG_MAX_FEATURES, GBT_PARAMS, TREE_HOURS, TreeBag, choose_epochs, choose_weight, fit_lstm, fit_trees, fold_indices, out_of_fold,
)
from cxr_model.vitals.ensemble import combine, logit
from cxr_model.vitals.ensemble_card import render_ensemble_card
from cxr_model.vitals.evaluate import metrics_for, score_grids
from cxr_model.vitals.grid import to_grid
from cxr_model.vitals.lstm import VitalsEnsemble, features
from cxr_model.vitals.normaliser import Normaliser
from cxr_model.vitals.reader import load_outcomes, read_dir
from cxr_model.vitals.splits import read_split
from cxr_model.vitals.summary import stack_features, summary_feature_names
from cxr_model.vitals.trees import Trees, export_trees

log = logging.getLogger(__name__)
DEPLOY = ("refit", "folds")
THRESHOLD_RULE = ("as many stays called as there are deaths (sensitivity = PPV, where event-1 = min(sensitivity, "
                  "PPV) peaks) on the cross-validated out-of-fold 48 h ensemble risk of train + validation")


def _platt_per_hour(y: np.ndarray, z: np.ndarray, how: str) -> dict:
    fits = [fit_platt(y, z[:, t]) for t in range(z.shape[1])]
    return {"a": [f["a"] for f in fits], "b": [f["b"] for f in fits], "method": how}


class _Fixed:
    """Stand-in bundle for scoring stays with precomputed (out-of-fold) components."""

    def __init__(self, comps):
        self._c, self.trees = comps, True

    def components(self, grids):
        return self._c


def calibrate_oof(y, oof_lstm, oof_gbt, folds: int) -> tuple[dict, dict, dict]:
    """LSTM calibration, ensemble components and OOF risks, all chosen on the OOF log-odds."""
    how = f"Platt scaling per hour on {folds}-fold out-of-fold log-odds, train + validation"
    lstm_cal = _platt_per_hour(y, oof_lstm, how)
    gbt_cal = _platt_per_hour(y, oof_gbt, how)
    lstm_risk = apply_platt(oof_lstm, lstm_cal)
    gbt_z = logit(apply_platt(oof_gbt, gbt_cal))
    w, scores = choose_weight(y, logit(lstm_risk), gbt_z)
    comp = {"weight_lstm": w, "weight_scores_oof": scores, "gbt_calibration": gbt_cal, "calibration": None}
    comp["calibration"] = _platt_per_hour(y, w * logit(lstm_risk) + (1 - w) * gbt_z, how + " (the weighted mix)")
    return lstm_cal, comp, combine(lstm_risk, oof_gbt, comp)


def dev_stays(records: str | Path, outcomes: dict, splits_csv: str | Path) -> tuple[list, np.ndarray, np.ndarray]:
    """The train + validation stays of ``splits_csv`` (never its test stays): ``(grids, in-hospital death
    [N], summary features [N, 48, F])``.

    Raises:
        ValueError: naming the folder, when any of those records cannot be read.
    """
    recs, errors = read_dir(records, read_split(splits_csv, "train") + read_split(splits_csv, "val"))
    if errors:
        raise ValueError(f"{records}: {len(errors)} train/validation records unreadable, e.g. {errors[0]}")
    grids = [to_grid(r) for r in recs]
    return grids, np.array([int(outcomes[g.record_id]["In-hospital_death"]) for g in grids]), stack_features(grids)


def extra_stays(records: str | Path, outcomes_file: str | Path, split_ids: set[int]) -> tuple[list, np.ndarray, dict]:
    """Every record in ``records`` with its outcome from ``outcomes_file``: ``(grids, in-hospital death, outcomes)``.

    Raises:
        ValueError: naming the folder or file, when a record is unreadable or has no outcome, when the folder
            holds none, or when a stay is one of the split's (``split_ids``): a test stay must never be
            trained on, and a train or validation stay would count twice.
    """
    outcomes = load_outcomes(outcomes_file)
    recs, errors = read_dir(records)
    if errors:
        raise ValueError(f"{records}: {len(errors)} extra records unreadable, e.g. {errors[0]}")
    if not recs:
        raise ValueError(f"{records}: no *.txt records to add")
    missing = [r.record_id for r in recs if r.record_id not in outcomes]
    if missing:
        raise ValueError(f"{outcomes_file}: no outcome for {len(missing)} extra records, e.g. RecordID {missing[0]}")
    shared = sorted(r.record_id for r in recs if r.record_id in split_ids)
    if shared:
        raise ValueError(f"{records}: {len(shared)} extra records are stays of the bundle's split (e.g. RecordID "
                         f"{shared[0]}); a test stay is never trained on and a train or validation one would count twice")
    grids = [to_grid(r) for r in recs]
    return grids, np.array([int(outcomes[g.record_id]["In-hospital_death"]) for g in grids]), outcomes


def deployed_models(deploy: str, kept: list | None, norm: Normaliser, grids: list, x_sum: np.ndarray, y: np.ndarray,
                    hp: dict, lstm_epochs: int, lstm_members: int, seed: int, tree_bags: int = 1) -> tuple[TreeBag, VitalsEnsemble]:
    """The trees and LSTMs to bundle: refitted on all the stays (``"refit"``), or the fold models that
    :func:`crossval.out_of_fold` kept, averaged, its LSTMs at epoch ``lstm_epochs`` (``"folds"``)."""
    if deploy == "folds":
        model = VitalsEnsemble(norm.n_features, hp["hidden"], hp["layers"], hp["dropout"], len(kept) * lstm_members).eval()
        for member, states in zip(model.members, (st for fold in kept for st in fold["lstm_states"])):
            member.load_state_dict(states[lstm_epochs - 1])
        return TreeBag(m for fold in kept for m in fold["trees"].models), model
    model, _ = fit_lstm(features(norm, grids), torch.tensor(y, dtype=torch.float32), hp, lstm_epochs, lstm_members, seed)
    return fit_trees(x_sum, y, seed, tree_bags), model


def train_ensemble(records: str, outcomes_file: str, lstm_dir: str, out: str, folds: int = 5, seed: int = 2012,
                   max_epochs: int = 16, lstm_members: int = 4, version: str = "2.2.0",
                   tree_bags: int = 1, deploy: str = "folds", extra: tuple[str, str] | None = None) -> dict:
    """Fit, calibrate and bundle the ensemble; returns the metadata written (see module docstring).

    ``deploy``: ``"refit"`` bundles trees and LSTMs refitted on all train + validation stays; ``"folds"``
    bundles the cross-validation's own fold models (each fitted on the other folds; the LSTMs at the
    chosen epoch), averaged, so the bundled risk is on the scale its out-of-fold calibration and
    threshold were fitted on. The fold models then share one normaliser, fitted on all the stays.
    """
    if deploy not in DEPLOY:
        raise ValueError(f"deploy must be one of {DEPLOY}, not {deploy!r}")
    t0 = time.time()
    lstm_meta = json.loads((Path(lstm_dir) / "metadata.json").read_text())
    hp = dict(lstm_meta["hyperparameters"])
    outcomes = load_outcomes(outcomes_file)
    splits_csv = Path(lstm_dir) / "splits.csv"
    grids, y, x_sum = dev_stays(records, outcomes, splits_csv)
    n_dev = len(grids)
    if extra:
        split_ids = {int(line.split(",")[0]) for line in splits_csv.read_text().splitlines()[1:] if line.strip()}
        more, y_more, extra_outcomes = extra_stays(extra[0], extra[1], split_ids)
        grids, y = grids + more, np.concatenate([y, y_more])
        x_sum = np.concatenate([x_sum, stack_features(more)])
        outcomes = {**extra_outcomes, **outcomes}
    folds_idx = fold_indices(y, folds, seed)
    norm = Normaliser.fit(grids)
    kept = [] if deploy == "folds" else None
    oof_by_epoch, oof_gbt = out_of_fold(grids, x_sum, y, folds_idx, hp, max_epochs, lstm_members, seed, tree_bags,
                                        norm if deploy == "folds" else None, kept)
    lstm_epochs, epoch_scores = choose_epochs(y, oof_by_epoch)
    oof_lstm = oof_by_epoch[lstm_epochs - 1]
    log.info("out-of-fold done at %.0fs; LSTM epochs %d", time.time() - t0, lstm_epochs)
    lstm_cal, comp, oof_risk = calibrate_oof(y, oof_lstm, oof_gbt, folds)
    thresholds = {k: event1_count_threshold(y, r[:, -1]) for k, r in oof_risk.items()}

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    final, model = deployed_models(deploy, kept, norm, grids, x_sum, y, hp, lstm_epochs, lstm_members, seed, tree_bags)
    export_trees(final, out_dir / "trees.npz")
    if not np.allclose(Trees.load(out_dir / "trees.npz").decision_function(x_sum[:50, -1]), final.decision_function(x_sum[:50, -1])):
        raise RuntimeError("exported trees disagree with the fitted model")
    log.info("final models done at %.0fs", time.time() - t0)

    n_lstms = folds * lstm_members if deploy == "folds" else lstm_members
    hp.update(members=n_lstms, epochs=lstm_epochs, epochs_max=max_epochs, seed=seed, early_stopping=None,
              epochs_oof_auroc=epoch_scores)
    for k in ("best_epochs", "patience"):
        hp.pop(k, None)
    meta = {k: v for k, v in lstm_meta.items() if k not in ("history", "validation", "train_seconds")}
    meta["training_data"] = dict(lstm_meta["training_data"], trained_on="train + validation" if deploy == "refit" else
                                 f"train + validation: the {folds} cross-validation fold models, each on {folds - 1}/{folds}")
    if extra:
        meta["training_data"]["extra"] = {"records": Path(extra[0]).name, "outcomes": Path(extra[1]).name,
                                          "n": len(grids) - n_dev, "n_positive": int(y[n_dev:].sum())}
    meta.update({
        "name": "vitals-ensemble", "version": version, "architecture": "VitalsEnsemble+GBT",
        "hyperparameters": hp, "calibration": lstm_cal,
        "components": dict(comp, trees="trees.npz", trees_sha256=sha256_file(out_dir / "trees.npz"),
                           gbt_params=dict(GBT_PARAMS, training_hours=TREE_HOURS, folds=folds, seed=seed, bags=tree_bags,
                                          **({"max_features": BAG_MAX_FEATURES} if tree_bags > 1 else {})),
                           features=summary_feature_names(),
                           lstm=(f"{lstm_members} LSTMs with the hyper-parameters of {lstm_meta['name']}@{lstm_meta['version']}, "
                                 f"retrained on train + validation for {lstm_epochs} epochs") if deploy == "refit" else
                                (f"{n_lstms} LSTMs with the hyper-parameters of {lstm_meta['name']}@{lstm_meta['version']}: "
                                 f"the {lstm_members} of each of the {folds} fold models, at epoch {lstm_epochs}"),
                           deploy=deploy,
                           thresholds_val=thresholds),
        "threshold": {"value": thresholds["ensemble"], "split": "train+val (out-of-fold)", "rule": THRESHOLD_RULE},
        "validation_kind": f"{folds}-fold cross-validated out-of-fold predictions over train + validation",
    })
    norm.to_json(out_dir / NORMALISER_FILE)
    (out_dir / "splits.csv").write_text(splits_csv.read_text().rstrip("\n") + "\n"
                                        + "".join(f"{g.record_id},extra\n" for g in grids[n_dev:]))
    scored = score_grids(_Fixed(oof_risk), grids, outcomes)
    val = metrics_for(scored, meta, n_boot=200)
    meta["validation"] = {k: {kk: vv for kk, vv in v.items() if not kk.endswith("_ci95")} for k, v in val.items() if "auroc" in v}
    meta["train_seconds"] = round(time.time() - t0, 1)
    save_bundle(out_dir, model.state_dict(), meta, card=render_ensemble_card)
    load_vitals_bundle(out_dir)  # checks both hashes and loads the trees back
    return meta
