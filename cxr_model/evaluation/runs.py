"""Saved evaluation runs in the runs folder (``Settings.runs_dir``), as the dashboard offers them.

The evaluation page lists these instead of taking a typed path, so a user can open only what
``cxr-model evaluate --out`` or the page itself wrote there: not ``/etc``, ``/proc/self`` or
``../..``, and the page never says whether some other folder exists.
"""
from __future__ import annotations

import re
from pathlib import Path

PREDICTIONS = "predictions.csv"
#: Each part of a run's path below the runs folder: letters, digits, ``.``, ``_``, ``-``, not
#: starting with a dot (no ``..``, no hidden or temporary folders).
RUN_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def safe_run_name(text: str) -> str:
    """``text`` made into one valid run folder name (runs of other characters become ``-``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "run"


def saved_runs(runs_dir: str | Path) -> dict[str, Path]:
    """Runs one or two levels below ``runs_dir``, newest first, keyed by their path below it.

    A run is a folder holding predictions.csv. A folder is left out when a part of its name is
    not a :data:`RUN_PART`, or when its real path (symbolic links resolved) or its predictions.csv
    lies outside ``runs_dir``.

    Returns:
        ``{"evaluations/val-20260101-120000": <resolved folder>, ...}``.
    """
    root = Path(runs_dir)
    if not root.is_dir():
        return {}
    real_root = root.resolve()
    found = []
    for pred in [*root.glob(f"*/{PREDICTIONS}"), *root.glob(f"*/*/{PREDICTIONS}")]:
        run = pred.parent
        rel = run.relative_to(root)
        if not all(RUN_PART.fullmatch(part) for part in rel.parts):
            continue
        try:
            real = run.resolve(strict=True)
            if not real.is_relative_to(real_root) or not pred.resolve(strict=True).is_relative_to(real):
                continue
            found.append((pred.stat().st_mtime, rel.as_posix(), real))
        except OSError:  # vanished or unreadable meanwhile: not offered
            continue
    return {name: path for _, name, path in sorted(found, key=lambda t: (-t[0], t[1]))}
