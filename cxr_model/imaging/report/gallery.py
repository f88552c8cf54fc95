"""The failure gallery: the most confident false negatives and false positives, as thumbnails.

Grad-CAM comes from :mod:`cxr_model.imaging.explain` when that module and a loaded model are
available; otherwise the gallery shows the radiographs alone and says why.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from cxr_model.imaging.explain import compute_cam, overlay
from cxr_model.imaging.formats import ImageReadError
from cxr_model.imaging.io import read_image
from cxr_model.imaging.transforms import load_tensor

THUMB_PX = 192


@dataclass
class GalleryItem:
    """One failure case. ``image_png``/``cam_png`` are PNG bytes (``None`` when unavailable)."""

    kind: str  # "false negative" or "false positive"
    path: str
    label: int
    probability: float
    image_png: bytes | None = None
    cam_png: bytes | None = None
    note: str = ""


def failure_cases(predictions: pd.DataFrame, threshold: float, k: int = 6) -> dict[str, pd.DataFrame]:
    """The ``k`` most confident mistakes of each kind at ``threshold``.

    False negatives are pneumonia cases called normal, lowest probability first; false positives
    are normal cases called pneumonia, highest probability first.
    """
    called = predictions["probability"] >= threshold
    fn = predictions[(predictions["label"] == 1) & ~called].sort_values("probability", kind="mergesort")
    fp = predictions[(predictions["label"] == 0) & called].sort_values("probability", ascending=False, kind="mergesort")
    return {"false negative": fn.head(k), "false positive": fp.head(k)}


def png_bytes(rgb_or_gray: np.ndarray) -> bytes:
    """Encode a uint8 ``(H, W)`` or ``(H, W, 3)`` array, or a float ``(H, W)`` in [0, 1], as PNG."""
    arr = rgb_or_gray
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _thumbnail(gray: np.ndarray, px: int) -> np.ndarray:
    h, w = gray.shape
    scale = px / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    img = Image.fromarray(np.clip(np.rint(gray * 255), 0, 255).astype(np.uint8)).resize(size, Image.LANCZOS)
    return np.asarray(img, dtype=np.float32) / 255.0


def _cam_overlay(bundle, path: Path, thumb: np.ndarray, method: str, alpha: float) -> tuple[bytes | None, str]:
    try:
        cam = np.asarray(compute_cam(bundle, load_tensor(path, bundle.img_size), method=method), dtype=np.float32)
        # The model saw the whole radiograph stretched to a square, so the map covers the whole
        # image: resizing it to the thumbnail's shape puts each cell back where it came from.
        cam_img = Image.fromarray(np.clip(cam * 255, 0, 255).astype(np.uint8)).resize(
            (thumb.shape[1], thumb.shape[0]), Image.BILINEAR)
        note = "" if cam.max() > 0 else "Grad-CAM is blank: no region raised P(pneumonia)"
        return png_bytes(np.asarray(overlay(thumb, np.asarray(cam_img, np.float32) / 255.0, alpha))), note
    except Exception as exc:  # a CAM failure must not take the report down; say so on the card
        return None, f"Grad-CAM failed: {exc}"


def resolve_image(path: str, roots: list[Path], allowed: list[Path] | None = None) -> Path | None:
    """Find a predictions.csv path: as given, else relative to each root in turn.

    Args:
        allowed: when given, only a file whose real path (symbolic links and ``..`` resolved) lies
            inside one of these folders is returned. predictions.csv is a file anyone who can
            write a run folder controls; without this, a row naming ``/etc/...`` or
            ``../../secret.png`` would put that file on the page.

    Returns:
        The file, or ``None`` when it is missing *or* not allowed (the caller cannot tell which,
        so the page does not reveal what exists outside the allowed folders).
    """
    p = Path(path)
    candidates = [p] if p.is_absolute() else [root / p for root in roots] + [p]
    fences = None if allowed is None else [Path(a).resolve() for a in allowed]
    for c in candidates:
        if fences is not None:
            real = c.resolve()
            if not any(real.is_relative_to(f) for f in fences):
                continue
        if c.is_file():
            return c
    return None


def gallery_item(kind: str, path: str, label: int, probability: float, roots: list[Path], bundle=None,
                 method: str = "GradCAM", alpha: float = 0.4, px: int = THUMB_PX,
                 allowed: list[Path] | None = None) -> GalleryItem:
    """One card of the gallery: thumbnail, Grad-CAM overlay when ``bundle`` is given, or a note.

    ``allowed`` confines the images read to these folders (see :func:`resolve_image`).
    """
    g = GalleryItem(kind, str(path), int(label), float(probability))
    found = resolve_image(g.path, roots, allowed)
    if found is None:
        g.note = "image file not found"
        return g
    try:
        thumb = _thumbnail(read_image(found), px)
    except ImageReadError as exc:
        g.note = str(exc)
        return g
    g.image_png = png_bytes(thumb)
    if bundle is not None:
        g.cam_png, g.note = _cam_overlay(bundle, found, thumb, method, alpha)
    else:
        g.note = "no model loaded: radiograph without Grad-CAM"
    return g


def build_gallery(failures: dict[str, pd.DataFrame], roots: list[Path], bundle=None, method: str = "GradCAM",
                  alpha: float = 0.4, px: int = THUMB_PX, allowed: list[Path] | None = None) -> list[GalleryItem]:
    """Thumbnails (and Grad-CAM overlays when ``bundle`` is given) for :func:`failure_cases`.

    Args:
        roots: folders that relative paths in predictions.csv may be relative to.
        bundle: a loaded :class:`~cxr_model.registry.CxrBundle`, or ``None`` for no CAM.
        allowed: folders the images must lie in (``None``: any; the CLI reading its own run).
    """
    return [gallery_item(kind, row.path, row.label, row.probability, roots, bundle, method, alpha, px, allowed)
            for kind, df in failures.items() for row in df.itertuples(index=False)]
