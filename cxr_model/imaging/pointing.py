"""The pointing game (Zhang et al., ECCV 2016): does the CAM peak fall in a box?"""
from __future__ import annotations

import numpy as np

from cxr_model.imaging.bundle import CxrBundle
from cxr_model.imaging.explain import compute_cam
from cxr_model.imaging.transforms import load_tensor


# ----------------------------------------------------------------------------------- pointing game
def cam_peak(cam: np.ndarray, height: int, width: int) -> tuple[float, float]:
    """The CAM's maximum mapped to an original image of ``height x width`` pixels.

    The model input is the whole image squashed to a square (aspect not kept, see
    ``transforms.to_source``), so a CAM cell ``(r, c)`` of an ``S x S`` map covers rows
    ``[r, r+1) * height / S`` and columns ``[c, c+1) * width / S``; its centre is returned.

    Returns:
        ``(x, y)`` in original pixel coordinates.
    """
    s_h, s_w = cam.shape
    r, c = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return (c + 0.5) * width / s_w, (r + 0.5) * height / s_h


def pointing_hit(cam: np.ndarray, boxes_xywh: list[list[float]], height: int, width: int) -> bool:
    """Pointing game (Zhang et al., ECCV 2016): does the CAM peak fall inside any box?

    Args:
        cam: ``(S, S)`` map of the squashed model input.
        boxes_xywh: boxes ``[x, y, w, h]`` in original pixel coordinates.
        height, width: the original image size the boxes refer to.
    """
    x, y = cam_peak(cam, height, width)
    return any(bx <= x <= bx + bw and by <= y <= by + bh for bx, by, bw, bh in boxes_xywh)


def box_area_fraction(boxes_xywh: list[list[float]], height: int, width: int) -> float:
    """Fraction of the image covered by the union of boxes: the hit rate of a random point."""
    mask = np.zeros((height, width), dtype=bool)
    for bx, by, bw, bh in boxes_xywh:
        mask[int(by):int(by + bh), int(bx):int(bx + bw)] = True
    return float(mask.mean())


def pointing_game(bundle: CxrBundle, dicom_dir, method: str = "GradCAM") -> list[dict]:
    """Pointing game on the DICOMs of ``dicom_dir/manifest.csv`` that carry ``boxes_xywh``.

    Each file goes through the one preprocessing path; the CAM peak of the squashed ``S x S``
    input is mapped back to the DICOM's ``Rows x Columns`` (see :func:`cam_peak`).

    Returns:
        One row per boxed image: file, hit, peak ``(x, y)``, boxes and the boxes' area fraction
        (the chance hit rate of a uniformly random point).
    """
    import csv
    import json
    from pathlib import Path

    rows = []
    with open(Path(dicom_dir) / "manifest.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            boxes = json.loads(r["boxes_xywh"]) if r.get("boxes_xywh", "").strip() else []
            if not boxes:
                continue
            h, w = int(r["rows"]), int(r["columns"])
            cam = compute_cam(bundle, load_tensor(Path(dicom_dir) / r["path"], bundle.img_size), method)
            x, y = cam_peak(cam, h, w)
            rows.append({"file": r["path"], "hit": pointing_hit(cam, boxes, h, w), "peak_xy": (round(x), round(y)),
                         "boxes": boxes, "box_fraction": box_area_fraction(boxes, h, w)})
    return rows
