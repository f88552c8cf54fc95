"""The ``explain`` command: per file the probability, the CAM method and layer, where the map peaks
(``peak_xy`` in the original image's pixels) and, with ``--out``, the overlay PNG.

Files go through the one preprocessing path (read -> source -> EvalTransform). The model sees
the whole image squashed to a square (aspect not kept), so the map's maximum is mapped back
with the image's own height and width (:func:`cxr_model.imaging.pointing.cam_peak`). A file that
cannot be read gives one error naming it; the other files still go through.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cxr_model.imaging.bundle import CxrBundle, resolve_bundle
from cxr_model.imaging.dicom_context import path_context
from cxr_model.imaging.explain import METHODS, overlay
from cxr_model.imaging.formats import ImageReadError
from cxr_model.imaging.io import read_image
from cxr_model.imaging.labels import call
from cxr_model.imaging.network import cam_layers
from cxr_model.imaging.ood import OodError, load_ood
from cxr_model.imaging.pointing import cam_peak
from cxr_model.imaging.route import explain_routed
from cxr_model.imaging.scope import judge
from cxr_model.registry import BundleError


@dataclass
class FileExplanation:
    """One file's map. ``error`` is set (and the rest empty) when the file could not be explained.

    ``peak_xy`` is ``[x, y]``: the pixel (column, row; origin top-left) of the original image, as
    read (EXIF orientation applied; DICOM ``Columns x Rows``), where the map is highest.
    ``label`` is ``None`` when the file is out of scope (``ood`` true).
    """

    file: str
    probability: float | None = None
    label: str | None = None
    method: str | None = None
    layer: str | None = None
    peak_xy: list[int] | None = None
    width: int | None = None
    height: int | None = None
    ood: bool | None = None
    ood_score: float | None = None
    overlay: str | None = None
    model: str | None = None
    error: str | None = None
    scope_reason: str | None = None
    population_source: str | None = None


def peak_pixel(cam: np.ndarray, height: int, width: int) -> list[int]:
    """``[x, y]`` pixel of a ``height x width`` image holding the maximum of a squashed-input map."""
    x, y = cam_peak(cam, height, width)
    return [min(int(x), width - 1), min(int(y), height - 1)]


def explain_file(bundle: CxrBundle, path: str | Path, method: str | None, layer: str | None, ood=None,
                 out_dir: Path | None = None, taken: set[str] | None = None) -> FileExplanation:
    """Explain one file; an unreadable file gives ``error``, not an exception."""
    name = str(path)
    try:
        gray = read_image(path, Path(path).name)
    except ImageReadError as exc:
        return FileExplanation(file=name, error=str(exc))
    except OSError as exc:
        return FileExplanation(file=name, error=f"{Path(path).name}: cannot be read ({exc.strerror or exc})")
    h, w = gray.shape
    ctx = path_context(path)  # DICOM PatientAge -> population; a declared lateral view is out of scope
    ro = explain_routed(bundle, gray, method, layer, declared=ctx.population)  # an adult: the adult branch
    e = ro.e
    r = FileExplanation(name, e.probability, call(e.probability, bundle.threshold), ro.method,
                        ro.layer or cam_layers(bundle.arch)[0], peak_pixel(e.cam, h, w), w, h, model=bundle.model_id)
    r.population_source = ro.population_source
    r.ood_score, r.ood, r.scope_reason = judge(ood, ro.features, ctx.scope_reason, ro.x_scope)
    if r.ood:
        r.label = None  # out of scope: no call
    if out_dir is not None:
        r.overlay = str(_save_overlay(out_dir, Path(path), overlay(gray, e.cam), taken if taken is not None else set()))
    return r


def _save_overlay(out_dir: Path, path: Path, rgb: np.ndarray, taken: set[str]) -> Path:
    """``<stem>_cam.png`` in ``out_dir``; a second file of the same stem gets ``_2``, ``_3``..."""
    stem, k = f"{path.stem}_cam", 1
    while f"{stem}.png" in taken:
        k += 1
        stem = f"{path.stem}_cam_{k}"
    taken.add(f"{stem}.png")
    dest = out_dir / f"{stem}.png"
    Image.fromarray(rgb).save(dest)
    return dest


def explain_command(files: list[str], model_dir: str | None, method: str | None, layer: str | None,
                    as_json: bool, out: str | None) -> int:
    """``cxr-model explain``: one line per file; exit 1 if any file failed, 2 for bad arguments."""
    try:
        bundle = resolve_bundle(model_dir)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # unnamed method/layer: each film's scorer's default pair (the bundle's, or its adult branch's)
    if method not in (None, *METHODS) or layer not in (None, *cam_layers(bundle.arch)):
        print(f"error: unknown method {method!r} or layer {layer!r}; methods: {', '.join(METHODS)}; layers: "
              f"{', '.join(cam_layers(bundle.arch))}", file=sys.stderr)
        return 2
    try:
        ood = load_ood(bundle)
    except OodError as exc:
        ood = None
        print(f"note: out-of-distribution check unavailable: {exc}", file=sys.stderr)
    out_dir = Path(out) if out else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    failed = 0
    for f in files:
        try:
            r = explain_file(bundle, f, method, layer, ood, out_dir, taken)
        except Exception as exc:  # unforeseen: still one error line, and the files after it go through
            r = FileExplanation(file=f, error=f"{f}: cannot be explained ({type(exc).__name__}: {exc})")
        failed += r.error is not None
        if as_json:
            print(json.dumps(asdict(r)))
        elif r.error:
            print(f"ERROR {r.error}")
        else:
            scope = "" if r.ood is None else (f"\tOUT OF SCOPE: no call ({r.scope_reason})" if r.ood else "\tin scope")
            print(f"{r.file}\tP(pneumonia)={r.probability:.4f}\t{r.label}\t{r.method}/{r.layer} peak at x={r.peak_xy[0]}, "
                  f"y={r.peak_xy[1]} of {r.width} x {r.height}{scope}" + (f"\t{r.overlay}" if r.overlay else ""))
    return 1 if failed else 0
