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
from scipy.special import expit

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

    @classmethod
    def from_rows(cls, rows: list[dict]) -> "ReliabilityBins":
        """The bins back from :meth:`rows` (e.g. read from a metrics.json)."""
        edges = [tuple(float(x) for x in r["bin"].split("-")) for r in rows]
        return cls(np.array([e[0] for e in edges]), np.array([e[1] for e in edges]),
                   np.array([r["n"] for r in rows], dtype=np.int64),
                   np.array([r["mean_predicted"] for r in rows], dtype=np.float64),
                   np.array([r["observed"] for r in rows], dtype=np.float64))

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


def _fit_logistic(X: np.ndarray, y: np.ndarray, offset: np.ndarray, w: np.ndarray | None = None,
                  max_iter: int = 100) -> np.ndarray | None:
    """(Weighted) unpenalised logistic regression by Newton-Raphson; ``None`` when the MLE does not exist.

    Under complete separation the likelihood keeps rising as the coefficients grow; that shows
    up as coefficients past ``1e3`` or no convergence, and no finite estimate is reported.
    """
    w = np.ones_like(y) if w is None else w
    beta = np.zeros(X.shape[1])
    for _ in range(max_iter):
        eta = X @ beta + offset
        mu = expit(eta)  # no overflow when a small or separated set drives eta far out
        hess = X.T @ (X * (w * mu * (1 - mu))[:, None])
        try:
            step = np.linalg.solve(hess, X.T @ (w * (y - mu)))
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


# --------------------------------------------------------------------------------- Platt scaling
def fit_platt(y_true, logits, weights=None) -> dict[str, float]:
    """Platt scaling ``p = sigmoid(a * logit + b)`` by (weighted) maximum likelihood.

    The one fit for every model (chest X-ray on validation, model 2 with both populations weighted
    equally, the vitals LSTM once per hour): Newton-Raphson on the unpenalised logistic likelihood,
    the fit scikit-learn's ``LogisticRegression(penalty=None)`` finds.

    Args:
        y_true: ``(N,)`` 0/1 outcomes.
        logits: ``(N,)`` raw model logits.
        weights: ``(N,)`` case weights (scaled to mean 1), or ``None``.

    Raises:
        ValueError: one class only, or complete separation (no finite fit exists).
    """
    y, z = _arrays(y_true, logits)
    w = np.ones_like(z) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if y.size == 0 or y.min() == y.max():
        raise ValueError("Platt scaling needs both classes")
    beta = _fit_logistic(np.column_stack([z, np.ones_like(z)]), y.astype(np.float64), np.zeros_like(z), w / w.mean())
    if beta is None:
        raise ValueError("Platt scaling has no finite fit (the logits separate the classes completely)")
    return {"a": float(beta[0]), "b": float(beta[1])}


def apply_platt(logits, calibration: dict | None):
    """``sigmoid(a * logit + b)`` with a bundle's ``calibration`` block (identity when ``None``).

    ``a`` and ``b`` are numbers, or lists with one value per step of the last axis (the vitals
    model's per-hour fit; a shorter sequence uses the first steps' values). ``logits`` may be a
    numpy array (computed in float64) or a torch tensor (computed in its own dtype, on its device,
    with the autograd graph kept), so every caller applies the same numbers the same way.
    """
    cal = calibration or {"a": 1.0, "b": 0.0}
    a, b = cal["a"], cal["b"]
    if hasattr(logits, "sigmoid"):  # torch.Tensor, without importing torch here
        if np.ndim(a):
            n = logits.shape[-1]
            a, b = logits.new_tensor(a)[:n], logits.new_tensor(b)[:n]
        return (a * logits + b).sigmoid()
    if np.ndim(a):
        n = np.shape(logits)[-1]
        a, b = np.asarray(a, dtype=np.float64)[:n], np.asarray(b, dtype=np.float64)[:n]
    return 1.0 / (1.0 + np.exp(-(a * np.asarray(logits, dtype=np.float64) + b)))
