"""A saved evaluation run folder, read back (EvalRun) and analysed."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cxr_model.imaging.report.analysis import Analysis, analyse
from cxr_model.imaging.runfolder import ERRORS, METRICS, PREDICTIONS, RunFolderError, check_complete


@dataclass
class EvalRun:
    """A saved evaluation run.

    Attributes:
        run_dir: the folder.
        predictions: one row per scored image; ``label`` int 0/1, ``probability`` float.
        metrics: the contents of metrics.json (``{}`` when absent).
        errors: unreadable files, columns ``path``, ``error`` (possibly empty).
    """

    run_dir: Path
    predictions: pd.DataFrame
    metrics: dict
    errors: pd.DataFrame

    def threshold(self, bundle_meta: dict | None = None) -> float:
        """The operating threshold the run was scored at (metrics.json, else the model card, else 0.5)."""
        if isinstance(self.metrics.get("threshold"), (int, float)):
            return float(self.metrics["threshold"])
        if bundle_meta and isinstance(bundle_meta.get("threshold"), dict):
            return float(bundle_meta["threshold"]["value"])
        return 0.5

    @property
    def split(self) -> str:
        """A name for the evaluated set, shown beside every metric.

        A set that shares files with the model's training or validation split (``metrics.json``
        ``overlap``, by sha256) is never called a test: the name says so.
        """
        name = self.run_dir.name
        if self.metrics.get("split"):
            name = str(self.metrics["split"])
        elif self.metrics.get("data"):
            p = Path(str(self.metrics["data"]))
            name = f"{p.parent.name}/{p.name}" if p.parent.name else p.name
        overlap = self.metrics.get("overlap") or {}
        if overlap.get("checked") and not overlap.get("is_test"):
            name += " (overlaps training data: not a test)"
        return name

    def image_roots(self) -> list[Path]:
        """Folders that relative paths in predictions.csv are relative to (the data source's)."""
        roots = []
        data = self.metrics.get("data")
        if data and Path(str(data)).exists():
            p = Path(str(data))
            roots.append(p.parent if p.is_file() else p)
        roots.append(self.run_dir)
        return roots


def load_run(run_dir: str | Path, allow_incomplete: bool = False) -> EvalRun:
    """Read a run folder; raises :class:`RunFolderError` with an actionable message.

    A run that has not finished (its ``INCOMPLETE`` marker is present: still running, killed or
    failed) raises :class:`IncompleteRunError`, unless ``allow_incomplete`` (used only by the run
    itself, to write its report before it declares itself complete).
    """
    run_dir = Path(run_dir).expanduser()
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir}: no such folder")
    if not allow_incomplete:
        check_complete(run_dir)
    pred_path = run_dir / PREDICTIONS
    if not pred_path.exists():
        raise RunFolderError(f"{run_dir}: no {PREDICTIONS}; is this an evaluation run folder (cxr-model evaluate --out)?")
    try:
        pred = pd.read_csv(pred_path, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RunFolderError(f"{pred_path}: not a readable CSV ({exc})") from None
    missing = {"path", "label", "probability"} - set(pred.columns)
    if missing:
        raise RunFolderError(f"{pred_path}: missing column(s) {', '.join(sorted(missing))}")
    try:
        pred["label"] = pred["label"].astype(int)
        pred["probability"] = pred["probability"].astype(float)
    except (TypeError, ValueError) as exc:
        raise RunFolderError(f"{pred_path}: label must be 0/1 and probability a number ({exc})") from None
    if not pred["label"].isin([0, 1]).all():
        raise RunFolderError(f"{pred_path}: label must be 0 or 1")
    metrics = {}
    if (run_dir / METRICS).exists():
        try:
            metrics = json.loads((run_dir / METRICS).read_text())
        except json.JSONDecodeError as exc:
            raise RunFolderError(f"{run_dir / METRICS}: invalid JSON ({exc})") from None
    errors = pd.DataFrame(columns=["path", "error"])
    if (run_dir / ERRORS).exists() and (run_dir / ERRORS).stat().st_size:
        errors = pd.read_csv(run_dir / ERRORS, dtype=str, keep_default_na=False)
    return EvalRun(run_dir, pred, metrics, errors)


def analyse_run(run: EvalRun, threshold: float | None = None, bundle_meta: dict | None = None,
                n_resamples: int = 2000, seed: int = 0) -> Analysis:
    """:func:`~cxr_model.imaging.report.analysis.analyse` for a loaded run at its own threshold by default."""
    t = run.threshold(bundle_meta) if threshold is None else threshold
    return analyse(run.predictions, t, run.split, n_resamples=n_resamples, seed=seed)
