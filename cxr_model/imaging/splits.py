"""Child- and patient-level splits, and the bundle's splits.csv (written and read)."""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from cxr_model.imaging.bundle import CxrBundle
from cxr_model.imaging.data import Item, child_group, subtype_of
from cxr_model.imaging.labels import parse_label



def duplicate_groups(kermany_dir: str | Path) -> dict[str, str]:
    """Map ``file name -> duplicate group id`` from ``duplicates.csv`` (empty when absent)."""
    path = Path(kermany_dir) / "duplicates.csv"
    if not path.exists():
        return {}
    with open(path, newline="") as fh:
        return {Path(r["path"]).name: f"dup{r['group']}" for r in csv.DictReader(fh)}


def split_by_child(
    items: list[Item], fractions: dict[str, float], seed: int = 0, duplicates: dict[str, str] | None = None
) -> dict[str, list[Item]]:
    """Split items into named parts by child group, stratified by label.

    Children (``Item.group``) and pixel-identical duplicate groups are merged (union-find), so
    no child and no duplicate straddles two parts. Within each label the merged groups are
    shuffled with ``seed`` and dealt out until each part holds its fraction of images.

    Args:
        fractions: e.g. ``{"train": 0.7, "val": 0.15, "test": 0.15}`` (summing to 1).
    """
    duplicates = duplicates or {}
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for it in items:
        find(it.group)
        dup = duplicates.get(it.path.name)
        if dup:
            parent[find(dup)] = find(it.group)
    clusters: dict[tuple[int, str], list[Item]] = defaultdict(list)
    for it in items:
        clusters[(it.label, find(it.group))].append(it)

    strata = [sorted(k for k in clusters if k[0] == label) for label in sorted({k[0] for k in clusters})]
    return _deal(clusters, strata, fractions, seed)


def split_by_patient(items: list[Item], fractions: dict[str, float], seed: int = 0) -> dict[str, list[Item]]:
    """Split items by ``Item.group`` (patient), all of a patient's films in one part.

    Unlike :func:`split_by_child`, a patient with films of both labels is never cut in two.
    Patients are stratified by whether they have any pneumonia film, shuffled with ``seed`` and
    dealt out until each part holds its fraction of that stratum's images.
    """
    by_patient: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        by_patient[it.group].append(it)
    strata = [sorted(k for k, v in by_patient.items() if max(i.label for i in v) == stratum) for stratum in (0, 1)]
    return _deal(by_patient, strata, fractions, seed)


def _deal(groups: dict, strata: list[list], fractions: dict[str, float], seed: int) -> dict[str, list[Item]]:
    """Deal whole groups out to the parts: per stratum (in order, one seeded RNG for all), the
    group keys are shuffled and dealt until each part holds its fraction of the stratum's images."""
    names = list(fractions)
    parts: dict[str, list[Item]] = {n: [] for n in names}
    rng = np.random.default_rng(seed)
    for keys in strata:
        keys = [keys[i] for i in rng.permutation(len(keys))]
        total = sum(len(groups[k]) for k in keys)
        bounds = np.cumsum([fractions[n] for n in names]) * total
        done = 0
        for k in keys:
            part = names[int(np.searchsorted(bounds, done, side="right"))] if done < total else names[-1]
            parts[part].extend(groups[k])
            done += len(groups[k])
    return {n: sorted(v, key=lambda it: str(it.path)) for n, v in parts.items()}


def read_splits(splits_csv: str | Path, data_dir: str | Path) -> dict[str, list[Item]]:
    """Parts recorded in a bundle's ``splits.csv`` (``path,label,split[,population]``).

    Paths are relative to ``data_dir``. With a ``population`` column (model-2 bundles) only the
    ``child`` rows are read, as ``data_dir`` is then the Kermany folder.
    """
    parts: dict[str, list[Item]] = defaultdict(list)
    with open(splits_csv, newline="") as fh:
        for i, r in enumerate(csv.DictReader(fh), start=2):
            if r.get("population", "child") != "child":
                continue
            p = Path(data_dir) / r["path"]
            parts[r["split"]].append(Item(p, parse_label(r["label"], f"{Path(splits_csv).name} line {i}"), child_group(p), subtype_of(p)))
    return {k: sorted(v, key=lambda it: str(it.path)) for k, v in parts.items()}


def split_items(bundle: CxrBundle, kermany_dir: str | Path, split: str, population: str | None = "child",
                adult_dir: str | Path | None = None) -> list[Item]:
    """Items of one part of the bundle's own split (``splits.csv``: path,label,split[,population]).

    Rows without a ``population`` column are children. ``population`` picks one population
    (``"child"`` paths are under ``kermany_dir``, ``"adult"`` ones under ``adult_dir``), ``None``
    both; each item's ``extra["population"]`` says which.
    """
    path = bundle.path / "splits.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path}: the bundle has no splits.csv, so its training images are unknown")
    with open(path, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == split]
    out = []
    for r in rows:
        pop = r.get("population") or "child"
        if population is not None and pop != population:
            continue
        if pop != "child" and adult_dir is None:
            raise FileNotFoundError(f"{path}: {pop} rows need the adult data folder")
        root = Path(kermany_dir) if pop == "child" else Path(adult_dir)
        out.append(Item(root / r["path"], parse_label(r["label"], path.name), extra={"population": pop}))
    return out
