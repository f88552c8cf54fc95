"""Calibration of predicted probabilities: reliability bins, slope and intercept.

Definitions follow Van Calster et al., "Calibration: the Achilles heel of predictive analytics",
BMC Medicine 2019: the *calibration slope* ``b`` and *intercept* ``a`` come from the logistic
recalibration model ``logit P(y=1) = a + b * logit(p)`` (ideal: ``b = 1``, ``a = 0``); the
*calibration-in-the-large* is the intercept with the slope fixed at 1 (``logit(p)`` as an
offset; ideal 0, negative when the model over-predicts on average).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cxr_model.metrics.classification import _arrays


#: Probabilities are clipped into ``[EPS, 1 - EPS]`` before taking logits (0 and 1 are infinite).
EPS = 1e-6


@dataclass(frozen=True)
class ReliabilityBins:
    """Equal-width bins of predicted probability on [0, 1], only bins holding cases.

    Attributes:
        lower, upper: ``float64 (B,)`` bin edges.
        count: ``int64 (B,)`` cases per bin.
        mean_predicted: ``float64 (B,)`` mean probability in each bin.
        observed: ``float64 (B,)`` fraction of positives in each bin.
    """

    lower: np.ndarray
    upper: np.ndarray
    count: np.ndarray
    mean_predicted: np.ndarray
    observed: np.ndarray

    def rows(self) -> list[dict]:
        return [
            {"bin": f"{lo:.1f}-{hi:.1f}", "n": int(n), "mean_predicted": float(m), "observed": float(o)}
            for lo, hi, n, m, o in zip(self.lower, self.upper, self.count, self.mean_predicted, self.observed)
        ]


def reliability_bins(y_true, y_prob, n_bins: int = 10) -> ReliabilityBins:
    """Bin cases by predicted probability (the same bins as :func:`~.metrics.compute_ece`).

    ``ECE = sum(count * |observed - mean_predicted|) / n`` over these bins.
    """
    y, p = _arrays(y_true, y_prob)
    idx = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    keep = count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(idx, weights=p, minlength=n_bins) / count
        obs = np.bincount(idx, weights=y.astype(np.float64), minlength=n_bins) / count
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return ReliabilityBins(edges[:-1][keep], edges[1:][keep], count[keep], mean_p[keep], obs[keep])


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def _fit_logistic(X: np.ndarray, y: np.ndarray, offset: np.ndarray, max_iter: int = 100) -> np.ndarray | None:
    """Unpenalised logistic regression by Newton-Raphson; ``None`` when the MLE does not exist.

    Under complete separation the likelihood keeps rising as the coefficients grow; that shows
    up as coefficients past ``1e3`` or no convergence, and no finite estimate is reported.
    """
    beta = np.zeros(X.shape[1])
    for _ in range(max_iter):
        eta = X @ beta + offset
        mu = 1.0 / (1.0 + np.exp(-eta))
        w = mu * (1 - mu)
        hess = X.T @ (X * w[:, None])
        try:
            step = np.linalg.solve(hess, X.T @ (y - mu))
        except np.linalg.LinAlgError:
            return None
        beta = beta + step
        if not np.all(np.isfinite(beta)) or np.max(np.abs(beta)) > 1e3:
            return None
        if np.max(np.abs(step)) < 1e-10:
            return beta
    return None


def calibration_slope_intercept(y_true, y_prob) -> dict[str, float]:
    """Calibration slope, intercept and calibration-in-the-large (see the module docstring).

    Args:
        y_true: ``(N,)`` 0/1 labels.
        y_prob: ``(N,)`` predicted probabilities of class 1.

    Returns:
        ``{"slope", "intercept", "citl"}``; ``nan`` for empty input, one class only, or complete
        separation (where no finite maximum-likelihood fit exists).
    """
    nan = {"slope": float("nan"), "intercept": float("nan"), "citl": float("nan")}
    y, p = _arrays(y_true, y_prob)
    if y.size == 0 or y.min() == y.max():
        return nan
    yf = y.astype(np.float64)
    lp = _logit(p)
    out = dict(nan)
    joint = _fit_logistic(np.column_stack([np.ones_like(lp), lp]), yf, np.zeros_like(lp))
    if joint is not None:
        out["intercept"], out["slope"] = float(joint[0]), float(joint[1])
    citl = _fit_logistic(np.ones((lp.size, 1)), yf, lp)
    if citl is not None:
        out["citl"] = float(citl[0])
    return out


def fit_platt(y: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """Platt scaling ``p = sigmoid(a * logit + b)`` by maximum likelihood on validation data.

    The training loss weights classes (pos_weight), which shifts raw probabilities; Platt on the
    validation prevalence undoes that.
    """
    x = torch.tensor(logits, dtype=torch.float64)
    t = torch.tensor(y, dtype=torch.float64)
    a = torch.ones((), dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([a, b], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(a * x + b, t)
        loss.backward()
        return loss

    opt.step(closure)
    a, b = a.detach(), b.detach()
    return {"a": a.item(), "b": b.item()}


def _prob(logits: np.ndarray, cal: dict) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(cal["a"] * logits + cal["b"])))


def fit_platt_weighted(y: np.ndarray, logits: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """Platt scaling ``p = sigmoid(a * logit + b)`` by weighted maximum likelihood."""
    x, t = torch.tensor(logits, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    w = torch.tensor(weights / weights.mean(), dtype=torch.float64)
    a = torch.ones((), dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([a, b], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(a * x + b, t, weight=w)
        loss.backward()
        return loss

    opt.step(closure)
    return {"a": a.item(), "b": b.item()}


def prob(logits: np.ndarray, cal: dict) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(cal["a"] * np.asarray(logits, dtype=np.float64) + cal["b"])))


def calibration_slope(y: np.ndarray, p: np.ndarray) -> float:
    """Slope of the logistic recalibration of ``logit(p)`` on the outcomes (1 = well calibrated)."""

    p = np.clip(p, 1e-6, 1 - 1e-6)
    return fit_platt(y, np.log(p / (1 - p)))["a"]
