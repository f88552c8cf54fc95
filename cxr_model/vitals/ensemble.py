"""The LSTM + gradient-boosted-trees ensemble: hourly risk from both, combined on the logit scale.

risk(t) = Platt_t( w * logit(LSTM risk(t)) + (1 - w) * logit(GBT risk(t)) )

The LSTM risk is the bundle's own calibrated LSTM risk; the GBT risk is Platt-scaled per hour on
out-of-fold predictions over train + validation; then the mix is Platt-scaled per hour (version 1:
on validation stays, LSTM calibrated on validation; version 2: every fit and the weight ``w`` on
cross-validated out-of-fold predictions, see :mod:`train_ensemble`). Coefficients live in ``metadata.json``
(``components``); the trees live in ``trees.npz`` (numbers only, see :mod:`trees`).
"""
from __future__ import annotations

import numpy as np

from cxr_model.metrics.calibration import apply_platt
from cxr_model.vitals.grid import Grid
from cxr_model.vitals.reader import N_HOURS
from cxr_model.vitals.summary import stack_features
from cxr_model.vitals.trees import Trees

EPS = 1e-6
#: Stays per block of :func:`gbt_logits` (about 2,000 rows of summary features).
BLOCK_STAYS = 40


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def gbt_logits(trees: Trees, grids: list[Grid]) -> np.ndarray:
    """Raw tree log-odds at every hour: ``[N, 48]`` float64.

    Stays go through in blocks of :data:`BLOCK_STAYS`: each block's summary features (about 2 MB)
    are walked while still in the processor cache instead of building the whole ward's first. The
    trees' own feature count selects the feature set (a bundle trained without the trend block gets
    the columns it was trained on).
    """
    out = np.zeros((len(grids), N_HOURS))
    for i in range(0, len(grids), BLOCK_STAYS):
        x = stack_features(grids[i:i + BLOCK_STAYS], n_features=trees.n_features)
        out[i:i + BLOCK_STAYS] = trees.decision_function(x.reshape(-1, x.shape[-1])).reshape(len(x), N_HOURS)
    return out


def combine(lstm_risk: np.ndarray, gbt_raw: np.ndarray, components: dict) -> dict[str, np.ndarray]:
    """Component and ensemble risks ``[N, 48]`` from the LSTM risk and the raw tree log-odds.

    Args:
        components: ``{"weight_lstm", "gbt_calibration", "calibration"}`` from the metadata.

    Returns:
        ``{"lstm", "gbt", "ensemble"}`` calibrated risks.
    """
    gbt = apply_platt(gbt_raw, components["gbt_calibration"])
    w = float(components["weight_lstm"])
    z = w * logit(lstm_risk) + (1 - w) * logit(gbt)
    return {"lstm": np.asarray(lstm_risk, dtype=np.float64), "gbt": gbt,
            "ensemble": apply_platt(z, components["calibration"])}
