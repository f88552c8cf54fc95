"""The stratified record split and the bundle's splits.csv."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def stratified_split(ids: list[int], labels: list[int], fractions=(0.6, 0.2, 0.2), seed: int = 2012) -> dict[str, list[int]]:
    """Split record ids into train/val/test, stratified by outcome, with a fixed seed."""
    rng = np.random.default_rng(seed)
    out = {"train": [], "val": [], "test": []}
    ids_arr, y = np.asarray(ids), np.asarray(labels)
    for cls in (0, 1):
        members = ids_arr[y == cls].copy()
        rng.shuffle(members)
        n_tr = int(round(fractions[0] * len(members)))
        n_va = int(round(fractions[1] * len(members)))
        out["train"] += members[:n_tr].tolist()
        out["val"] += members[n_tr:n_tr + n_va].tolist()
        out["test"] += members[n_tr + n_va:].tolist()
    return {k: sorted(int(i) for i in v) for k, v in out.items()}


def read_split(path: str | Path, split: str) -> list[int]:
    """Record ids of one split from a bundle's ``splits.csv`` (``record_id,split``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no splits.csv in the model bundle, cannot select split {split!r}")
    rows = [line.split(",") for line in path.read_text().splitlines()[1:] if line.strip()]
    return [int(r[0]) for r in rows if r[1].strip() == split]


SPLIT_NAME = "strat-622-seed2012"
