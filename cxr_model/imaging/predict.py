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
from cxr_model.imaging.dicom_context import header_context
from cxr_model.imaging.formats import ImageReadError, Source, _as_bytes
from cxr_model.imaging.io import read_image
from cxr_model.imaging.labels import call
from cxr_model.imaging.network import classifier_head
from cxr_model.imaging.ood import OodError, load_ood
from cxr_model.imaging.operating import features_and_logits
from cxr_model.imaging.scope import judge
from cxr_model.imaging.site import apply_site, describe
from cxr_model.imaging.transforms import EvalTransform, model_input
from cxr_model.registry import BundleError


@dataclass
class Prediction:
    """One file's result. ``error`` is set (and the rest empty) when the file could not be read.

    ``ood`` is ``True`` when the image is outside what the model was made for: unlike the training
    radiographs (OOD distance ``ood_score`` above ``ood_threshold``), a blank image or not a frontal
    chest view, or a lateral view its DICOM header declares; ``scope_reason`` names which. Then
    ``label`` is ``None`` (no call; the probability is kept for the record but means nothing).
    The three OOD fields are ``None`` when the bundle has no OOD statistics (scope unknown).
    ``population`` is the operating point's population and
    ``population_source`` where it came from (``"dicom_age"``, ``"image_estimate"``, ``"pooled"``);
    ``site_profile`` names the site profile used (``None``: the bundled model as is).
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
    scope_reason: str | None = None
    population: str | None = None
    population_source: str | None = None
    site_profile: str | None = None


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
    feats = bundle.scope_features(x, feats.cpu().numpy())
    return bundle.probability(logits, features=feats, population=population).double().cpu().numpy()


def predict_source(bundle: CxrBundle, source: Source, name: str | None = None, ood=None,
                   population: str | None = None) -> Prediction:
    """Predict one file (path, bytes or file object); unreadable files give ``error``, not an exception.

    With ``ood`` (an :class:`~cxr_model.imaging.ood.OodModel`) the image is also OOD-scored. A
    DICOM's header is read too (:mod:`~cxr_model.imaging.dicom_context`): its PatientAge gives the
    population, and a lateral view is out of scope (even without an OOD check). ``population``
    (``"child"``/``"adult"``) overrides both the header's and the image's estimate.
    """
    name = name or (Path(source).name if isinstance(source, (str, Path)) else getattr(source, "name", "<upload>"))
    try:
        data = _as_bytes(source, name)
        gray = read_image(data, name)
    except ImageReadError as exc:
        return Prediction(file=name, error=str(exc), site_profile=bundle.site_profile)
    x = model_input(gray, bundle.img_size).unsqueeze(0)
    ctx = header_context(data)
    declared = population or ctx.population
    p, feats = predict_with_features(bundle, x, declared)
    (pop, pop_source), = bundle.population_report(feats, [declared])
    scorer = bundle.scorer(pop)
    if scorer is not bundle:  # an adult: the bundle's 448 px branch makes the call
        p = predict_batch(scorer, model_input(gray, scorer.img_size).unsqueeze(0), pop)
    pred = Prediction(name, float(p[0]), call(float(p[0]), bundle.threshold), bundle.threshold, bundle.model_id,
                      population=pop, population_source=pop_source, site_profile=bundle.site_profile)
    pred.ood_score, pred.ood, pred.scope_reason = judge(ood, feats, ctx.scope_reason, x)
    pred.ood_threshold = float(ood.threshold) if ood is not None else None
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
    f = bundle.scope_features(x, feats[0].float().cpu().numpy())
    if bundle.operating_point is None:
        return bundle.probability(logits).double().cpu().numpy(), f
    return bundle.probability(logits, features=f, population=population).double().cpu().numpy(), f


def branch_scores(bundle: CxrBundle, p: np.ndarray, paths: list, populations: list[str | None]) -> np.ndarray:
    """``p`` with the films the bundle's adult branch scores (:meth:`CxrBundle.scorer`) scored by it,
    each file read again at the branch's size; one that cannot be read again gets NaN."""
    rows = [j for j, pop in enumerate(populations) if bundle.scorer(pop) is not bundle]
    if not rows:
        return p
    p = np.array(p, dtype=np.float64)
    for j in rows:
        try:
            x = model_input(read_image(paths[j]), bundle.branch.img_size).unsqueeze(0)
        except (ImageReadError, OSError):
            p[j] = np.nan
            continue
        p[j] = predict_batch(bundle.branch, x, populations[j])[0]
    return p


def predict_command(files: list[str], model_dir: str | None, as_json: bool, site: str | None = None) -> int:
    """``cxr-model predict [--site NAME]``: one line per file, with the OOD check; exit 1 if any file failed."""
    try:
        bundle = resolve_bundle(model_dir)
        ood = load_ood(bundle)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OodError as exc:
        ood = None
        print(f"note: out-of-distribution check unavailable: {exc}", file=sys.stderr)
    try:
        bundle = apply_site(bundle, site)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not as_json:
        print(f"# {describe(bundle)}", file=sys.stderr)
    failed = 0
    for f in files:
        try:
            r = predict_source(bundle, f, name=f, ood=ood)
        except Exception as exc:  # unforeseen: still one error line, and the files after it are scored
            r = Prediction(file=f, error=f"{f}: cannot be scored ({type(exc).__name__}: {exc})", site_profile=site)
        failed += r.error is not None
        pop = f"\tpopulation {r.population} ({r.population_source})" if r.population_source else ""
        if as_json:
            print(json.dumps(asdict(r)))
        elif r.error:
            print(f"ERROR {r.error}")
        elif r.ood:
            print(f"{r.file}\tOUT OF SCOPE: {r.scope_reason}; outside what this model was made for, no call\t{r.model}")
        else:
            check = "\tOOD unknown (no OOD statistics)" if r.ood is None else f"\tOOD ok (distance {r.ood_score:.1f})"
            print(f"{r.file}\tP(pneumonia)={r.probability:.4f}\t{r.label} (threshold {r.threshold:.3f})\t{r.model}"
                  f"{check}{pop}")
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
