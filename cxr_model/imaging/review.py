"""One study for review: file bytes -> probability, label, CAM and OOD score in one network pass.

The X-ray review page calls :func:`analyse_study`; it holds no model math itself. The tensor comes
from the one preprocessing path (``read_image`` -> ``to_source`` -> ``EvalTransform``, the pieces
of ``transforms.load_tensor``; the decoded image is kept for display instead of decoding twice).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from cxr_model.imaging.data import CLASSES
from cxr_model.imaging.explain import Faithfulness, explain, faithfulness
from cxr_model.imaging.io import ImageReadError, read_image, sniff_format
from cxr_model.imaging.ood import OodModel
from cxr_model.imaging.transforms import EvalTransform, to_source
from cxr_model.registry import CxrBundle


@dataclass
class Study:
    """A reviewed file. When ``error`` is set (unreadable file) only ``name`` and ``sha256`` are set.

    Attributes:
        gray: the decoded image, pixel contract ``float32 (H, W)`` in [0, 1] (bone bright).
        cam: ``float32 (S, S)`` map of ``method`` for the pneumonia logit.
        ood_score: Mahalanobis distance of the features; ``None`` when no OOD model is available.
        ood_flag: ``True`` when ``ood_score`` is above ``ood_threshold`` (prediction unreliable).
    """

    name: str
    sha256: str
    error: str | None = None
    is_dicom: bool = False
    gray: np.ndarray | None = None
    probability: float | None = None
    label: str | None = None
    threshold: float | None = None
    model_id: str | None = None
    cam: np.ndarray | None = None
    method: str | None = None
    ood_score: float | None = None
    ood_threshold: float | None = None
    ood_flag: bool | None = None


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def analyse_study(bundle: CxrBundle, data: bytes, name: str, method: str = "GradCAM",
                  ood: OodModel | None = None) -> Study:
    """Read, predict, explain and OOD-score one file; an unreadable file gives ``Study.error``.

    One forward pass (plus one backward for gradient CAMs) yields the probability, the CAM and the
    features for the OOD score (see :func:`cxr_model.imaging.explain.explain`).
    """
    sha = file_sha256(data)
    try:
        gray = read_image(data, name)
    except ImageReadError as exc:
        return Study(name, sha, error=str(exc))
    x = EvalTransform(bundle.img_size)(to_source(gray))
    e = explain(bundle, x, method)
    study = Study(name, sha, is_dicom=sniff_format(data) == "DICOM", gray=gray,
                  probability=e.probability, label=CLASSES[int(e.probability >= bundle.threshold)],
                  threshold=bundle.threshold, model_id=bundle.model_id, cam=e.cam, method=method)
    if ood is not None:
        study.ood_score = float(ood.score(e.features)[0])
        study.ood_threshold = ood.threshold
        study.ood_flag = study.ood_score > ood.threshold
    return study


def study_faithfulness(bundle: CxrBundle, data: bytes, name: str, cam: np.ndarray) -> Faithfulness:
    """ROAD faithfulness of ``cam`` for this file (re-derives the model input; a few seconds on CPU)."""
    x = EvalTransform(bundle.img_size)(to_source(read_image(data, name)))
    return faithfulness(bundle, x, cam)
