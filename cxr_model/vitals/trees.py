"""Gradient-boosted trees saved as plain arrays (``trees.npz``) and evaluated without sklearn.

Why not pickle/joblib: a bundle is never unpickled as code. sklearn's
``HistGradientBoostingClassifier`` keeps each tree as an array of nodes (feature, threshold,
where missing values go, children, leaf value); :func:`export_trees` copies those columns into
numeric arrays, :class:`Trees` loads them with ``allow_pickle=False`` and walks the trees in numpy.
A test checks that the walk equals sklearn's ``decision_function``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FIELDS = ("feature", "threshold", "missing_left", "left", "right", "is_leaf", "value")


def export_trees(model, path: str | Path) -> None:
    """Write a fitted binary ``HistGradientBoostingClassifier`` to ``path`` (``.npz``, numbers only).

    Raises:
        ValueError: for categorical splits or a multi-class model (not supported by the walker).
    """
    predictors = model._predictors  # sklearn's list (one per iteration) of [TreePredictor]
    if any(len(p) != 1 for p in predictors):
        raise ValueError("only binary classifiers (one tree per iteration) can be exported")
    cols: dict[str, list] = {f: [] for f in FIELDS}
    starts = []
    offset = 0
    for (tree,) in predictors:
        nodes = tree.nodes
        if "is_categorical" in nodes.dtype.names and nodes["is_categorical"].any():
            raise ValueError("categorical splits are not supported by the tree export")
        starts.append(offset)
        cols["feature"].append(nodes["feature_idx"].astype(np.int32))
        cols["threshold"].append(nodes["num_threshold"].astype(np.float64))
        cols["missing_left"].append(nodes["missing_go_to_left"].astype(np.uint8))
        cols["left"].append(nodes["left"].astype(np.int32) + offset)
        cols["right"].append(nodes["right"].astype(np.int32) + offset)
        cols["is_leaf"].append(nodes["is_leaf"].astype(np.uint8))
        cols["value"].append(nodes["value"].astype(np.float64))
        offset += len(nodes)
    arrays = {f: np.concatenate(v) for f, v in cols.items()}
    baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)[:1]
    np.savez(path, roots=np.asarray(starts, dtype=np.int64), baseline=baseline,
             n_features=np.asarray([model.n_features_in_]), **arrays)


@dataclass(frozen=True)
class Trees:
    """Loaded tree arrays; ``decision_function(x)`` gives the raw log-odds."""

    roots: np.ndarray
    baseline: float
    n_features: int
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    is_leaf: np.ndarray
    value: np.ndarray

    @classmethod
    def load(cls, path: str | Path) -> "Trees":
        """Read ``trees.npz`` (numbers only: ``allow_pickle=False``); names the file on error."""
        try:
            with np.load(path, allow_pickle=False) as z:
                a = {k: z[k] for k in ("roots", "baseline", "n_features", *FIELDS)}
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"{Path(path).name}: not a tree export ({exc})") from None
        return cls(a["roots"], float(a["baseline"][0]), int(a["n_features"][0]), a["feature"], a["threshold"],
                   a["missing_left"].astype(bool), a["left"], a["right"], a["is_leaf"].astype(bool), a["value"])

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """``x``: ``[N, F]`` float (``nan`` = missing) -> log-odds ``[N]`` float64."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected [N, {self.n_features}] features, got {list(x.shape)}")
        rows = np.arange(x.shape[0])
        node = np.repeat(self.roots[None, :], x.shape[0], axis=0)  # [N, n_trees]
        while True:
            active = ~self.is_leaf[node]
            if not active.any():
                break
            r, k = np.nonzero(active)
            nd = node[r, k]
            v = x[rows[r], self.feature[nd]]
            go_left = np.where(np.isnan(v), self.missing_left[nd], v <= self.threshold[nd])
            node[r, k] = np.where(go_left, self.left[nd], self.right[nd])
        return self.baseline + self.value[node].sum(axis=1)
