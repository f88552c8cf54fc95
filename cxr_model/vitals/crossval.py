"""Cross-validated out-of-fold (OOF) predictions of both halves of the ensemble, and the choices made on them.

Every choice of the ensemble (calibration, the LSTM weight, the alert threshold) is made on OOF
predictions of the train + validation stays: each stay is scored by models that never saw it, so
the choices rest on 3,200 stays instead of the 800 validation stays, and the final models can be
fitted on all of them. The held-out test stays are never passed in here.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from cxr_model.metrics.classification import compute_auroc
from cxr_model.vitals.lstm import VitalsEnsemble, VitalsLSTM, features
from cxr_model.vitals.normaliser import Normaliser
from cxr_model.vitals.train import _loss as lstm_loss  # the LSTM's own loss: every hour + the 48 h one

log = logging.getLogger(__name__)
TREE_HOURS = [6, 12, 24, 36, 48]  # the tree rows: one per stay at each of these hours
# Chosen on 5-fold OOF over train + validation (n = 3200, seed 2012; scratch study of issue 12), mean of
# the 24 h and 48 h AUROC: 0.838 (0.827, 0.849) with the trend features, against 0.836 for the same features
# under the 2.0.0 setting (learning rate 0.03, 8 leaves, L2 1) and 0.831 for 2.0.0 as bundled (0.819, 0.842).
# Training also on the rows of hours 18, 30 and 42 gave 0.837; 600 trees at 0.03, 0.836.
# Rows from later hours only (same folds, each fold's LSTMs beside the trees, per-hour Platt, weight by
# the 24 h + 48 h mean; scratch study, 2026-11-30): hours 24-48 every 6 h gave the ensemble 24 h 0.840 and
# 48 h 0.866 against 0.836 and 0.863 (paired, 1,000 resamples: +0.003 [-0.002, +0.009] and +0.003
# [-0.001, +0.008]) but hour 6 0.758 against 0.792; hours 12-48 and 18-48 moved 48 h by +0.001 and -0.001,
# and 48 h event-1 stayed 0.49-0.51: within the trees' own seed-to-seed spread, so the rows are unchanged.
# The medical ICU (ICUType 3) is where the ensemble ranks worst on the held-out test split (48 h AUROC 0.791,
# n = 281, against 0.879 pooled). Trees only, same folds (scratch study, 2026-12-01; 1,200 medical-ICU stays of
# 3,200, 223 deaths): OOF 48 h AUROC medical ICU 0.807 (pooled 0.849), so the gap is not a test-split fluke;
# trees fitted on the medical ICU alone ranked it worse (-0.020 [-0.039, -0.000], paired, 1,000 resamples) and
# medical-ICU rows weighted x2 no better (-0.007 [-0.016, +0.003]); pooled event-1 fell (0.470 -> 0.460, 0.454).
GBT_PARAMS = {"learning_rate": 0.05, "max_iter": 300, "max_leaf_nodes": 16, "min_samples_leaf": 80,
              "l2_regularization": 5.0, "early_stopping": False}
#: With ``bags`` > 1 (``train-ensemble --tree-bags``): each bagged model's splits choose among this share of
#: the features (sklearn's ``max_features``), so differently seeded models differ. Measured and not bundled:
#: 5 bags raised the trees' own OOF AUROC (48 h 0.849 -> 0.853) but not the ensemble's (0.863 -> 0.863).
BAG_MAX_FEATURES = 0.3
WEIGHT_GRID = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))


def fold_indices(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified ``folds``-fold split of stays: ``[(fit_idx, held_idx), ...]``."""
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


class TreeBag:
    """Tree models whose log-odds are averaged (:func:`trees.export_trees` writes them as one set of trees)."""

    def __init__(self, models: list):
        self.models = list(models)

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        return np.mean([m.decision_function(x) for m in self.models], axis=0)


def fit_trees(x: np.ndarray, y: np.ndarray, seed: int, bags: int = 1) -> TreeBag:
    """``bags`` HistGradientBoosting models (seeds ``seed``, ``seed + 1000``, ...; with more than one, each
    split chooses among :data:`BAG_MAX_FEATURES` of the features) on the rows of ``x [N, 48, F]`` at
    :data:`TREE_HOURS`.

    ``y``: ``[N]`` one label per stay (repeated on each of its rows), or ``[N, len(TREE_HOURS)]`` one per
    row (a target that depends on the hour, e.g. death within D days of it).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier  # training only; inference needs numpy

    rows = x[:, [h - 1 for h in TREE_HOURS]].reshape(-1, x.shape[2])
    empty = np.isnan(rows).all(axis=0)
    if empty.any():  # sklearn's binning fails on a column without any value; a constant one is never split on
        rows = np.where(empty, np.float32(0), rows)
    labels = np.repeat(y, len(TREE_HOURS)) if np.ndim(y) == 1 else np.asarray(y).reshape(-1)
    params = dict(GBT_PARAMS, max_features=BAG_MAX_FEATURES) if bags > 1 else GBT_PARAMS
    return TreeBag(HistGradientBoostingClassifier(random_state=seed + 1000 * b, **params).fit(rows, labels)
                   for b in range(bags))


def tree_logits(model, x: np.ndarray) -> np.ndarray:
    """Raw log-odds at every hour: ``[N, 48]`` float64."""
    n, h, f = x.shape
    return model.decision_function(x.reshape(n * h, f)).reshape(n, h)


def fit_lstm(x: torch.Tensor, y: torch.Tensor, hp: dict, epochs: int, members: int, seed: int,
             x_held: torch.Tensor | None = None, snapshots: list | None = None) -> tuple[VitalsEnsemble, np.ndarray | None]:
    """``members`` LSTMs trained for a fixed number of ``epochs`` (no early stopping).

    Args:
        x: ``[N, 48, F]`` float32 features; y: ``[N]`` float32 outcomes.
        hp: the LSTM hyper-parameters (``hidden``, ``layers``, ``dropout``, ``lr``, ``weight_decay``,
            ``batch_size``) of the LSTM bundle.
        x_held: stays to score after every epoch (the held-out fold), or ``None``.
        snapshots: where given, one list per member of its weights after each epoch is appended to it.

    Returns:
        the model, and the members' mean logits on ``x_held`` after each epoch ``[epochs, M, 48]``.
    """
    model = VitalsEnsemble(x.shape[2], hp["hidden"], hp["layers"], hp["dropout"], members)
    held = None if x_held is None else np.zeros((epochs, len(x_held), x.shape[1]))
    for k, member in enumerate(model.members):
        torch.manual_seed(seed + k)
        states = None if snapshots is None else []
        _train_member(member, x, y, hp, epochs, lstm_loss, x_held, held, 1.0 / members, states)
        if snapshots is not None:
            snapshots.append(states)
    return model.eval(), held


def _train_member(member: VitalsLSTM, x, y, hp: dict, epochs: int, loss_fn, x_held, held, share, states=None) -> None:
    opt = torch.optim.Adam(member.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    for epoch in range(epochs):
        member.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(perm), hp["batch_size"]):
            b = perm[i:i + hp["batch_size"]]
            opt.zero_grad()
            loss_fn(member(x[b]), y[b]).backward()
            torch.nn.utils.clip_grad_norm_(member.parameters(), 1.0)
            opt.step()
        member.eval()
        if held is not None:
            held[epoch] += share * lstm_logits(member, x_held)
        if states is not None:
            states.append({k: v.detach().clone() for k, v in member.state_dict().items()})


def lstm_logits(model, x: torch.Tensor, batch: int = 512) -> np.ndarray:
    with torch.inference_mode():
        return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)]).double().numpy()


def crossval_logits(model, norm: Normaliser, grids: list, trees, x_sum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw log-odds ``(lstm, trees)``, each ``[N, 48]``, of fitted models on stays (before any calibration)."""
    return lstm_logits(model, features(norm, grids)), tree_logits(trees, x_sum)


def out_of_fold(grids: list, x_sum: np.ndarray, y: np.ndarray, folds: list, hp: dict, epochs: int,
                members: int, seed: int, tree_bags: int = 1, normaliser: Normaliser | None = None,
                keep: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """OOF raw log-odds ``(lstm [epochs, N, 48] after each epoch, trees [N, 48])``: each fold's models
    score its held-out stays.

    The LSTM's normaliser is refitted on each fold's fitting stays, as the final one is on all of them,
    unless one ``normaliser`` is given for every fold (fold models that are deployed together share it).
    ``keep``: where given, each fold's ``{"trees": TreeBag, "lstm_states": [member][epoch] weights}`` is
    appended to it.
    """
    oof_lstm, oof_gbt = np.zeros((epochs, len(y), x_sum.shape[1])), np.zeros((len(y), x_sum.shape[1]))
    for k, (fit_idx, held) in enumerate(folds):
        trees = fit_trees(x_sum[fit_idx], y[fit_idx], seed + k, tree_bags)
        oof_gbt[held] = tree_logits(trees, x_sum[held])
        norm = normaliser or Normaliser.fit([grids[i] for i in fit_idx])
        x_fit = features(norm, [grids[i] for i in fit_idx])
        states = None if keep is None else []
        _, oof_lstm[:, held] = fit_lstm(x_fit, torch.tensor(y[fit_idx], dtype=torch.float32), hp, epochs, members,
                                        seed + 100 * k, features(norm, [grids[i] for i in held]), states)
        if keep is not None:
            keep.append({"trees": trees, "lstm_states": states})
        log.info("fold %d: OOF AUROC 48 h trees %.3f, LSTM %.3f (last epoch)", k + 1,
                 compute_auroc(y[held], oof_gbt[held, -1]), compute_auroc(y[held], oof_lstm[-1, held, -1]))
    return oof_lstm, oof_gbt


def choose_epochs(y: np.ndarray, oof_by_epoch: np.ndarray, hours: tuple[int, ...] = (24, 48)) -> tuple[int, list[float]]:
    """Epochs (1-based) with the highest mean OOF AUROC at ``hours``; ties go to fewer epochs.

    Args:
        oof_by_epoch: ``[E, N, 48]`` OOF logits after each epoch.
    """
    scores = [float(np.mean([compute_auroc(y, z[:, h - 1]) for h in hours])) for z in oof_by_epoch]
    return int(np.argmax(scores)) + 1, scores


def choose_weight(y: np.ndarray, z_lstm: np.ndarray, z_gbt: np.ndarray, hours: tuple[int, ...] = (24, 48),
                  grid: tuple[float, ...] = WEIGHT_GRID) -> tuple[float, dict[float, float]]:
    """The LSTM weight ``w`` of ``w * z_lstm + (1 - w) * z_gbt`` with the highest mean AUROC at ``hours``.

    Args:
        y: ``[N]`` outcomes; z_lstm, z_gbt: ``[N, 48]`` calibrated log-odds of each half (OOF).

    Returns:
        ``(w, {w: mean AUROC})``; ties go to the weight nearest 0.5 (an even mix).
    """
    scores = {float(w): float(np.mean([compute_auroc(y, w * z_lstm[:, h - 1] + (1 - w) * z_gbt[:, h - 1])
                                       for h in hours])) for w in grid}
    best = max(scores.values())
    return min((w for w, s in scores.items() if s >= best - 1e-12), key=lambda w: abs(w - 0.5)), scores
