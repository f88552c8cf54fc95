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
from cxr_model.vitals.summary import stack_features
from cxr_model.vitals.trees import Trees

EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def gbt_logits(trees: Trees, grids: list[Grid]) -> np.ndarray:
    """Raw tree log-odds at every hour: ``[N, 48]`` float64."""
    x = stack_features(grids)
    n, h, f = x.shape
    if n == 0:
        return np.zeros((0, h))
    return trees.decision_function(x.reshape(n * h, f)).reshape(n, h)


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
