"""Prediction for files (the `predict` command); batch evaluation is in :mod:`cxr_model.imaging.evaluate`.

Both go through :func:`cxr_model.imaging.transforms.load_tensor`'s pieces (read -> source ->
EvalTransform), the same path as training and the UI.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from cxr_model.imaging.data import CLASSES
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
        try:
            r = predict_source(bundle, f, name=f, ood=ood)
        except Exception as exc:  # unforeseen: still one error line, and the files after it are scored
            r = Prediction(file=f, error=f"{f}: cannot be scored ({type(exc).__name__}: {exc})")
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


_MOVED = {"FileDataset", "PRED_COLUMNS", "run_evaluation", "finalize_run", "evaluate_command"}


def __getattr__(name: str):
    """The evaluation moved to :mod:`cxr_model.imaging.evaluate`; old imports from here keep working."""
    if name in _MOVED:
        from cxr_model.imaging import evaluate

        return getattr(evaluate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
