"""Child- and patient-level splits, and the bundle's splits.csv (written and read)."""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from cxr_model.imaging.bundle import CxrBundle
from cxr_model.imaging.data import Item, child_group, nih_items, subtype_of
from cxr_model.imaging.labels import parse_label
from cxr_model.registry import metadata_or_none, model_id



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


#: The parts of a bundle's own split that :func:`own_split_items` scores, and how a report names them.
OWN_SPLIT_NAMES = {"test": "own held-out test split", "val": "own validation split"}


def own_split_items(bundle: CxrBundle, data_dir: str | Path, split: str) -> list[Item]:
    """The films of one part of the bundle's own split, both populations, ready for an evaluation run.

    Paths come from ``splits.csv`` under the data folder (children under ``cxr/kermany``, adults under
    ``cxr/nih_adult``). For subgroup tables each item keeps a child's patient group and pneumonia subtype
    (from the file name) or an adult's patient, age, sex, view and label source (``nih_adult/manifest.csv``),
    and, as ``extra["source_population"]``, the population the split put it in.
    Raises ``ValueError`` for a part the split does not have, ``FileNotFoundError`` naming a data folder
    (or the adults' manifest) that the split needs and the data folder lacks.
    """
    cxr = Path(data_dir) / "cxr"
    kermany, nih = cxr / "kermany", cxr / "nih_adult"
    items = split_items(bundle, kermany, split, None, nih)
    rows = {pop: [it for it in items if it.extra["population"] == pop] for pop in ("child", "adult")}
    for pop, root in (("child", kermany), ("adult", nih)):
        if rows[pop] and not root.is_dir():
            raise FileNotFoundError(f"{root}: the {OWN_SPLIT_NAMES.get(split, split)} of {bundle.model_id} has "
                                    f"{len(rows[pop])} {pop} films there, and the folder is missing")
    if not items:
        with open(bundle.path / "splits.csv", newline="") as fh:
            parts = sorted({r["split"] for r in csv.DictReader(fh)})
        raise ValueError(f"{bundle.path / 'splits.csv'}: no '{split}' part (it has {', '.join(parts) or 'none'})")
    # children: the file name gives the patient group and subtype (as kermany/manifest.csv does); adults: their manifest
    known = {it.path: it for it in nih_items(nih)} if rows["adult"] else {}
    out = [Item(it.path, it.label, child_group(it.path), subtype_of(it.path), {"source_population": "child"})
           for it in rows["child"]]
    for it in rows["adult"]:
        m = known.get(it.path)  # a film the manifest lacks is still scored, without its subgroup columns
        # the model's own judgement of the population goes in predictions.csv's "population"; boxes are for the
        # pointing game, and the patient is the item's group
        extra = {k: v for k, v in (m.extra if m else {}).items() if k not in ("population", "boxes_xywh", "patient_id")}
        out.append(Item(it.path, it.label, m.group if m else "", "", {**extra, "source_population": "adult"}))
    return out


def own_split_counts(model_dir: str | Path) -> dict[str, dict[str, int]]:
    """Films per part and population of a bundle's ``splits.csv`` (``{"test": {"child": 782, "adult": 113}}``);
    empty when the bundle has none. Reads only the CSV, so a page can list the parts without loading the model."""
    path = Path(model_dir) / "splits.csv"
    if not path.exists():
        return {}
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            counts[r["split"]][r.get("population") or "child"] += 1
    return {k: dict(v) for k, v in counts.items()}


def own_split_choices(model_dir: str | Path) -> dict[str, str]:
    """The bundle's held-out test and validation parts as a page lists them, label -> part, e.g.
    ``"Own held-out test split of cxr-pneumonia-resnet18-v2.6@2.6.0 (895 films: 782 children, 113 adults)"``."""
    meta = metadata_or_none(model_dir)
    counts = own_split_counts(model_dir) if meta else {}
    plural = {"child": "children", "adult": "adults"}
    return {f"{OWN_SPLIT_NAMES[k].capitalize()} of {model_id(meta)} ({sum(c.values())} films: "
            + ", ".join(f"{c[pop]} {plural.get(pop, pop)}" for pop in sorted(c, key=lambda p: p != "child")) + ")": k
            for k in OWN_SPLIT_NAMES for c in [counts.get(k)] if c}
