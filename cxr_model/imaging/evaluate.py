"""Batch evaluation of a labelled set: a run folder of scored files (the command: ``evaluate_command``).

Files go through the same path as ``predict``, training and the UI (read -> source ->
EvalTransform) in DataLoader workers; the run folder is written as
:mod:`cxr_model.imaging.runfolder` describes (marked incomplete until it is finished).
"""
from __future__ import annotations

import csv
import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from cxr_model.files import count_rows, json_safe, write_json, write_text
from cxr_model.imaging.bundle import CxrBundle
from cxr_model.imaging.data import Item, scan_labelled
from cxr_model.imaging.datasets import FileDataset, _collate
from cxr_model.imaging.dicom_context import path_context
from cxr_model.imaging.predict import branch_scores, predict_with_features
from cxr_model.imaging.report.html import report_html
from cxr_model.imaging.report.analysis import summary_of
from cxr_model.imaging.report.run import analyse_run, load_run
from cxr_model.imaging.runfolder import (ERRORS, METRICS, PREDICTIONS, PRED_COLUMNS, REPORT, RunFolderError, _stopped,
                                         finish_run, mark_stopped, start_run)
from cxr_model.imaging.site import describe
from cxr_model.imaging.scope import file_sha256, ood_or_reason, scope_cells, scope_metrics
from cxr_model.imaging.splits import OWN_SPLIT_NAMES, own_split_items
from cxr_model.metrics import classification as M


def run_evaluation(
    data: str | Path | list[Item],
    bundle: CxrBundle,
    out_dir: str | Path,
    batch_size: int = 64,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
    show_bar: bool = True,
    shard: tuple[int, int] = (0, 1),
    finalize: bool = True,
    root: str | Path | None = None,
    split: str | None = None,
) -> dict:
    """Score a labelled set and write ``predictions.csv``, ``errors.csv`` and ``metrics.json``.

    The run folder is written behind an ``INCOMPLETE`` marker (:mod:`cxr_model.imaging.runfolder`):
    anything already in ``out_dir`` from an earlier run is removed first, predictions are streamed
    and flushed batch by batch (nothing per image is kept in memory), ``metrics.json`` and
    ``report.html`` are renamed into place, and the marker goes last. A run that is killed or
    fails stays marked incomplete, and readers refuse it. Every file found is accounted for:
    scored in ``predictions.csv`` or named with its problem in ``errors.csv``.

    Args:
        data: a Kaggle-layout folder, a ``path,label`` CSV, or a list of items.
        progress: called as ``progress(done, total)`` after each batch (the UI's progress bar).
        shard: ``(rank, world)``: score only ``items[rank::world]`` (used under torchrun).
        finalize: compute ``metrics.json`` and ``report.html`` (off for the shards of a torchrun run).
        root: for a list of items, the folder their paths are written relative to (``metrics.json`` ``data``).
        split: the set's name beside every metric (``metrics.json`` ``split``; default: from ``data``).

    Returns:
        The metrics dict written to ``metrics.json`` (non-finite values as ``None``).
    """
    items, unlabelled = (data, []) if isinstance(data, list) else scan_labelled(data)
    rank, world = shard
    items, unlabelled = items[rank::world], unlabelled[rank::world]
    root = Path(data) if not isinstance(data, list) else (Path(root) if root is not None else None)
    base = root.parent if root is not None and root.is_file() else root
    label = str(data if not isinstance(data, list) else (root if root is not None else f"{len(items)} items"))
    out = Path(out_dir)
    _refuse_data_inside(out, root, items)
    start_run(out, f"scoring {len(items) + len(unlabelled)} files from {label}")
    done = [0]
    try:
        _score(items, unlabelled, bundle, out, base, batch_size, workers, progress, show_bar, done)
        if not finalize:
            return {}
        return finalize_run(out, bundle, data_label=label, extra={"split": split} if split else None)
    except BaseException as exc:
        mark_stopped(out, f"{_stopped(exc)} after {done[0]} of {len(items) + len(unlabelled)} files")
        raise


def _refuse_data_inside(out: Path, root: Path | None, items: list[Item]) -> None:
    """A rerun empties its folder, so the folder must not hold the data being scored."""
    if not out.is_dir():
        return
    o = os.path.abspath(out)
    paths = [root] if root is not None else []
    if root is None or not root.is_dir():  # a list or a CSV: the files it names may lie anywhere
        paths += [it.path for it in items]
    for p in paths:
        a = os.path.abspath(p)
        if a == o or a.startswith(o + os.sep):
            raise RunFolderError(f"{out}: holds the data being evaluated ({p}); choose another output folder")


def _score(items, unlabelled, bundle, out, base, batch_size, workers, progress, show_bar, done) -> None:
    from tqdm import tqdm

    total = len(items) + len(unlabelled)
    loader = DataLoader(FileDataset(items, bundle.img_size), batch_size=batch_size, num_workers=workers,
                        collate_fn=_collate, persistent_workers=False)
    ood, _ = ood_or_reason(bundle)  # None: every file's scope is unknown (metrics.json says why)
    extra = sorted({k for it in items for k in it.extra if k not in PRED_COLUMNS})
    with open(out / PREDICTIONS, "w", newline="", encoding="utf-8") as pf, \
            open(out / ERRORS, "w", newline="", encoding="utf-8") as ef:
        pw, ew = csv.writer(pf), csv.writer(ef)
        pw.writerow(PRED_COLUMNS + extra)
        ew.writerow(["path", "error"])
        ew.writerows([_rel(p, base), msg] for p, msg in unlabelled)
        done[0] = len(unlabelled)
        bar = tqdm(total=total, initial=done[0], desc="evaluate", unit="img", disable=not show_bar, file=sys.stderr)
        batches = iter(loader)
        try:
            for x, idx, errs, sizes in batches:
                for i, msg in errs:
                    ew.writerow([_rel(items[i].path, base), msg])
                if idx:
                    # the DICOM header's age chooses the population, its view may put a film out of scope
                    ctx = [path_context(items[i].path) for i in idx]
                    declared = [c.population for c in ctx]
                    p, feats = predict_with_features(bundle, x, declared)  # one forward: probability and OOD features
                    verdicts = (ood.verdicts(feats, x, [c.scope_reason for c in ctx]) if ood is not None
                                else [None] * len(idx))
                    pops = bundle.population_report(feats, declared)
                    p = branch_scores(bundle, p, [items[i].path for i in idx], [q for q, _ in pops])  # adults: 448 px branch
                    for j, i in enumerate(idx):
                        it = items[i]
                        if not np.isfinite(p[j]):
                            ew.writerow([_rel(it.path, base), f"{it.path.name}: the model gave a non-finite probability"])
                            continue
                        pw.writerow([_rel(it.path, base), it.label, f"{p[j]:.6f}", int(p[j] >= bundle.threshold),
                                     it.subtype or ("normal" if it.label == 0 else ""), it.group, *sizes[j],
                                     *scope_cells(verdicts[j], ctx[j].scope_reason), file_sha256(it.path),
                                     pops[j][0] or "", pops[j][1] or "",
                                     *(it.extra.get(k, "") for k in extra)])
                pf.flush()  # a killed run keeps every row scored so far
                ef.flush()
                done[0] += len(idx) + len(errs)
                bar.update(len(idx) + len(errs))
                if progress:
                    progress(done[0], total)
        finally:
            # Join the worker processes now (also on SIGTERM/Ctrl-C), so none is left behind or unreaped.
            shutdown = getattr(batches, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()
            bar.close()


def finalize_run(out: Path, bundle: CxrBundle, data_label: str = "", report: bool = True,
                 extra: dict | None = None) -> dict:
    """Compute ``metrics.json`` (and, if ``report``, ``report.html``) from a run folder's streamed CSVs,
    then mark the run complete.

    With ``report`` the run is analysed once and both files come from that analysis (the same
    report.html as the evaluation page); without it only the label and probability columns are
    read, so memory stays at two numbers per image. ``n_errors`` counts CSV rows (an error message
    may span lines). Undefined metrics (one class, no file scored) are ``null`` in the JSON, never ``NaN``.
    The top-level metrics are over every scored file; :func:`~cxr_model.imaging.scope.scope_metrics`
    adds ``n_out_of_scope``, ``ood_rate``, the in-scope metrics and the overlap with the model's split.
    """
    out = Path(out)
    head = {"n_errors": count_rows(out / ERRORS), "model": bundle.model_id, "data": data_label,
            "site_profile": bundle.meta.get("site_profile") or None, "site": describe(bundle)}
    extra = {**scope_metrics(out / PREDICTIONS, bundle, bundle.threshold), **(extra or {})}
    if report:
        run = load_run(out, allow_incomplete=True)
        run.metrics = {"n": len(run.predictions), **head, **extra}  # the split name says "not a test" on overlap
        a = analyse_run(run, threshold=bundle.threshold)
        metrics = json_safe({"n": len(run.predictions), **head, **summary_of(a), **(extra or {})})
    else:
        preds = pd.read_csv(out / PREDICTIONS, usecols=["label", "probability"])
        metrics = {"n": len(preds), **head}
        metrics.update(M.summary(preds["label"].to_numpy(), preds["probability"].to_numpy(), bundle.threshold))
        metrics = json_safe({**metrics, **(extra or {})})
    write_json(out / METRICS, metrics)
    if report:
        run.metrics = metrics
        write_text(out / REPORT, report_html(run, bundle.meta, bundle=bundle, analysis=a))
    finish_run(out)
    return metrics


def evaluate_own_split(bundle: CxrBundle, split: str, out_dir: str | Path, data_dir: str | Path, **kwargs) -> dict:
    """:func:`run_evaluation` of the bundle's own ``split`` (``"test"`` or ``"val"``; both populations, from the
    data folder), paths relative to its ``cxr/`` folder, the set named in ``metrics.json`` ("own held-out test
    split (the model's splits.csv)"; ``model`` says which model) so every metric carries it."""
    items = own_split_items(bundle, data_dir, split)
    name = f"{OWN_SPLIT_NAMES.get(split, f'own {split} split')} (the model's splits.csv)"
    return run_evaluation(items, bundle, out_dir, root=Path(data_dir) / "cxr", split=name, **kwargs)


def _rel(path: Path, base: Path | None) -> str:
    try:
        return str(path.relative_to(base)) if base is not None else str(path)
    except ValueError:
        return str(path)
