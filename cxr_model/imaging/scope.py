"""What an evaluation run says about scope: files out of the model's scope (OOD) and overlap with its split.

``evaluate`` writes per file ``ood`` (1 out of scope, 0 in scope, blank unknown), ``ood_score``
(the Mahalanobis distance, see :mod:`cxr_model.imaging.ood`), ``scope_reason`` (why: the distance,
or a lateral view the DICOM header declares) and ``sha256``; :func:`scope_metrics`
turns those columns into the ``metrics.json`` block: ``n_out_of_scope``, the OOD rate, the same
metrics over the in-scope files only, and whether the set overlaps the model's training data.
The top-level metrics stay over every readable file, so runs compare across model versions.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cxr_model.imaging.bundle import CxrBundle
from cxr_model.imaging.ood import OodError, OodModel, load_ood
from cxr_model.imaging.overlap import overlap_summary, sha256_of, split_hashes
from cxr_model.metrics import classification as M
from cxr_model.settings import get_settings

SCOPE_COLUMNS = ["ood", "ood_score", "scope_reason", "sha256"]


def ood_or_reason(bundle: CxrBundle) -> tuple[OodModel | None, str]:
    """The bundle's OOD check, or ``None`` and why it is unavailable (then every file's scope is unknown)."""
    try:
        return load_ood(bundle), ""
    except OodError as exc:
        return None, str(exc)


def file_sha256(path: Path) -> str:
    """sha256 of a scored file, ``""`` when it cannot be re-read (the overlap check then skips it)."""
    try:
        return sha256_of(path)
    except OSError:
        return ""


def scope_cells(verdict: tuple[float, bool, str] | None, declared: str | None = None) -> list:
    """The ``ood``, ``ood_score``, ``scope_reason`` cells of one predictions.csv row from the scope
    rule's verdict (:meth:`~cxr_model.imaging.ood.OodModel.verdicts`); without an OOD check only a
    reason the file declares (e.g. a lateral view) decides, else the cells are blank (unknown)."""
    if verdict is None or not np.isfinite(verdict[0]):
        return [1, "", declared] if declared else ["", "", ""]
    score, outside, reason = verdict
    return [int(outside), f"{score:.3f}", reason]


def judge(ood: OodModel | None, features, declared: str | None = None,
          x=None) -> tuple[float | None, bool | None, str | None]:
    """One film's ``(distance, out of scope, reason)`` under :meth:`OodModel.verdicts`.

    Without an OOD check (``ood`` is ``None``) only a declared reason decides (out of scope);
    otherwise the scope is unknown (``None``, ``None``, ``None``).
    """
    if ood is None:
        return None, (True if declared else None), declared or None
    score, out, reason = ood.judge(features, x, declared)
    return score, out, reason or None


def scope_metrics(predictions_csv: str | Path, bundle: CxrBundle, threshold: float) -> dict:
    """The scope block of ``metrics.json`` from a run's predictions.csv.

    Returns:
        ``{"ood_check", "ood_threshold", "n_out_of_scope", "ood_rate", "in_scope", "overlap"}``:
        ``n_out_of_scope``/``ood_rate``/``in_scope`` are ``None`` when no file has an OOD result
        (the bundle has no OOD statistics; ``ood_check`` says why). ``in_scope`` holds the same
        metrics as the top level (:func:`cxr_model.metrics.classification.summary`), over the
        files with ``ood == 0`` only.
    """
    cols = {"path", "label", "probability", *SCOPE_COLUMNS}
    preds = pd.read_csv(predictions_csv, usecols=lambda c: c in cols, keep_default_na=False, na_values=[""])
    ood, why = ood_or_reason(bundle)
    flags = pd.to_numeric(preds["ood"], errors="coerce") if "ood" in preds else pd.Series(np.nan, index=preds.index)
    known = flags.notna()
    out: dict = {"ood_threshold": ood.threshold if ood is not None else None}
    if not known.any():
        out.update(ood_check=f"unavailable: {why or 'no file has an OOD result'}", n_out_of_scope=None,
                   ood_rate=None, in_scope=None)
    else:
        inside = known & (flags == 0)
        reasons = preds.loc[flags == 1, "scope_reason"].fillna("") if "scope_reason" in preds else pd.Series(dtype=str)
        out.update(ood_check="Mahalanobis distance of the penultimate features, and where the bundle has it the "
                             "image check (blank image, not a frontal chest view); see the model's ood.json",
                   n_out_of_scope=int((flags == 1).sum()),
                   out_of_scope_by_reason={str(k): int(v) for k, v in reasons.value_counts().items()}, n_scope_unknown=int((~known).sum()),
                   ood_rate=float((flags == 1).sum() / known.sum()),
                   in_scope=M.summary(preds.loc[inside, "label"].to_numpy(), preds.loc[inside, "probability"].to_numpy(),
                                      threshold) if inside.any() else {"n": 0})
    out["overlap"] = overlap_of(preds, bundle)
    return out


def overlap_of(preds: pd.DataFrame, bundle: CxrBundle) -> dict:
    """:func:`~cxr_model.imaging.overlap.overlap_summary` of a predictions table against the bundle's splits.csv."""
    if "sha256" not in preds:
        return {"checked": False, "reason": "predictions.csv has no sha256 column"}
    s = get_settings()
    try:
        seen, unknown = split_hashes(bundle.path, s.data_dir, s.state_dir / "sha256-cache.json")
    except FileNotFoundError as exc:
        return {"checked": False, "reason": str(exc)}
    scored = [(str(p), str(h) if isinstance(h, str) else "") for p, h in zip(preds["path"], preds["sha256"])]
    return overlap_summary(scored, seen, unknown)
