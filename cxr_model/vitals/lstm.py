"""The early-warning LSTM: GRU-D-style inputs -> risk of in-hospital death at every hour.

Inputs per hour (see :meth:`Normaliser.features`): standardised forward-filled values, observation
masks and time since last observation per channel, and the static descriptors. A unidirectional
LSTM reads the hours in order, so the risk at hour ``t`` depends only on hours ``<= t``. Logits are
Platt-scaled per hour on validation stays (``metadata["calibration"]``).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


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


def features(normaliser, grids) -> torch.Tensor:
    """Grids -> the model input ``float32 [N, 48, F]`` (the one preprocessing path: training,
    evaluation, the ward and the occlusion explanation all call it)."""
    return torch.from_numpy(normaliser.features_batch(grids))


def first_crossing(risk: np.ndarray, threshold: float) -> int | None:
    """Index of the first hour with ``risk >= threshold``, or ``None``."""
    hits = np.flatnonzero(np.asarray(risk) >= threshold)
    return int(hits[0]) if hits.size else None
