"""Does an evaluated set share files with the model's own training or validation split? (by sha256)

A set that holds any image the model was trained or validated on is not a test of the model: its
figures are optimistic. The bundle's ``splits.csv`` (``path,label,split[,population]``) names
those files; their sha256 come from the data manifests (``kermany/manifest.csv``,
``nih_adult/manifest.csv`` carry a ``sha256`` column), else from hashing the file once, cached by
path, size and modification time in ``<state dir>/sha256-cache.json``.
"""
from __future__ import annotations

import csv
import json
import os
from functools import lru_cache
from pathlib import Path

from cxr_model.files import write_text
from cxr_model.registry import sha256_file

SPLITS = "splits.csv"
#: Parts of a split whose files must not be in a test set.
SEEN = ("train", "val")
#: Where each population's ``splits.csv`` paths are relative to, under the data folder.
POPULATION_DIRS = {"child": ("cxr", "kermany"), "adult": ("cxr", "nih_adult")}


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (the registry's, which checks the weights the same way)."""
    return sha256_file(path)


class HashCache:
    """sha256 of files, remembered by absolute path, size and mtime (a changed file is re-hashed).

    Args:
        path: the JSON cache file, or ``None`` for an in-memory cache only.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else None
        self._d: dict[str, list] = {}
        self._dirty = False
        if self.path and self.path.exists():
            try:
                self._d = json.loads(self.path.read_text())
            except (json.JSONDecodeError, OSError):
                self._d = {}  # a damaged cache only costs a re-hash

    def sha256(self, path: str | Path) -> str:
        """The file's sha256; raises ``OSError`` when it cannot be read."""
        key = os.path.abspath(path)
        st = os.stat(key)
        hit = self._d.get(key)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return hit[2]
        digest = sha256_of(key)
        self._d[key] = [st.st_size, st.st_mtime_ns, digest]
        self._dirty = True
        return digest

    def save(self) -> None:
        if self.path and self._dirty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text(self.path, json.dumps(self._d))
            self._dirty = False


def _manifest_hashes(folder: Path) -> dict[str, str]:
    manifest = folder / "manifest.csv"
    if not manifest.exists():
        return {}
    with open(manifest, newline="") as fh:
        return {r["path"]: r["sha256"] for r in csv.DictReader(fh) if r.get("sha256")}


@lru_cache(maxsize=8)
def _split_hashes(splits_csv: str, mtime_ns: int, data_dir: str, cache_file: str | None) -> tuple[dict, int]:
    cache = HashCache(cache_file)
    manifests = {pop: _manifest_hashes(Path(data_dir).joinpath(*parts)) for pop, parts in POPULATION_DIRS.items()}
    out: dict[str, str] = {}
    unknown = 0
    with open(splits_csv, newline="") as fh:
        for r in csv.DictReader(fh):
            pop = r.get("population") or "child"
            digest = manifests.get(pop, {}).get(r["path"])
            if digest is None:
                try:
                    digest = cache.sha256(Path(data_dir).joinpath(*POPULATION_DIRS.get(pop, ("",))) / r["path"])
                except OSError:
                    unknown += 1
                    continue
            # A file listed in two parts counts as the part the model saw most closely.
            if out.get(digest) not in SEEN:
                out[digest] = r["split"]
    cache.save()
    return out, unknown


def split_hashes(bundle_dir: str | Path, data_dir: str | Path, cache_file: str | Path | None = None) -> tuple[dict[str, str], int]:
    """``{sha256: split}`` of every file in the bundle's ``splits.csv``, and how many could not be hashed.

    Cached in memory per ``splits.csv`` version; raises ``FileNotFoundError`` when the bundle has none.
    """
    splits = Path(bundle_dir) / SPLITS
    if not splits.exists():
        raise FileNotFoundError(f"{splits}: the bundle has no splits.csv, so its training files are unknown")
    return _split_hashes(str(splits), splits.stat().st_mtime_ns, str(data_dir), str(cache_file) if cache_file else None)


def overlap_summary(scored: list[tuple[str, str]], seen: dict[str, str], n_unknown: int = 0) -> dict:
    """How many scored files are files of the model's own split.

    Args:
        scored: ``(path as shown, sha256)`` of each scored file (sha256 ``""`` when it was not hashed).
        seen: :func:`split_hashes`' ``{sha256: split}``.
        n_unknown: files of ``splits.csv`` that could not be hashed (the check is then incomplete).

    Returns:
        ``{"checked": True, "n_files", "n_train", "n_val", "n_test", "is_test", "examples", "n_split_unhashed"}``;
        ``is_test`` is ``False`` as soon as one file was in training or validation.
    """
    counts = {"train": 0, "val": 0, "test": 0}
    examples = []
    for path, digest in scored:
        part = seen.get(digest)
        if part in counts:
            counts[part] += 1
            if part in SEEN and len(examples) < 5:
                examples.append(f"{path} ({part})")
    return {"checked": True, "n_files": len(scored), **{f"n_{k}": v for k, v in counts.items()},
            "is_test": counts["train"] + counts["val"] == 0, "examples": examples, "n_split_unhashed": n_unknown}


def overlap_label(overlap: dict | None) -> str:
    """A short phrase for the report: what the set is with respect to the model's own split."""
    if not overlap or not overlap.get("checked"):
        why = (overlap or {}).get("reason", "not checked (run scored before this check existed)")
        return f"overlap with the model's training data unknown: {why}"
    if not overlap["is_test"]:
        return (f"overlaps the model's training data ({overlap['n_train']} training and {overlap['n_val']} "
                f"validation files of {overlap['n_files']}): not a test")
    return f"no file of the model's training or validation split (checked {overlap['n_files']} files by sha256)"
