"""Batch evaluation of a labelled set (the ``evaluate`` command): a run folder of scored files.

Files go through the same path as ``predict``, training and the UI (read -> source ->
EvalTransform) in DataLoader workers; the run folder is written as
:mod:`cxr_model.imaging.runfolder` describes (marked incomplete until it is finished).
"""
from __future__ import annotations

import csv
import os
import signal
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from cxr_model.files import count_rows, json_safe, write_json, write_text
from cxr_model.imaging.bundle import CxrBundle, resolve_bundle
from cxr_model.imaging.data import Item, scan_labelled
from cxr_model.imaging.datasets import FileDataset, _collate
from cxr_model.imaging.overlap import overlap_label
from cxr_model.imaging.dicom_context import path_context
from cxr_model.imaging.predict import branch_scores, predict_with_features
from cxr_model.imaging.report.html import report_html
from cxr_model.imaging.report.analysis import summary_of
from cxr_model.imaging.report.run import analyse_run, load_run
from cxr_model.imaging.runfolder import (ERRORS, INCOMPLETE, METRICS, PREDICTIONS, PRED_COLUMNS, REPORT, RunFolderError,
                                         _stopped, finish_run, mark_stopped, sigterm_interrupts, start_run)
from cxr_model.imaging.site import apply_site, describe
from cxr_model.imaging.scope import file_sha256, ood_or_reason, scope_cells, scope_metrics
from cxr_model.metrics import classification as M
from cxr_model.registry import BundleError


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

    Returns:
        The metrics dict written to ``metrics.json`` (non-finite values as ``None``).
    """
    items, unlabelled = (data, []) if isinstance(data, list) else scan_labelled(data)
    rank, world = shard
    items, unlabelled = items[rank::world], unlabelled[rank::world]
    root = Path(data) if not isinstance(data, list) else None
    base = root.parent if root is not None and root.is_file() else root
    label = str(data if not isinstance(data, list) else f"{len(items)} items")
    out = Path(out_dir)
    _refuse_data_inside(out, root, items)
    start_run(out, f"scoring {len(items) + len(unlabelled)} files from {label}")
    done = [0]
    try:
        _score(items, unlabelled, bundle, out, base, batch_size, workers, progress, show_bar, done)
        if not finalize:
            return {}
        return finalize_run(out, bundle, data_label=label)
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


def _rel(path: Path, base: Path | None) -> str:
    try:
        return str(path.relative_to(base)) if base is not None else str(path)
    except ValueError:
        return str(path)


def _num(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def evaluate_command(data: str, model_dir: str | None, out: str, batch_size: int = 64, workers: int = 2,
                     site: str | None = None) -> int:
    """``cxr-model evaluate``; under ``torchrun`` each process scores a shard and rank 0 gathers.

    Prints the headline metrics and where the files are. Exit status: 0 when at least one file
    was scored, 1 when none was (or the run failed), 2 for bad arguments, and 128 + the signal
    number when interrupted (the folder then stays marked incomplete).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    try:
        with sigterm_interrupts():
            bundle = apply_site(resolve_bundle(model_dir), site)
            if world > 1:
                m = _evaluate_distributed(data, bundle, Path(out), batch_size, workers)
                if not m:
                    return 0
            else:
                m = run_evaluation(data, bundle, out, batch_size=batch_size, workers=workers)
    except (BundleError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"{_stopped(exc)}: {_left(out)}", file=sys.stderr)
        return 128 + getattr(exc, "signum", signal.SIGINT)
    except (OSError, RuntimeError) as exc:  # disk full, a DataLoader worker killed by the OS...
        print(f"error: {type(exc).__name__}: {exc}; {_left(out)}", file=sys.stderr)
        return 1
    if not m["n"]:
        print(f"error: none of the {m['n_errors']} files could be scored; the reasons are in {Path(out) / ERRORS}",
              file=sys.stderr)
        return 1
    ci = m["auroc_ci95"]
    print(f"n={m['n']} errors={m['n_errors']} AUROC={_num(m['auroc'], 4)} [{_num(ci[0], 4)}, {_num(ci[1], 4)}] "
          f"sens={_num(m['sensitivity'])} spec={_num(m['specificity'])} acc={_num(m['accuracy'])} "
          f"at threshold {m['threshold']:.3f}; {m['site']}")
    if m.get("n_out_of_scope") is None:
        print(f"out-of-scope check {m.get('ood_check')}")
    else:
        ins = m["in_scope"]
        print(f"out of scope (OOD): {m['n_out_of_scope']} of {m['n']} ({m['ood_rate']:.1%}); in scope n={ins['n']} "
              f"AUROC={_num(ins.get('auroc'), 4)} sens={_num(ins.get('sensitivity'))} spec={_num(ins.get('specificity'))}")
    if not (m.get("overlap") or {}).get("is_test", True):
        print(f"WARNING: {overlap_label(m['overlap'])}")
    print(f"wrote {Path(out) / 'metrics.json'}, predictions.csv, errors.csv, report.html")
    return 0


def _left(out: str | Path) -> str:
    marker = Path(out) / INCOMPLETE
    return f"{out} is marked incomplete (see {marker})" if marker.exists() else f"nothing was written to {out}"


def _evaluate_distributed(data: str, bundle: CxrBundle, out: Path, batch_size: int, workers: int) -> dict:
    """Shard the set over the torchrun processes (any number of nodes); rank 0 gathers the CSVs.

    Each rank writes ``out/shards/rank<r>/``; the output folder must be shared by all nodes.
    Rank 0 prepares the run folder (marked incomplete) before any rank writes into it.
    """
    import torch.distributed as dist

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        problem = [None]
        if rank == 0:
            try:
                start_run(out, f"gathering {world} shards of {data}")
            except (RunFolderError, OSError) as exc:
                problem = [str(exc)]
        dist.broadcast_object_list(problem, src=0)
        if problem[0]:
            raise RunFolderError(problem[0])
        run_evaluation(data, bundle, out / "shards" / f"rank{rank}", batch_size=batch_size, workers=workers,
                       show_bar=rank == 0, shard=(rank, world), finalize=False)
        dist.barrier()
        if rank != 0:
            return {}
        try:
            for name in (PREDICTIONS, ERRORS):
                _gather_csv([out / "shards" / f"rank{r}" / name for r in range(world)], out / name)
            return finalize_run(out, bundle, data_label=str(data), extra={"shards": world})
        except BaseException as exc:
            mark_stopped(out, _stopped(exc))
            raise
    finally:
        dist.barrier()
        dist.destroy_process_group()


def _gather_csv(parts: list[Path], dest: Path) -> None:
    """Concatenate CSVs with one header (row by row: quoted fields may hold newlines)."""
    with open(dest, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        for k, part in enumerate(parts):
            with open(part, newline="", encoding="utf-8") as src:
                rows = csv.reader(src)
                header = next(rows, None)
                if k == 0 and header:
                    w.writerow(header)
                w.writerows(rows)
