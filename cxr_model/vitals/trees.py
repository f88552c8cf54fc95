"""Gradient-boosted trees saved as plain arrays (``trees.npz``) and evaluated without sklearn.

Why not pickle/joblib: a bundle is never unpickled as code. sklearn's
``HistGradientBoostingClassifier`` keeps each tree as an array of nodes (feature, threshold,
where missing values go, children, leaf value); :func:`export_trees` copies those columns into
numeric arrays, :class:`Trees` loads them with ``allow_pickle=False`` and walks the trees in numpy.
A test checks that the walk equals sklearn's ``decision_function``.

The walk scores every tree for a block of rows at once, QuickScorer-style (Lucchese et al., SIGIR
2015): each split a row fails (goes right) rules out the leaves of its left subtree, and the row's
exit leaf is the leftmost leaf no failed split ruled out; so all splits are tested in one gather
and compare, and a bitmask AND per split replaces the node-by-node descent. Trees with more
than 64 leaves (one bitmask word) take the node-by-node walk.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FIELDS = ("feature", "threshold", "missing_left", "left", "right", "is_leaf", "value")


def export_trees(model, path: str | Path) -> None:
    """Write a fitted binary ``HistGradientBoostingClassifier`` to ``path`` (``.npz``, numbers only).

    ``model`` may also be a bag (an object with ``.models``, e.g. :class:`crossval.TreeBag`) whose
    log-odds are the mean of its models': its trees are written as one set, each leaf value and the
    baseline divided by the number of models, so the walk gives the mean without knowing of the bag.

    Raises:
        ValueError: for categorical splits or a multi-class model (not supported by the walker).
    """
    members = list(getattr(model, "models", [model]))
    share = 1.0 / len(members)
    cols: dict[str, list] = {f: [] for f in FIELDS}
    starts = []
    offset = 0
    for member in members:
        predictors = member._predictors  # sklearn's list (one per iteration) of [TreePredictor]
        if any(len(p) != 1 for p in predictors):
            raise ValueError("only binary classifiers (one tree per iteration) can be exported")
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
            cols["value"].append(nodes["value"].astype(np.float64) * share)
            offset += len(nodes)
    arrays = {f: np.concatenate(v) for f, v in cols.items()}
    baseline = np.mean([np.asarray(m._baseline_prediction, dtype=np.float64).reshape(-1)[0] for m in members])
    np.savez(path, roots=np.asarray(starts, dtype=np.int64), baseline=np.asarray([baseline]),
             n_features=np.asarray([members[0].n_features_in_]), **arrays)


#: Leaves of one tree that fit one bitmask word (``uint64``); bigger trees take the node-by-node walk.
MAX_LEAVES = 64
#: About how many (row, split) tests one block of rows holds (bounds the memory of a walk).
BLOCK = 1 << 21


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

    def __post_init__(self):
        object.__setattr__(self, "_masks", _leaf_masks(self))  # derived once at load; never changed

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
        """``x``: ``[N, F]`` float (``nan`` = missing) -> log-odds ``[N]`` float64.

        float32 input is compared as it is (exact against the float64 thresholds), not copied.
        """
        x = np.asarray(x)
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected [N, {self.n_features}] features, got {list(x.shape)}")
        if self._masks is None:
            return self._walk(x)
        feature, threshold, missing_left, ruled_out, leaf_value, first_leaf = self._masks
        n_splits, n_trees = ruled_out.shape
        everything = np.iinfo(ruled_out.dtype).max
        out = np.empty(x.shape[0])
        step = max(1, BLOCK // max(feature.size, 1))
        for i in range(0, x.shape[0], step):
            v = x[i:i + step][:, feature]  # [R, splits x trees]: every split's test at once
            go_left = v <= threshold
            go_left |= np.isnan(v) & missing_left
            keep = np.where(go_left.reshape(-1, n_splits, n_trees), everything, ruled_out)
            alive = np.bitwise_and.reduce(keep, axis=1)  # [R, trees]: leaves no failed split ruled out
            lowest = alive & (~alive + 1)  # the leftmost one: lowest set bit
            leaf = np.frexp(lowest.astype(np.float64))[1] - 1
            out[i:i + step] = self.baseline + leaf_value[first_leaf + leaf].sum(axis=1)
        return out

    def _walk(self, x: np.ndarray) -> np.ndarray:
        """Node by node, all (row, tree) pairs together: for trees too big for one bitmask word."""
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


def _leaf_masks(t: Trees) -> tuple | None:
    """Per tree: leaves left to right, and per split the bitmask of leaves a row keeps when it goes right.

    Returns ``(feature, threshold, missing_left [S * T], ruled_out [S, T], leaf_value, first_leaf [T])``
    with splits padded to ``S`` per tree (a pad rules nothing out), or ``None`` when a tree has more
    than :data:`MAX_LEAVES` leaves.
    """
    leaves, splits = [], []
    for root in t.roots:
        order, tree_splits, stack = [], [], [(int(root), None)]
        while stack:  # depth first, left before right: leaves come out in left-to-right order
            node, parent = stack.pop()
            if t.is_leaf[node]:
                order.append(node)
                for split in parent or ():
                    split[1] += 1
                continue
            entry = [node, 0]  # (split node, leaves in its left subtree so far)
            tree_splits.append((entry, len(order)))
            stack.append((int(t.right[node]), parent))
            stack.append((int(t.left[node]), (parent or ()) + (entry,)))
        if len(order) > MAX_LEAVES:
            return None
        leaves.append(order)
        splits.append([(node, first, n_left) for (node, n_left), first in tree_splits])
    n_trees, n_splits = len(leaves), max((len(s) for s in splits), default=0)
    width = max((len(o) for o in leaves), default=1)
    dtype = next(d for d in (np.uint8, np.uint16, np.uint32, np.uint64) if np.iinfo(d).bits >= width)
    everything = int(np.iinfo(dtype).max)
    feature = np.zeros((n_splits, n_trees), dtype=np.intp)
    threshold = np.full((n_splits, n_trees), np.inf)
    missing_left = np.ones((n_splits, n_trees), dtype=bool)
    ruled_out = np.full((n_splits, n_trees), everything, dtype=dtype)
    for k, tree_splits in enumerate(splits):
        for j, (node, first, n_left) in enumerate(tree_splits):
            feature[j, k], threshold[j, k], missing_left[j, k] = t.feature[node], t.threshold[node], t.missing_left[node]
            ruled_out[j, k] = everything & ~(((1 << n_left) - 1) << first)
    first_leaf = np.cumsum([0] + [len(o) for o in leaves[:-1]]).astype(np.intp)
    leaf_value = t.value[np.concatenate(leaves)] if leaves else np.zeros(0)
    return feature.ravel(), threshold.ravel(), missing_left.ravel(), ruled_out, leaf_value, first_leaf
