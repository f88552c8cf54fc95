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
from torch import nn

from cxr_model.imaging.bundle import CxrBundle, resolve_bundle
from cxr_model.imaging.formats import ImageReadError, Source
from cxr_model.imaging.io import read_image
from cxr_model.imaging.labels import call
from cxr_model.imaging.network import classifier_head
from cxr_model.imaging.ood import OodError, batch_features, load_ood
from cxr_model.imaging.operating import features_and_logits
from cxr_model.imaging.transforms import EvalTransform, to_source
from cxr_model.registry import BundleError


@dataclass
class Prediction:
    """One file's result. ``error`` is set (and the rest empty) when the file could not be read.

    ``ood`` is ``True`` when the image is outside what the model was made for: unlike the training
    radiographs (OOD distance ``ood_score`` above ``ood_threshold``), a blank image or not a frontal
    chest view; ``ood_reason`` names which (``""`` in scope). Then
    ``label`` is ``None`` (no call; the probability is kept for the record but means nothing).
    The three OOD fields are ``None`` when the bundle has no OOD statistics (scope unknown).
    """

    file: str
    probability: float | None = None
    label: str | None = None
    threshold: float | None = None
    model: str | None = None
    error: str | None = None
    ood_score: float | None = None
    ood: bool | None = None
    ood_threshold: float | None = None
    ood_reason: str | None = None


@torch.inference_mode()
def predict_batch(bundle: CxrBundle, x: torch.Tensor, population=None) -> np.ndarray:
    """Calibrated P(pneumonia) for a ready batch ``(N, 1, S, S)`` float32 -> ``(N,)`` float64.

    A bundle with a population-aware operating point calibrates each film for its population:
    ``population`` (``"child"``/``"adult"``, one for all or one per film, e.g. from DICOM
    PatientAge) where given, else estimated from the same forward's features.
    """
    if bundle.operating_point is None:
        logits = bundle.model(x.to(bundle.device)).squeeze(1)
        return bundle.probability(logits).double().cpu().numpy()
    feats, logits = features_and_logits(bundle.model, bundle.arch, x.to(bundle.device))
    return bundle.probability(logits, features=feats.cpu().numpy(), population=population).double().cpu().numpy()


def predict_source(bundle: CxrBundle, source: Source, name: str | None = None, ood=None,
                   population: str | None = None) -> Prediction:
    """Predict one file (path, bytes or file object); unreadable files give ``error``, not an exception.

    With ``ood`` (an :class:`~cxr_model.imaging.ood.OodModel`) the image is also OOD-scored.
    ``population`` (``"child"``/``"adult"``, e.g. from :func:`~cxr_model.imaging.operating.population_from_age`)
    overrides the image's population estimate (see :func:`predict_batch`).
    """
    name = name or (Path(source).name if isinstance(source, (str, Path)) else getattr(source, "name", "<upload>"))
    try:
        x = EvalTransform(bundle.img_size)(to_source(read_image(source, name))).unsqueeze(0)
    except ImageReadError as exc:
        return Prediction(file=name, error=str(exc))
    p = float(predict_batch(bundle, x, population)[0])
    pred = Prediction(name, p, call(p, bundle.threshold), bundle.threshold, bundle.model_id)
    if ood is not None:
        pred.ood_score, pred.ood, pred.ood_reason = ood.judge(batch_features(bundle, x), x)
        pred.ood_threshold = float(ood.threshold)
        if pred.ood:
            pred.label = None  # out of scope: no call
    return pred


@torch.inference_mode()
def predict_with_features(bundle: CxrBundle, x: torch.Tensor, population=None) -> tuple[np.ndarray, np.ndarray]:
    """One forward: calibrated P(pneumonia) ``(N,)`` float64 and penultimate features ``(N, D)`` float32.

    The same numbers as :func:`predict_batch` (population-aware calibration included) and
    :func:`~cxr_model.imaging.ood.batch_features`, for the cost of one pass (``evaluate`` scores and
    OOD-checks every file).
    """
    feats: list[torch.Tensor] = []
    with bundle.model.hold() as net:
        handle = classifier_head(net, bundle.arch).register_forward_hook(lambda m, i, o: feats.append(i[0].detach()))
        try:
            logits = net(x.to(bundle.device)).squeeze(1)
        finally:
            handle.remove()
    f = feats[0].float().cpu().numpy()
    if bundle.operating_point is None:
        return bundle.probability(logits).double().cpu().numpy(), f
    return bundle.probability(logits, features=f, population=population).double().cpu().numpy(), f


def predict_command(files: list[str], model_dir: str | None, as_json: bool) -> int:
    """``cxr-model predict``: one line per file, with the OOD check; exit 1 if any file failed."""

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
        elif r.ood:
            print(f"{r.file}\tOUT OF SCOPE: {r.ood_reason} (OOD distance {r.ood_score:.1f}, threshold "
                  f"{r.ood_threshold:.1f}); outside what this model was made for, no call\t{r.model}")
        else:
            check = "\tOOD unknown (no OOD statistics)" if r.ood is None else f"\tOOD ok (distance {r.ood_score:.1f})"
            print(f"{r.file}\tP(pneumonia)={r.probability:.4f}\t{r.label} (threshold {r.threshold:.3f})\t{r.model}{check}")
    return 1 if failed else 0


@torch.inference_mode()
def predict_logits(model: nn.Module, sources: torch.Tensor, img_size: int, device, batch: int = 128, shift=None) -> np.ndarray:
    """Raw logits for uint8 sources, optionally after an acquisition shift (see ``shift.py``)."""
    model.eval()
    tf = EvalTransform(img_size)
    out = []
    for i in range(0, len(sources), batch):
        src = sources[i : i + batch]
        if shift is not None:
            src = torch.stack([shift(s) for s in src])
        out.append(model(tf(src).to(device)).float().squeeze(1).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)
