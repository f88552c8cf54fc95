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

Readers (:func:`cxr_model.imaging.report.html.load_run`, the evaluation page) call
:func:`check_complete` and refuse an incomplete folder with :class:`IncompleteRunError`.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from cxr_model.files import write_text

METRICS, PREDICTIONS, ERRORS, REPORT = "metrics.json", "predictions.csv", "errors.csv", "report.html"
INCOMPLETE = "INCOMPLETE"
#: Names whose presence makes a folder an evaluation run folder (safe to replace on a rerun).
RUN_NAMES = {METRICS, PREDICTIONS, ERRORS, REPORT, INCOMPLETE, "shards"}


class RunFolderError(ValueError):
    """A run folder that cannot be read or written; the message names the folder and what is wrong."""


class IncompleteRunError(RunFolderError):
    """A run folder whose run has not finished (still running, killed or failed): its files are partial."""


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


PRED_COLUMNS = ["path", "label", "probability", "predicted", "subtype", "group", "height", "width", "ood", "ood_score",
                "ood_reason",                 "sha256"]


class Interrupted(KeyboardInterrupt):
    """SIGTERM during ``cxr-model evaluate``: unwinds like Ctrl-C, so the DataLoader's workers are
    shut down and reaped and the run folder is marked as stopped, instead of the process vanishing."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


@contextmanager
def sigterm_interrupts():
    """While inside, SIGTERM raises :class:`Interrupted` (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Interrupted(signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _stopped(exc: BaseException) -> str:
    if isinstance(exc, Interrupted):
        return f"interrupted by {signal.Signals(exc.signum).name}"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted by SIGINT (Ctrl-C)"
    return f"stopped by {type(exc).__name__}: {exc}"
