"""Labelled radiograph sets: listing (Kaggle folders, CSV, manifest), child-level splits, caching.

Labels are 0 = NORMAL, 1 = PNEUMONIA throughout.
"""
from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cxr_model.imaging.formats import ImageReadError
from cxr_model.imaging.io import read_image
from cxr_model.imaging.labels import CLASSES, parse_label
from cxr_model.imaging.transforms import SOURCE_SIZE, to_source


@dataclass(frozen=True)
class Item:
    """One labelled file. ``group`` keeps one child's images on one side of a split."""

    path: Path
    label: int
    group: str = ""
    subtype: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def child_group(path: str | Path) -> str:
    """Best available patient key from a Kermany file name (the set has no patient IDs).

    ``person123_bacteria_45.jpeg`` -> ``person123``; ``IM-0115-0001.jpeg`` -> ``IM-0115``;
    ``NORMAL2-IM-0587-0001-0002.jpeg`` -> ``NORMAL2-IM-0587``; anything else -> its stem.
    """
    stem = Path(path).stem
    m = re.match(r"(person\d+)_", stem)
    if m:
        return m.group(1)
    m = re.match(r"((?:NORMAL2-)?IM-\d+)", stem)
    if m:
        return m.group(1)
    return stem


def subtype_of(path: str | Path) -> str:
    m = re.search(r"_(bacteria|virus)_", Path(path).name)
    return m.group(1) if m else ""


def list_labelled(source: str | Path) -> list[Item]:
    """List a labelled set: a folder in the Kaggle layout or a CSV with ``path,label``.

    Args:
        source: a folder (``NORMAL/`` and ``PNEUMONIA/`` sub-folders, searched recursively; any
            depth, e.g. ``chest_xray/test/NORMAL``) or a CSV whose ``path`` column is relative to
            the CSV's folder (extra columns are kept in ``Item.extra`` for subgroup tables).

    Returns:
        Items sorted by path. Files are not opened here; every file under a class folder is an
        item, whatever its suffix (the reader decides by content, and names what it refuses).
        Files a folder holds that cannot be labelled are left out here; see :func:`scan_labelled`.
    """
    return scan_labelled(source)[0]


def scan_labelled(source: str | Path) -> tuple[list[Item], list[tuple[Path, str]]]:
    """Like :func:`list_labelled`, and also every file of a folder that cannot be labelled.

    Returns:
        ``(items, unlabelled)``: ``unlabelled`` lists ``(path, message)`` for files outside any
        ``NORMAL/`` or ``PNEUMONIA/`` folder, or inside both, so that an evaluation accounts for
        every file it found (empty for a CSV, which names its files).

    Raises:
        FileNotFoundError: no such folder or file.
        ValueError: a folder without any class folder or file in one; a malformed CSV.
    """
    source = Path(source)
    if source.is_file():
        return _list_csv(source), []
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such folder or CSV file")
    items, unlabelled = [], []
    for f in sorted(source.rglob("*")):
        if f.is_dir():
            continue  # everything else is a file to account for: any suffix, hidden, a broken link
        labels = {CLASSES.index(part) for part in f.relative_to(source).parts[:-1] if part in CLASSES}
        if len(labels) == 1:
            items.append(Item(f, labels.pop(), child_group(f), subtype_of(f)))
        else:
            where = "inside both a NORMAL/ and a PNEUMONIA/ folder" if labels else "not inside a NORMAL/ or PNEUMONIA/ folder"
            unlabelled.append((f, f"{f.name}: no label ({where})"))
    if not items:
        raise ValueError(f"{source}: no NORMAL/ or PNEUMONIA/ folder with files found")
    return sorted(items, key=lambda it: str(it.path)), unlabelled


def _list_csv(csv_path: Path) -> list[Item]:
    base = csv_path.parent
    items = []
    with open(csv_path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "path" not in reader.fieldnames or "label" not in reader.fieldnames:
            raise ValueError(f"{csv_path.name}: a CSV with columns path,label is expected")
        for i, row in enumerate(reader, start=2):
            p = base / row["path"]
            extra = {k: v for k, v in row.items() if k not in ("path", "label") and k is not None}
            items.append(
                Item(p, parse_label(row["label"], f"{csv_path.name} line {i}"), child_group(p),
                     row.get("subtype") or subtype_of(p), extra)
            )
    return items


def is_labelled_csv(path: str | Path) -> bool:
    """A CSV whose header names ``path`` and ``label`` (what :func:`scan_labelled` reads); ``False`` if unreadable."""
    try:
        with open(path, newline="") as fh:
            header = next(csv.reader(fh), [])
    except OSError:
        return False
    return "path" in header and "label" in header


def labelled_sets(data_dir: str | Path) -> dict[str, Path]:
    """Labelled sets under the data folder: Kermany split folders and ``path,label`` CSVs under ``cxr/``.

    Keys are what the evaluation page lists: ``"Kermany {split} (folder)"``, ``"{relative path} (CSV)"``.
    """
    found = {}
    cxr = Path(data_dir) / "cxr"
    kermany = cxr / "kermany"
    if kermany.is_dir():
        for split in sorted(p for p in kermany.iterdir() if p.is_dir()):
            if (split / "NORMAL").is_dir() or (split / "PNEUMONIA").is_dir():
                found[f"Kermany {split.name} (folder)"] = split
    for f in sorted(cxr.rglob("*.csv")) if cxr.is_dir() else []:
        if is_labelled_csv(f):
            found[f"{f.relative_to(cxr)} (CSV)"] = f
    return found


def kermany_items(kermany_dir: str | Path, split: str = "train") -> list[Item]:
    """Items of one official split from ``kermany/manifest.csv`` (falls back to the folders)."""
    kermany_dir = Path(kermany_dir)
    manifest = kermany_dir / "manifest.csv"
    if not manifest.exists():
        return list_labelled(kermany_dir / split)
    with open(manifest, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == split]
    return [
        Item(kermany_dir / r["path"], parse_label(r["label"], "manifest.csv"), child_group(r["path"]), r["subtype"])
        for r in rows
    ]


def load_sources(items: list[Item], progress: bool = False,
                 size: int = SOURCE_SIZE) -> tuple[torch.Tensor, list[tuple[Item, str]]]:
    """Decode items into the ``size x size`` uint8 source form (224 unless given), in memory.

    Returns:
        ``(tensor (N, 1, size, size) uint8, errors)``, where errors lists ``(item, message)`` for
        files that could not be read (those are left out of the tensor; see ``kept`` order).
    """
    from tqdm import tqdm

    out = torch.empty((len(items), 1, size, size), dtype=torch.uint8)
    errors, n = [], 0
    for it in tqdm(items, desc="decode", disable=not progress, leave=False):
        try:
            out[n] = to_source(read_image(it.path), size)
            n += 1
        except ImageReadError as exc:
            errors.append((it, str(exc)))
    return out[:n], errors


def fingerprint(items: list[Item]) -> str:
    """Short hash of a list of file names and labels, recorded with a model for provenance."""
    h = hashlib.sha256()
    for it in items:
        h.update(f"{it.path.name},{it.label}\n".encode())
    return h.hexdigest()[:16]


def nih_items(nih_dir: str | Path) -> list[Item]:
    """Items of the adult NIH ChestX-ray14 set from ``nih_adult/manifest.csv``.

    ``group`` is ``nih<patient_id>`` (one patient's films stay on one side of a split);
    ``extra`` keeps ``confirmed_by``, ``boxes_xywh`` (JSON, pixels of the 512 px copy), ``age``,
    ``sex``, ``view`` and ``population = "adult"`` for subgroup tables.
    """
    manifest = Path(nih_dir) / "manifest.csv"
    if not manifest.exists():
        raise FileNotFoundError(f"{manifest}: NIH adult manifest not found")
    keep = ("confirmed_by", "boxes_xywh", "age", "sex", "view", "patient_id")
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [
        Item(Path(nih_dir) / r["path"], parse_label(r["label"], f"{manifest.name} line {i}"), f"nih{r['patient_id']}",
             "", dict({k: r.get(k, "") for k in keep}, population="adult"))
        for i, r in enumerate(rows, start=2)
    ]


