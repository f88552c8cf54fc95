"""Run folders on disk: written behind an ``INCOMPLETE`` marker, finished by atomic renames.

An evaluation run (``cxr-model evaluate --out DIR``) is written in place so that its
predictions can be streamed and flushed as they are computed, and so that a killed run leaves
its partial results where a person will look. What keeps a reader from taking a partial folder
for a result is the marker:

1. :func:`start_run` writes ``INCOMPLETE`` first, then removes everything else in the folder
   (a rerun replaces the whole previous run: no old ``metrics.json`` or ``report.html`` can
   survive beside new predictions).
2. The run streams ``predictions.csv`` and ``errors.csv``; ``metrics.json`` and ``report.html``
   are written to a temporary file and renamed into place (:func:`write_text`).
3. :func:`finish_run` removes the marker, last. A run is complete exactly when the marker is
   gone, whatever killed it and when (SIGKILL and power loss included).

Readers (:func:`cxr_model.evaluation.report.load_run`, the evaluation page) call
:func:`check_complete` and refuse an incomplete folder with :class:`IncompleteRunError`.
"""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

METRICS, PREDICTIONS, ERRORS, REPORT = "metrics.json", "predictions.csv", "errors.csv", "report.html"
INCOMPLETE = "INCOMPLETE"
#: Names whose presence makes a folder an evaluation run folder (safe to replace on a rerun).
RUN_NAMES = {METRICS, PREDICTIONS, ERRORS, REPORT, INCOMPLETE, "shards"}


class RunFolderError(ValueError):
    """A run folder that cannot be read or written; the message names the folder and what is wrong."""


class IncompleteRunError(RunFolderError):
    """A run folder whose run has not finished (still running, killed or failed): its files are partial."""


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


def is_run_folder(folder: Path) -> bool:
    """True when ``folder`` holds a run's files (or the temporary file of a killed first write)."""
    return any(e.name in RUN_NAMES or (e.name.startswith(".") and e.name.split(".tmp-")[0][1:] in RUN_NAMES)
               for e in folder.iterdir())


def start_run(out: str | Path, note: str) -> Path:
    """Make ``out`` an empty run folder marked incomplete; a previous run there is removed.

    Args:
        out: the run folder. It may be missing, empty, or hold an earlier run; a folder holding
            other files is refused (never deleted), so a mistyped ``--out`` cannot wipe anything.
        note: what the run is doing, recorded in the marker (e.g. ``"scoring 300 files from DIR"``).

    Raises:
        RunFolderError: ``out`` is a file, or a non-empty folder that is not a run folder.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not is_run_folder(out):
        raise RunFolderError(f"{out}: holds files that are not an evaluation run; choose a new or empty folder "
                             "(a rerun replaces everything in its folder)")
    out.mkdir(parents=True, exist_ok=True)
    # The marker goes first, so at no moment does the folder look complete while old files are removed.
    write_text(out / INCOMPLETE, _marker(f"started {_now()} (pid {os.getpid()}): {note}; not finished"))
    for entry in out.iterdir():
        if entry.name == INCOMPLETE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return out


def mark_stopped(out: Path, why: str) -> None:
    """Record in the marker why the run stopped (best effort: the marker already says incomplete)."""
    try:
        first = (out / INCOMPLETE).read_text(encoding="utf-8").splitlines()[0]
        write_text(out / INCOMPLETE, _marker(f"{why} at {_now()}; {first}"))
    except (OSError, IndexError):
        pass


def finish_run(out: Path) -> None:
    """Declare the run complete: remove the marker (the last step of a run)."""
    (Path(out) / INCOMPLETE).unlink(missing_ok=True)


def check_complete(run_dir: Path) -> None:
    """Raise :class:`IncompleteRunError` when ``run_dir`` holds an unfinished run."""
    marker = Path(run_dir) / INCOMPLETE
    if not (marker.exists() or marker.is_symlink()):
        return
    try:
        why = marker.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        why = "no details"
    raise IncompleteRunError(f"{run_dir}: incomplete run ({why}). Its files are partial and are not shown as a "
                             "result; run `cxr-model evaluate` into this folder again to replace it.")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _marker(line: str) -> str:
    return (f"{line}\nThis evaluation run did not finish: predictions.csv and errors.csv hold only the files "
            "scored before it stopped. Do not use its numbers.\n")
