"""Prediction for files and batch evaluation of labelled sets (the `predict` and `evaluate` commands).

Both go through :func:`cxr_model.imaging.transforms.load_tensor`'s pieces (read -> source ->
EvalTransform), the same path as training and the UI.
"""
from __future__ import annotations

import csv
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from cxr_model.evaluation import metrics as M
from cxr_model.imaging.data import CLASSES, Item, list_labelled
from cxr_model.imaging.io import ImageReadError, Source, read_image
from cxr_model.imaging.transforms import EvalTransform, to_source
from cxr_model.registry import BundleError, CxrBundle, load_cxr_bundle
from cxr_model.settings import get_settings


@dataclass
class Prediction:
    """One file's result. ``error`` is set (and the rest empty) when the file could not be read.

    ``ood_flag`` is ``True`` when the image is unlike the training radiographs (OOD distance above
    the bundle's threshold: the probability is unreliable); both OOD fields are ``None`` when the
    bundle has no OOD statistics.
    """

    file: str
    probability: float | None = None
    label: str | None = None
    threshold: float | None = None
    model: str | None = None
    error: str | None = None
    ood_score: float | None = None
    ood_flag: bool | None = None


@torch.inference_mode()
def predict_batch(bundle: CxrBundle, x: torch.Tensor) -> np.ndarray:
    """Calibrated P(pneumonia) for a ready batch ``(N, 1, S, S)`` float32 -> ``(N,)`` float64."""
    logits = bundle.model(x.to(bundle.device)).squeeze(1)
    return bundle.probability(logits).double().cpu().numpy()


def predict_source(bundle: CxrBundle, source: Source, name: str | None = None, ood=None) -> Prediction:
    """Predict one file (path, bytes or file object); unreadable files give ``error``, not an exception.

    With ``ood`` (an :class:`~cxr_model.imaging.ood.OodModel`) the image is also OOD-scored.
    """
    name = name or (Path(source).name if isinstance(source, (str, Path)) else getattr(source, "name", "<upload>"))
    try:
        x = EvalTransform(bundle.img_size)(to_source(read_image(source, name))).unsqueeze(0)
    except ImageReadError as exc:
        return Prediction(file=name, error=str(exc))
    p = float(predict_batch(bundle, x)[0])
    pred = Prediction(name, p, CLASSES[int(p >= bundle.threshold)], bundle.threshold, bundle.model_id)
    if ood is not None:
        from cxr_model.imaging.ood import batch_features

        pred.ood_score = float(ood.score(batch_features(bundle, x))[0])
        pred.ood_flag = pred.ood_score > ood.threshold
    return pred


def resolve_bundle(model_dir: str | Path | None) -> CxrBundle:
    return load_cxr_bundle(model_dir or get_settings().cxr_model_dir)


def predict_command(files: list[str], model_dir: str | None, as_json: bool) -> int:
    """``cxr-model predict``: one line per file, with the OOD check; exit 1 if any file failed."""
    from cxr_model.imaging.ood import OodError, load_ood

    try:
        bundle = resolve_bundle(model_dir)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        ood = load_ood(bundle)
    except OodError as exc:
        ood = None
        print(f"note: out-of-distribution check unavailable: {exc}", file=sys.stderr)
    failed = 0
    for f in files:
        r = predict_source(bundle, f, name=f, ood=ood)
        failed += r.error is not None
        if as_json:
            print(json.dumps(asdict(r)))
        elif r.error:
            print(f"ERROR {r.error}")
        else:
            check = "" if r.ood_flag is None else (
                f"\tOOD: unlike the training radiographs (distance {r.ood_score:.1f} > {ood.threshold:.1f}), unreliable"
                if r.ood_flag else f"\tOOD ok (distance {r.ood_score:.1f})")
            print(f"{r.file}\tP(pneumonia)={r.probability:.4f}\t{r.label} (threshold {r.threshold:.3f})\t{r.model}{check}")
    return 1 if failed else 0


# ------------------------------------------------------------------------------------ evaluation
class FileDataset(Dataset):
    """Labelled files -> ``(tensor, index, error, (height, width))``; unreadable files yield an error."""

    def __init__(self, items: list[Item], img_size: int):
        self.items, self.tf = items, EvalTransform(img_size)
        self.img_size = img_size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        it = self.items[i]
        try:
            gray = read_image(it.path)
            return self.tf(to_source(gray)), i, "", gray.shape
        except ImageReadError as exc:
            return torch.zeros(1, self.img_size, self.img_size), i, str(exc), (0, 0)


def _collate(batch):
    ok = [b for b in batch if not b[2]]
    x = torch.stack([b[0] for b in ok]) if ok else torch.zeros(0)
    return x, [b[1] for b in ok], [(b[1], b[2]) for b in batch if b[2]], [b[3] for b in ok]


PRED_COLUMNS = ["path", "label", "probability", "predicted", "subtype", "group", "height", "width"]


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

    Predictions are streamed to disk batch by batch; nothing per image is kept in memory, and
    the metrics are computed afterwards from the CSV's label and probability columns. Unreadable files go to ``errors.csv`` and do not stop the run.

    Args:
        data: a Kaggle-layout folder, a ``path,label`` CSV, or a list of items.
        progress: called as ``progress(done, total)`` after each batch (the UI's progress bar).
        shard: ``(rank, world)``: score only ``items[rank::world]`` (used under torchrun).
        finalize: compute ``metrics.json`` and ``report.html`` (off for the shards of a torchrun run).

    Returns:
        The metrics dict written to ``metrics.json``.
    """
    from tqdm import tqdm

    items = data if isinstance(data, list) else list_labelled(data)
    rank, world = shard
    items = items[rank::world]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    loader = DataLoader(FileDataset(items, bundle.img_size), batch_size=batch_size, num_workers=workers,
                        collate_fn=_collate, persistent_workers=False)
    done = 0
    root = Path(data) if not isinstance(data, list) else None
    base = root.parent if root is not None and root.is_file() else root
    with open(out / "predictions.csv", "w", newline="") as pf, open(out / "errors.csv", "w", newline="") as ef:
        pw, ew = csv.writer(pf), csv.writer(ef)
        extra = sorted({k for it in items for k in it.extra if k not in PRED_COLUMNS})
        pw.writerow(PRED_COLUMNS + extra)
        ew.writerow(["path", "error"])
        bar = tqdm(total=len(items), desc="evaluate", unit="img", disable=not show_bar, file=sys.stderr)
        for x, idx, errs, sizes in loader:
            for i, msg in errs:
                ew.writerow([_rel(items[i].path, base), msg])
            if idx:
                p = predict_batch(bundle, x)
                for j, i in enumerate(idx):
                    it = items[i]
                    pw.writerow([_rel(it.path, base), it.label, f"{p[j]:.6f}", int(p[j] >= bundle.threshold),
                                 it.subtype or ("normal" if it.label == 0 else ""), it.group, *sizes[j],
                                 *(it.extra.get(k, "") for k in extra)])
            done += len(idx) + len(errs)
            bar.update(len(idx) + len(errs))
            if progress:
                progress(done, len(items))
        bar.close()
    if not finalize:
        return {}
    return finalize_run(out, bundle, data_label=str(data if not isinstance(data, list) else f"{len(items)} items"))


def finalize_run(out: Path, bundle: CxrBundle, data_label: str = "", report: bool = True) -> dict:
    """Compute ``metrics.json`` (and, if ``report``, ``report.html``) from a run folder's streamed CSVs.

    Reads only the label and probability columns, so memory stays at two numbers per image.
    """
    import pandas as pd

    preds = pd.read_csv(out / "predictions.csv", usecols=["label", "probability"])
    with open(out / "errors.csv") as fh:
        n_errors = sum(1 for _ in fh) - 1
    metrics = {"n": len(preds), "n_errors": n_errors, "model": bundle.model_id, "data": data_label}
    metrics.update(M.summary(preds["label"].to_numpy(), preds["probability"].to_numpy(), bundle.threshold))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if report:
        from cxr_model.evaluation.report import write_report

        write_report(out, bundle.meta, bundle=bundle)  # the same report.html as the evaluation page
    return metrics


def _rel(path: Path, base: Path | None) -> str:
    try:
        return str(path.relative_to(base)) if base is not None else str(path)
    except ValueError:
        return str(path)


def evaluate_command(data: str, model_dir: str | None, out: str, batch_size: int = 64, workers: int = 2) -> int:
    """``cxr-model evaluate``; under ``torchrun`` each process scores a shard and rank 0 gathers.

    Prints the headline metrics and where the files are.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    try:
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
    ci = m["auroc_ci95"]
    print(f"n={m['n']} errors={m['n_errors']} AUROC={m['auroc']:.4f} [{ci[0]:.4f}, {ci[1]:.4f}] "
          f"sens={m['sensitivity']:.3f} spec={m['specificity']:.3f} acc={m['accuracy']:.3f} at threshold {m['threshold']:.3f}")
    print(f"wrote {Path(out) / 'metrics.json'}, predictions.csv, errors.csv, report.html")
    return 0


def _evaluate_distributed(data: str, bundle: CxrBundle, out: Path, batch_size: int, workers: int) -> dict:
    """Shard the set over the torchrun processes (any number of nodes); rank 0 gathers the CSVs.

    Each rank writes ``out/shards/rank<r>/``; the output folder must be shared by all nodes.
    """
    import torch.distributed as dist

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        shard_dir = out / "shards" / f"rank{rank}"
        run_evaluation(data, bundle, shard_dir, batch_size=batch_size, workers=workers, show_bar=rank == 0,
                       shard=(rank, world), finalize=False)
        dist.barrier()
        if rank != 0:
            return {}
        for name in ("predictions.csv", "errors.csv"):
            with open(out / name, "w") as dst:
                for r in range(world):
                    lines = (out / "shards" / f"rank{r}" / name).read_text().splitlines(keepends=True)
                    dst.writelines(lines if r == 0 else lines[1:])
        metrics = finalize_run(out, bundle, data_label=str(data))
        metrics["shards"] = world
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        return metrics
    finally:
        dist.barrier()
        dist.destroy_process_group()
