"""The early-warning LSTM: GRU-D-style inputs -> risk of in-hospital death at every hour.

Inputs per hour (see :meth:`Normaliser.features`): standardised forward-filled values, observation
masks and time since last observation per channel, and the static descriptors. A unidirectional
LSTM reads the hours in order, so the risk at hour ``t`` depends only on hours ``<= t``. Logits are
Platt-scaled per hour on validation stays (``metadata["calibration"]``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cxr_model.registry import BundleError, read_state
from cxr_model.vitals.physionet import Grid, Normaliser

TASK = "vitals-mortality"
NORMALISER_FILE = "normaliser.json"


class VitalsLSTM(nn.Module):
    """LSTM over hourly features with a per-hour logit head.

    Args:
        n_features: input width (``3C + 11``).
        hidden: LSTM hidden size.
        layers: LSTM layers.
        dropout: dropout on the LSTM output before the head.
    """

    def __init__(self, n_features: int, hidden: int = 64, layers: int = 1, dropout: float = 0.2):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, num_layers=layers, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[B, T, F]`` float32 -> logits ``[B, T]``."""
        out, _ = self.lstm(x)
        return self.head(self.drop(out)).squeeze(-1)


class VitalsEnsemble(nn.Module):
    """The mean logit of ``members`` LSTMs trained from different seeds on the same split.

    Averaging keeps causality: each member reads the hours in order.
    """

    def __init__(self, n_features: int, hidden: int = 64, layers: int = 1, dropout: float = 0.2, members: int = 1):
        super().__init__()
        self.members = nn.ModuleList(VitalsLSTM(n_features, hidden, layers, dropout) for _ in range(members))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[B, T, F]`` float32 -> mean logits ``[B, T]``."""
        return torch.stack([m(x) for m in self.members]).mean(dim=0)


@dataclass
class VitalsBundle:
    """A loaded vitals model. Shared by callers (e.g. a Streamlit resource): never mutate it.

    Attributes:
        model: the network in eval mode on CPU.
        normaliser: the training-set normaliser.
        meta: the bundle's metadata (threshold, calibration, metrics, ...).
    """

    model: VitalsEnsemble
    normaliser: Normaliser
    meta: dict[str, Any]
    path: Path

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"]["value"])

    @property
    def model_id(self) -> str:
        return f"{self.meta['name']}@{self.meta['version']}"

    def features(self, grids: list[Grid]) -> torch.Tensor:
        """Grids -> ``[N, 48, F]`` float32 tensor (the one preprocessing path)."""
        return torch.from_numpy(np.stack([self.normaliser.features(g) for g in grids]))

    def calibrate(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, T]`` -> risk: Platt scaling per hour (``a[t]``, ``b[t]``) or one pair for all."""
        cal = self.meta.get("calibration") or {"a": 1.0, "b": 0.0}
        t = logits.shape[-1]
        a = torch.as_tensor(cal["a"], dtype=logits.dtype)
        b = torch.as_tensor(cal["b"], dtype=logits.dtype)
        if a.ndim:
            a, b = a[:t], b[:t]
        return torch.sigmoid(a * logits + b)

    def risk_from_features(self, x: torch.Tensor, batch_size: int = 512) -> np.ndarray:
        """Features ``[N, 48, F]`` -> calibrated risk ``[N, 48]`` float64 in [0, 1]."""
        outs = []
        with torch.inference_mode():
            for i in range(0, x.shape[0], batch_size):
                outs.append(self.calibrate(self.model(x[i:i + batch_size])))
        if not outs:
            return np.zeros((0, x.shape[1] if x.ndim > 1 else 0))
        return torch.cat(outs).double().numpy()

    def risk(self, grids: list[Grid]) -> np.ndarray:
        """Calibrated risk of in-hospital death at every hour: ``[N, 48]``."""
        if not grids:
            return np.zeros((0, 48))
        return self.risk_from_features(self.features(grids))


def build_model(meta: dict[str, Any]) -> VitalsEnsemble:
    hp = meta["hyperparameters"]
    return VitalsEnsemble(int(hp["n_features"]), int(hp["hidden"]), int(hp.get("layers", 1)),
                          float(hp.get("dropout", 0.0)), int(hp.get("members", 1)))


def load_vitals_bundle(bundle_dir: str | Path) -> VitalsBundle:
    """Load the vitals bundle through the registry (sha256 checked, ``weights_only=True``)."""
    bundle_dir = Path(bundle_dir)
    state, meta = read_state(bundle_dir, map_location="cpu")
    if meta.get("task") != TASK:
        raise BundleError(f"{bundle_dir}: not a vitals bundle (task {meta.get('task')!r})")
    norm_path = bundle_dir / meta.get("normaliser", NORMALISER_FILE)
    if not norm_path.exists():
        raise BundleError(f"{norm_path}: normaliser not found")
    normaliser = Normaliser.from_json(norm_path)
    model = build_model(meta)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise BundleError(f"{bundle_dir / 'model.pt'}: weights do not fit VitalsEnsemble ({exc})") from None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return VitalsBundle(model, normaliser, meta, bundle_dir)


def first_crossing(risk: np.ndarray, threshold: float) -> int | None:
    """Index of the first hour with ``risk >= threshold``, or ``None``."""
    hits = np.flatnonzero(np.asarray(risk) >= threshold)
    return int(hits[0]) if hits.size else None
