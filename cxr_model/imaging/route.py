"""Which view of a bundle scores and explains a film, in one place for the page, ``explain`` and ``pointing``.

A bundle with an adult branch (:mod:`~cxr_model.imaging.branch`) first reads the film at its own
input size: that forward gives the features the population model and the OOD check were fitted
on. A film the operating point then treats as adult (DICOM PatientAge, else the image's estimate)
is scored and explained by the branch, on the film read again at the branch's size; every other
film by the bundle itself, as before. A bundle without a branch makes one pass, as it always did.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from cxr_model.imaging.bundle import CxrBundle
from cxr_model.imaging.explain import Explanation, cam_choice, explain
from cxr_model.imaging.predict import predict_with_features
from cxr_model.imaging.transforms import model_input


@dataclass
class Routed:
    """One film's explanation by the view that made its call.

    Attributes:
        e: the explanation (probability, CAM of ``x``) from ``scorer``.
        scorer: the bundle or its adult branch (:meth:`CxrBundle.scorer`).
        x: the scorer's input ``(1, 1, S, S)`` (what the CAM and ROAD refer to).
        x_scope, features: the bundle's own input and penultimate features ``(D,)``, on which the
            population and the scope (OOD distance, image check) are judged.
        population, population_source: as :meth:`CxrBundle.population_report`.
        method, layer: the CAM computed (:func:`~cxr_model.imaging.explain.cam_choice` of the scorer).
    """

    e: Explanation
    scorer: CxrBundle
    x: torch.Tensor
    x_scope: torch.Tensor
    features: np.ndarray
    population: str | None
    population_source: str | None
    method: str
    layer: str | None


def view_of(bundle: CxrBundle, gray: np.ndarray, declared: str | None = None):
    """``(scorer, x_scorer, x, features (1, D) or None, population, source)`` of one decoded film.

    ``features`` is ``None`` for a bundle without a branch (then ``scorer`` is the bundle, and the
    population is known only after the scorer's own forward: :func:`explain_routed` makes one pass)."""
    x = model_input(gray, bundle.img_size).unsqueeze(0)
    if bundle.branch is None:
        return bundle, x, x, None, None, None
    _, feats = predict_with_features(bundle, x, declared)
    (pop, src), = bundle.population_report(feats, [declared])
    scorer = bundle.scorer(pop)
    return scorer, (x if scorer is bundle else model_input(gray, scorer.img_size).unsqueeze(0)), x, feats, pop, src


def explain_routed(bundle: CxrBundle, gray: np.ndarray, method: str | None = None, layer: str | None = None,
                   declared: str | None = None, on_forward: Callable[[], None] | None = None) -> Routed:
    """Probability and CAM of one decoded film (``gray``, the pixel contract) by the view that scores it;
    ``method``/``layer`` not named: that view's default pair (:func:`~cxr_model.imaging.explain.cam_choice`)."""
    scorer, xs, x, feats, pop, src = view_of(bundle, gray, declared)
    m, lay = cam_choice(scorer, method, layer)
    e = explain(scorer, xs, m, lay, on_forward=on_forward, population=pop if scorer is not bundle else declared)
    if feats is None:
        feats = e.features[None]
        (pop, src), = bundle.population_report(feats, [declared])
    return Routed(e, scorer, xs, x, feats[0].astype(np.float32), pop, src, m, lay)
