"""Batch evaluation of a labelled set (the ``evaluate`` command): a run folder of scored files.

Files go through the same path as ``predict``, training and the UI (read -> source ->
EvalTransform) in DataLoader workers; the run folder is written as
:mod:`cxr_model.evaluation.runfolder` describes (marked incomplete until it is finished).
"""
from __future__ import annotations

import csv
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from cxr_model.evaluation import metrics as M
from cxr_model.evaluation.runfolder import (
    ERRORS, INCOMPLETE, METRICS, PREDICTIONS, REPORT, RunFolderError, count_rows, finish_run, json_safe, mark_stopped,
    start_run, write_json, write_text,
)
from cxr_model.imaging.data import Item, scan_labelled
from cxr_model.imaging.io import ImageReadError, read_image
from cxr_model.imaging.predict import predict_batch, resolve_bundle
from cxr_model.imaging.transforms import EvalTransform, to_source
from cxr_model.registry import BundleError, CxrBundle


class FileDataset(Dataset):
    """Labelled files -> ``(tensor, index, error, (height, width))``; unreadable files yield an error.

    Any exception while reading or transforming one file (not only :class:`ImageReadError`)
    becomes that file's error, so one hostile file can never stop a DataLoader worker or the run.
    """

    def __init__(self, items: list[Item], img_size: int):
        self.items, self.tf = items, EvalTransform(img_size)
        self.img_size = img_size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        it = self.items[i]
        try:
            gray = read_image(it.path)
            x = self.tf(to_source(gray))
            if not torch.isfinite(x).all():
                raise ImageReadError(it.path.name, "gives non-finite pixel values (NaN or infinity)")
            return x, i, "", gray.shape
        except ImageReadError as exc:
            msg = str(exc)
        except Exception as exc:  # noqa: BLE001 - a reader bug must cost one file, not the run
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            msg = f"{it.path.name}: could not be read ({detail})"
        return torch.zeros(1, self.img_size, self.img_size), i, msg, (0, 0)


def _collate(batch):
    ok = [b for b in batch if not b[2]]
    x = torch.stack([b[0] for b in ok]) if ok else torch.zeros(0)
    return x, [b[1] for b in ok], [(b[1], b[2]) for b in batch if b[2]], [b[3] for b in ok]


PRED_COLUMNS = ["path", "label", "probability", "predicted", "subtype", "group", "height", "width"]


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

    The run folder is written behind an ``INCOMPLETE`` marker (:mod:`cxr_model.evaluation.runfolder`):
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
                    p = predict_batch(bundle, x)
                    for j, i in enumerate(idx):
                        it = items[i]
                        if not np.isfinite(p[j]):
                            ew.writerow([_rel(it.path, base), f"{it.path.name}: the model gave a non-finite probability"])
                            continue
                        pw.writerow([_rel(it.path, base), it.label, f"{p[j]:.6f}", int(p[j] >= bundle.threshold),
                                     it.subtype or ("normal" if it.label == 0 else ""), it.group, *sizes[j],
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

    Reads only the label and probability columns, so memory stays at two numbers per image.
    ``n_errors`` counts CSV rows (an error message may span lines). Undefined metrics (one class,
    no file scored) are ``null`` in the JSON, never ``NaN``.
    """
    import pandas as pd

    out = Path(out)
    preds = pd.read_csv(out / PREDICTIONS, usecols=["label", "probability"])
    metrics = {"n": len(preds), "n_errors": count_rows(out / ERRORS), "model": bundle.model_id, "data": data_label}
    metrics.update(M.summary(preds["label"].to_numpy(), preds["probability"].to_numpy(), bundle.threshold))
    metrics.update(extra or {})
    metrics = json_safe(metrics)
    write_json(out / METRICS, metrics)
    if report:
        from cxr_model.evaluation.report import load_run, report_html

        # the same report.html as the evaluation page
        write_text(out / REPORT, report_html(load_run(out, allow_incomplete=True), bundle.meta, bundle=bundle))
    finish_run(out)
    return metrics


def _rel(path: Path, base: Path | None) -> str:
    try:
        return str(path.relative_to(base)) if base is not None else str(path)
    except ValueError:
        return str(path)


def _num(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def evaluate_command(data: str, model_dir: str | None, out: str, batch_size: int = 64, workers: int = 2) -> int:
    """``cxr-model evaluate``; under ``torchrun`` each process scores a shard and rank 0 gathers.

    Prints the headline metrics and where the files are. Exit status: 0 when at least one file
    was scored, 1 when none was (or the run failed), 2 for bad arguments, and 128 + the signal
    number when interrupted (the folder then stays marked incomplete).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    try:
        with sigterm_interrupts():
            bundle = resolve_bundle(model_dir)
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
          f"at threshold {m['threshold']:.3f}")
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
