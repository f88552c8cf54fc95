"""One study for review: file bytes -> probability, label, CAM and OOD score in one network pass.

The X-ray review page calls :func:`analyse_study`; it holds no model math itself. The tensor comes
from the one preprocessing path (``read_image`` -> ``to_source`` -> ``EvalTransform``, the pieces
of ``transforms.load_tensor``).

Memory: the page caches one :class:`Study` per file and CAM method, so a study keeps only what the
page shows and reuses: a ``uint8`` display copy at most :data:`DISPLAY_MAX_SIDE` pixels on its long
side and the model input, never the full-size float image (a 39 MP film is 156 MB as float32; its
display copy is at most 4 MB). An upload is admitted file by file up to :data:`UPLOAD_MAX_PIXELS`
(:func:`admit_uploads`), from the sizes the files declare, before anything is decoded.
"""
from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from cxr_model.imaging.bundle import CxrBundle
from cxr_model.imaging.dicom_header import (
    HeaderField, Window, apply_window, burned_in_annotation, header_fields, window_presets,
)
from cxr_model.imaging.dicom_context import header_context
from cxr_model.imaging.dicom_pixels import dicom_to_array, read_dicom_dataset
from cxr_model.imaging.explain import Faithfulness, explain, faithfulness
from cxr_model.imaging.formats import MAX_PIXELS, ImageReadError, is_dicom_bytes, sniff_format
from cxr_model.imaging.io import read_image
from cxr_model.imaging.labels import call
from cxr_model.imaging.ood import OodModel
from cxr_model.imaging.route import explain_routed
from cxr_model.imaging.scope import judge

#: Longest side of the cached display image, in pixels (a review screen shows ~1,000-2,000).
DISPLAY_MAX_SIDE = 2048
#: Pixels one upload may hold in total (e.g. ten 18.5 MP full-detector films, or five 39 MP ones).
#: Each file is also capped at ``io.MAX_PIXELS`` (40 MP) by the reader.
UPLOAD_MAX_PIXELS = 200_000_000


@dataclass
class Study:
    """A reviewed file. When ``error`` is set (unreadable file) only ``name``, ``sha256`` and the error are set.

    Attributes:
        error: ``"<file name>: <problem>"``; ``problem`` is the same without the file name (which
            may identify the patient, so the page shows it only on request).
        display: the decoded image for display, ``uint8 (h, w)``, bone bright, long side at most
            :data:`DISPLAY_MAX_SIDE` (aspect kept).
        x: the model input ``float32 (1, 1, S, S)`` (for ROAD, without decoding the file again).
        cam: ``float32 (S, S)`` map of ``method`` for the pneumonia logit.
        ood_score: Mahalanobis distance of the features; ``None`` when no OOD model is available.
        ood_flag: ``True`` when the film is out of scope (prediction unreliable): ``ood_score`` above
            ``ood_threshold``, or the image check's blank / not-frontal rule, or a declared lateral view; ``scope_reason`` says which.
        burned_in: the DICOM declares ``BurnedInAnnotation = YES`` (text in the pixels that may
            identify the patient); ``False`` for other files and DICOMs that do not say so.
        scope_reason: why the study is out of scope (a lateral view its DICOM header declares, a blank
            image, not a frontal chest view, or the OOD distance); ``None`` in scope or unknown.
        population, population_source: the operating point's population and where it came from
            (``"dicom_age"``, ``"image_estimate"``, ``"pooled"``), see ``CxrBundle.population_report``.
        site_profile: the site profile the model used (``None``: the bundled model as is), and
            ``site_profile_sha256`` its content (a profile made again under the same name differs).
        branch: ``"adult"`` when the bundle's adult branch made the call and the map (``x`` is then the
            film read at the branch's size), ``None`` when the bundle itself did.
        branch_prior: the branch weights each cell by where the training films' opacity boxes lie
            (its head's spatial prior), so the call and the map count the lung zones more.
    """

    name: str
    sha256: str
    error: str | None = None
    problem: str | None = None
    is_dicom: bool = False
    display: np.ndarray | None = None
    x: torch.Tensor | None = field(default=None, repr=False)
    probability: float | None = None
    label: str | None = None
    threshold: float | None = None
    model_id: str | None = None
    cam: np.ndarray | None = None
    method: str | None = None
    layer: str | None = None
    ood_score: float | None = None
    ood_threshold: float | None = None
    ood_flag: bool | None = None
    burned_in: bool = False
    scope_reason: str | None = None
    population: str | None = None
    population_source: str | None = None
    site_profile: str | None = None
    site_profile_sha256: str | None = None
    branch: str | None = None
    branch_prior: bool = False

    @property
    def nbytes(self) -> int:
        """Bytes held by the study's arrays (what a cache of it keeps, besides a few numbers)."""
        return sum(int(a.nbytes) for a in (self.display, self.cam) if a is not None) + \
            (self.x.numel() * self.x.element_size() if self.x is not None else 0)


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def study_label(index: int, sha256: str) -> str:
    """A neutral name for the ``index``-th study of an upload (1-based): ``"Study 1 (sha 1a2b3c)"``.

    Shown instead of the file name, which often holds the patient's name or record number.
    """
    return f"Study {index} (sha {sha256[:6]})"


def shrink(image: np.ndarray, max_side: int = DISPLAY_MAX_SIDE) -> np.ndarray:
    """``image`` resized (area averaging, aspect kept) so that its long side is at most ``max_side``."""
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def display_copy(gray: np.ndarray, max_side: int = DISPLAY_MAX_SIDE) -> np.ndarray:
    """The pixel contract image (float ``[0, 1]``) as a bounded ``uint8`` display image."""
    small = shrink(np.asarray(gray, dtype=np.float32), max_side)
    return np.uint8(np.rint(255 * np.clip(small, 0, 1)))


def analyse_study(bundle: CxrBundle, data: bytes, name: str, method: str | None = None,
                  ood: OodModel | None = None, on_forward: Callable[[], None] | None = None) -> Study:
    """Read, predict, explain and OOD-score one file; an unreadable file gives ``Study.error``.

    One forward pass (plus one backward for gradient CAMs) yields the probability, the CAM and the
    features for the OOD score (see :func:`cxr_model.imaging.explain.explain`, which calls
    ``on_forward`` before each forward pass: progress and cancellation of the slow methods).
    """
    sha = file_sha256(data)
    try:
        gray = read_image(data, name)
    except ImageReadError as exc:
        return Study(name, sha, error=str(exc), problem=exc.problem)
    display = display_copy(gray)
    ctx = header_context(data)  # PatientAge -> population; a declared lateral view is out of scope
    # the default method on the layer it was chosen with (explain.json); an adult on the bundle's adult branch
    r = explain_routed(bundle, gray, method, declared=ctx.population, on_forward=on_forward)
    del gray  # the full-size float image is not kept (see the module docstring)
    e = r.e
    is_dicom = sniff_format(data) == "DICOM"  # by content: a PNG named .dcm is no DICOM
    study = Study(name, sha, is_dicom=is_dicom, display=display, x=r.x,
                  probability=e.probability, label=call(e.probability, bundle.threshold),
                  threshold=bundle.threshold, model_id=bundle.model_id, cam=e.cam, method=r.method, layer=r.layer,
                  burned_in=is_dicom and _burned_in(data, name), population=r.population,
                  population_source=r.population_source,
                  site_profile=bundle.site_profile, site_profile_sha256=bundle.site_profile_sha256,
                  branch=r.scorer.meta.get("branch"), branch_prior=bool(r.scorer.meta.get("branch_prior")))
    study.ood_score, study.ood_flag, study.scope_reason = judge(ood, r.features, ctx.scope_reason, r.x_scope)
    study.ood_threshold = ood.threshold if ood is not None else None
    return study


def warm_up(bundle: CxrBundle) -> None:
    """One Grad-CAM on a blank input: PyTorch's first forward and backward set up its kernels and
    autograd (seconds on a cold CPU), which the first upload would otherwise wait for."""
    explain(bundle, torch.zeros(1, 1, bundle.img_size, bundle.img_size), "GradCAM")


def _burned_in(data: bytes, name: str) -> bool:
    try:
        return burned_in_annotation(read_dicom_dataset(data, name))
    except ImageReadError:
        return False


def study_faithfulness(bundle: CxrBundle, study: Study) -> Faithfulness:
    """ROAD faithfulness of the study's CAM on its model input (a few seconds on CPU)."""
    return faithfulness(bundle.scorer(study.population), study.x, study.cam)


# ------------------------------------------------------------------------------------ uploads
def declared_pixels(data: bytes) -> int | None:
    """Pixels a PNG/JPEG/DICOM file says it holds, read from its header (nothing is decoded).

    Returns ``None`` when the header cannot be read; the reader then reports the file's problem.
    """
    try:
        if is_dicom_bytes(data):
            import pydicom

            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
            frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
            return int(ds.Rows) * int(ds.Columns) * max(frames, 1)
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:  # lazy: reads the header only
            return int(img.width) * int(img.height)
    except Exception:  # any unreadable header: the reader gives the clear message later
        return None


def admit_uploads(pixels: list[int | None], budget: int | None = None) -> list[str | None]:
    """Which files of an upload are analysed: ``None`` for each admitted file, else why not.

    Files are taken in upload order while the running total of declared pixels stays within
    ``budget``; a file above the reader's per-file cap is left to the reader (its own clear error,
    no budget used), and a file whose size is unknown is admitted (it fails cleanly when read).
    ``budget`` defaults to :data:`UPLOAD_MAX_PIXELS`.
    """
    budget = UPLOAD_MAX_PIXELS if budget is None else budget
    used, out = 0, []
    for n in pixels:
        if n is None or n > MAX_PIXELS:
            out.append(None)
        elif used + n > budget:
            out.append(f"not analysed: this upload already holds {used / 1e6:.0f} MP of images and this file adds "
                       f"{n / 1e6:.1f} MP, above the {budget / 1e6:.0f} MP limit per upload; review it in a "
                       "separate upload")
        else:
            used += n
            out.append(None)
    return out


# ------------------------------------------------------------------------------------ DICOM view
@dataclass
class DicomView:
    """What the page's DICOM panel shows (bounded like :class:`Study`).

    Attributes:
        raw: modality-LUT values ``float32 (h, w)``, long side at most :data:`DISPLAY_MAX_SIDE`.
        presets: window presets computed on the full-size values.
        monochrome1: the file is MONOCHROME1 (low values white).
        header_masked, header_full: header rows with PHI masked / shown.
        burned_in: ``BurnedInAnnotation = YES``.
    """

    raw: np.ndarray
    presets: dict[str, Window]
    monochrome1: bool
    header_masked: list[HeaderField]
    header_full: list[HeaderField]
    burned_in: bool

    @property
    def _span(self) -> tuple[float, float, float]:
        lo, hi = float(self.raw.min()), float(self.raw.max())
        return lo, hi, max(hi - lo, 1.0)

    @property
    def level_range(self) -> tuple[float, float]:
        """Window centres the level slider offers: the value range widened by half of it each side."""
        lo, hi, span = self._span
        return lo - span / 2, hi + span / 2

    @property
    def width_range(self) -> tuple[float, float]:
        """Window widths the width slider offers: 1 to twice the value range."""
        return 1.0, 2 * self._span[2]

    def clamp_width(self, width: float) -> float:
        """A preset's width inside :attr:`width_range`."""
        low, high = self.width_range
        return float(min(max(width, low), high))

    def windowed(self, window: Window) -> np.ndarray:
        """The display image under ``window`` (MONOCHROME1 inverted)."""
        return apply_window(self.raw, window, self.monochrome1)


def dicom_view(data: bytes, name: str) -> DicomView:
    """Raw pixels for window/level, presets, MONOCHROME1 flag and header rows; raises ImageReadError."""
    ds = read_dicom_dataset(data, name)
    raw = dicom_to_array(ds, name, apply_voi=False)
    presets = window_presets(raw, ds)
    mono1 = str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1"
    return DicomView(np.ascontiguousarray(shrink(raw)), presets, mono1, header_fields(ds, show_phi=False),
                     header_fields(ds, show_phi=True), burned_in_annotation(ds))
