"""Files written atomically (temporary sibling, fsync, rename) and strict JSON."""
from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np


def json_safe(obj):
    """``obj`` with every non-finite float as ``None`` and numpy scalars/arrays as plain Python.

    JSON has no NaN or infinity; ``json.dumps`` would write the non-standard token ``NaN``, which
    strict parsers (browsers, ``jq``) refuse.
    """
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary sibling, flush it to disk, then rename it over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def write_json(path: Path, obj) -> Path:
    """Atomic :func:`write_text` of ``obj`` as strict JSON (non-finite numbers become ``null``)."""
    return write_text(path, json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n")


def count_rows(csv_path: Path) -> int:
    """Data rows of a CSV with a header (quoted fields may hold newlines, so lines are not rows)."""
    if not Path(csv_path).exists():
        return 0
    with open(csv_path, newline="", encoding="utf-8") as fh:
        return max(sum(1 for _ in csv.reader(fh)) - 1, 0)


#: A cell starting with one of these is a formula in spreadsheet programs (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value):
    """A string cell that a spreadsheet would run as a formula, prefixed with ``'``; others unchanged."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value
