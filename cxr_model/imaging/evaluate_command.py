"""The ``cxr-model evaluate`` command: one process, or torchrun shards that rank 0 gathers.

Scoring itself is :func:`cxr_model.imaging.evaluate.run_evaluation`; this module handles arguments,
exit status, what is printed, and the distributed case.
"""
from __future__ import annotations

import csv
import os
import signal
import sys
from pathlib import Path

from cxr_model.imaging.bundle import CxrBundle, resolve_bundle
from cxr_model.imaging.evaluate import evaluate_own_split, finalize_run, run_evaluation
from cxr_model.imaging.overlap import overlap_label
from cxr_model.imaging.runfolder import (ERRORS, INCOMPLETE, PREDICTIONS, RunFolderError, _stopped, mark_stopped,
                                         sigterm_interrupts, start_run)
from cxr_model.imaging.site import apply_site
from cxr_model.registry import BundleError
from cxr_model.settings import get_settings


def _num(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def evaluate_command(data: str | None, model_dir: str | None, out: str, batch_size: int = 64, workers: int = 2,
                     site: str | None = None, split: str | None = None) -> int:
    """``cxr-model evaluate``; under ``torchrun`` each process scores a shard and rank 0 gathers.

    ``split`` (instead of ``data``): the bundle's own ``"test"`` or ``"val"`` films
    (:func:`~cxr_model.imaging.splits.own_split_items`, under the settings' data folder).

    Prints the headline metrics and where the files are. Exit status: 0 when at least one file
    was scored, 1 when none was (or the run failed), 2 for bad arguments, and 128 + the signal
    number when interrupted (the folder then stays marked incomplete).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    try:
        with sigterm_interrupts():
            bundle = apply_site(resolve_bundle(model_dir), site)
            if split is not None:
                if world > 1:
                    raise ValueError("--split is scored in one process; run it without torchrun")
                m = evaluate_own_split(bundle, split, out, get_settings().data_dir, batch_size=batch_size,
                                       workers=workers)
            elif world > 1:
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
