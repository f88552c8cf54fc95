"""Localisation of the CAMs on radiologists' boxes: the pointing game and the CAM energy in the boxes.

* Pointing game (Zhang et al., ECCV 2016): does the map's maximum fall inside an opacity box?
* Energy share: the fraction of the map's total (resized to the image) that lies inside the boxes
  (the "energy-based pointing game" of Score-CAM, Wang et al., CVPRW 2020).

Both are measured on the RSNA boxes of the adult NIH films (``nih_adult/manifest.csv``), per
part of the bundle's own split (``splits.csv``): the default CAM method and layer are chosen on
the validation patients only, and the test patients report the chosen pair's figures. Chance is
the mean fraction of the image the boxes cover (where a uniformly random point lands).
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from cxr_model.files import write_json
from cxr_model.imaging.bundle import CxrBundle, load_cxr_bundle
from cxr_model.imaging.explain import CLASS_AGNOSTIC, EXPLAIN_META, METHODS, SLOW_METHODS, compute_cam, explain
from cxr_model.imaging.io import read_image
from cxr_model.imaging.network import cam_layers
from cxr_model.imaging.route import view_of
from cxr_model.imaging.transforms import load_tensor, model_input
from cxr_model.metrics.classification import wilson_interval
from cxr_model.registry import BundleError
from cxr_model.settings import get_settings


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


def box_mask(boxes_xywh: list[list[float]], height: int, width: int) -> np.ndarray:
    """``bool (height, width)``: True inside any box ``[x, y, w, h]`` (pixels, origin top-left)."""
    mask = np.zeros((height, width), dtype=bool)
    for bx, by, bw, bh in boxes_xywh:
        mask[max(int(by), 0):int(np.ceil(by + bh)), max(int(bx), 0):int(np.ceil(bx + bw))] = True
    return mask


def box_area_fraction(boxes_xywh: list[list[float]], height: int, width: int) -> float:
    """Fraction of the image covered by the union of boxes: the hit rate of a random point."""
    return float(box_mask(boxes_xywh, height, width).mean())


def energy_share(cam: np.ndarray, boxes_xywh: list[list[float]], height: int, width: int) -> float:
    """Share of the CAM's total inside the boxes, in [0, 1]; NaN for an all-zero map.

    The ``S x S`` map of the squashed input is resized (bilinear) to ``height x width``, which
    undoes the squash (aspect not kept) exactly as :func:`cam_peak` does for the maximum.
    """
    cam_r = cv2.resize(np.asarray(cam, dtype=np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    cam_r = np.clip(cam_r, 0, None)
    total = float(cam_r.sum())
    return float(cam_r[box_mask(boxes_xywh, height, width)].sum() / total) if total > 0 else float("nan")


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


# ------------------------------------------------------------------------------ boxed adult films
def boxed_films(nih_dir: str | Path, splits_csv: str | Path) -> dict[str, list[tuple[Path, list]]]:
    """The boxed films of ``nih_adult/manifest.csv`` by part of a bundle's split (adult rows of ``splits.csv``).

    Returns:
        ``{split: [(path, boxes_xywh), ...]}``; films not in ``splits.csv`` go under ``"unsplit"``.
    """
    with open(splits_csv, newline="") as fh:
        part = {r["path"]: r["split"] for r in csv.DictReader(fh) if r.get("population", "adult") == "adult"}
    out: dict[str, list] = {}
    with open(Path(nih_dir) / "manifest.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            boxes = json.loads(r["boxes_xywh"] or "[]")
            if boxes:
                out.setdefault(part.get(r["path"], "unsplit"), []).append((Path(nih_dir) / r["path"], boxes))
    return out


def localise(bundle: CxrBundle, films: list[tuple[Path, list]], pairs: list[tuple[str, str | None]]) -> list[dict]:
    """Pointing hit and energy share of every ``(method, layer)`` pair on each film.

    Each film goes through the one preprocessing path once; the boxes are in the pixels of the
    file as read (``read_image``), the frame the maps are mapped back to.
    """
    rows = []
    for path, boxes in films:
        gray = read_image(path)
        h, w = gray.shape
        x = model_input(gray, bundle.img_size)
        chance = box_area_fraction(boxes, h, w)
        for method, layer in pairs:
            cam = explain(bundle, x, method, layer).cam
            rows.append({"file": path.name, "method": method, "layer": layer, "hit": pointing_hit(cam, boxes, h, w),
                         "energy": energy_share(cam, boxes, h, w), "box_fraction": chance})
    return rows


def shown_maps(bundle: CxrBundle, films: list[tuple[Path, list]], pairs: tuple) -> list[dict]:
    """Pointing hit and energy share of the map each film is *shown*: routed as the product routes it
    (population from the image: :func:`~cxr_model.imaging.route.view_of`), with that view's pair,
    ``pairs = (bundle's (method, layer), adult branch's)``."""
    rows = []
    for path, boxes in films:
        gray = read_image(path)
        h, w = gray.shape
        scorer, xs, *_ = view_of(bundle, gray)
        method, layer = pairs[scorer is not bundle]
        cam = explain(scorer, xs, method, layer).cam
        rows.append({"file": path.name, "method": "as shown", "layer": None, "hit": pointing_hit(cam, boxes, h, w),
                     "energy": energy_share(cam, boxes, h, w), "box_fraction": box_area_fraction(boxes, h, w),
                     "view": "adult branch" if scorer is not bundle else "bundle"})
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """One row per ``(method, layer)``: n, hits, pointing rate with Wilson 95% CI, mean energy share
    (all-zero maps count as 0; ``n_flat`` says how many), chance (mean box area share)."""
    out = []
    for key in dict.fromkeys((r["method"], r["layer"]) for r in rows):
        rs = [r for r in rows if (r["method"], r["layer"]) == key]
        hits = sum(r["hit"] for r in rs)
        energy = np.array([r["energy"] for r in rs], dtype=np.float64)
        out.append({"method": key[0], "layer": key[1], "n": len(rs), "hits": hits, "pointing": hits / len(rs),
                    "pointing_ci95": wilson_interval(hits, len(rs)),
                    # an all-zero map highlights nothing: none of its energy is in a box
                    "energy": float(np.nan_to_num(energy, nan=0.0).mean()), "n_flat": int(np.isnan(energy).sum()),
                    "chance": float(np.mean([r["box_fraction"] for r in rs]))})
    return out


def best_pair(table: list[dict]) -> dict:
    """The row that localises best: highest pointing rate, then highest energy share (validation only).

    Only maps of the pneumonia logit compete: a class-agnostic method (:data:`~cxr_model.imaging.explain.
    CLASS_AGNOSTIC`) is measured and listed but cannot be the default.
    """
    return max([r for r in table if r["method"] not in CLASS_AGNOSTIC] or table, key=lambda r: (r["pointing"], r["energy"]))


def pointing_command(model_dir: str | None = None, splits: str | None = None, methods: list[str] | None = None,
                     slow: bool = False, write: bool = False, as_json: bool = False) -> int:
    """``cxr-model pointing``: the localisation table per CAM method and layer, on validation and test patients.

    The pair with the best pointing rate on the *validation* patients (ties: energy share) is the
    default; with ``write`` it is saved as the bundle's ``explain.json`` (bound to the weights' sha256),
    which :func:`cxr_model.imaging.explain.default_cam` reads. Returns 0, or 2 on bad input.
    """
    s = get_settings()
    try:
        bundle = load_cxr_bundle(model_dir or s.cxr_model_dir, device=s.device)
        splits_csv = Path(splits) if splits else bundle.path / "splits.csv"
        films = boxed_films(s.nih_adult_dir, splits_csv)
        unknown = [m for m in methods or [] if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown CAM method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
        if not films.get("val") or not films.get("test"):
            raise ValueError(f"{splits_csv}: no boxed adult film in its val or test part (pass --splits of a bundle "
                             "trained on adults)")
    except (BundleError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    chosen = methods or [m for m in METHODS if slow or m not in SLOW_METHODS]
    pairs = [(m, layer) for m in chosen for layer in cam_layers(bundle.arch)]
    tables = {part: summarise(localise(bundle, films[part], pairs)) for part in ("val", "test")}
    best = best_pair(tables["val"])
    test = next(r for r in tables["test"] if (r["method"], r["layer"]) == (best["method"], best["layer"]))
    branch = {}
    if bundle.branch is not None:  # the adult branch's maps: every boxed film through it, its own default
        branch = {part: summarise(localise(bundle.branch, films[part], pairs)) for part in ("val", "test")}
        b_best = best_pair(branch["val"])
        shown = ((best["method"], best["layer"]), (b_best["method"], b_best["layer"]))  # (bundle's, branch's)
        branch = {"branch_default": {"method": b_best["method"], "layer": b_best["layer"]},
                  "branch_validation": branch["val"], "branch_test": branch["test"],
                  "product_default_on_test": summarise(shown_maps(bundle, films["test"], shown))[0],
                  "product_default_on_validation": summarise(shown_maps(bundle, films["val"], shown))[0]}
    skipped = [m for m in METHODS if m not in chosen]
    result = {"model": bundle.model_id, "model_sha256": bundle.meta.get("sha256"), "method": best["method"],
              "layer": best["layer"], "splits": str(splits_csv),
              "rule": "highest pointing-game rate on the validation patients' boxed adult films (ties: CAM energy "
                      "share in the boxes) among the maps of the pneumonia logit (class-agnostic "
                      f"{', '.join(sorted(CLASS_AGNOSTIC))} listed, not eligible); test patients not used to choose",
              "validation": tables["val"], "test": tables["test"], "default_on_test": test,
              "not_measured": {m: "too slow on CPU (one forward per channel); run with --slow" if m in SLOW_METHODS
                               else "not requested (--methods)" for m in skipped}, **branch}
    if write:
        write_json(bundle.path / EXPLAIN_META, result)
    if as_json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{bundle.model_id}: boxed adult films by {splits_csv} (val n={len(films['val'])}, test n={len(films['test'])})")
    print(f"{'split':5} {'method':10} {'layer':7} {'n':>3} {'hits':>4} {'pointing':>8} {'95% CI':>13} {'energy':>6} {'chance':>6}")
    for part, table in tables.items():
        for r in table:
            lo, hi = r["pointing_ci95"]
            print(f"{part:5} {r['method']:10} {str(r['layer']):7} {r['n']:>3} {r['hits']:>4} {r['pointing']:>8.3f} "
                  f"[{lo:.2f}, {hi:.2f}] {r['energy']:>6.3f} {r['chance']:>6.3f}")
    print(f"default (best on validation): {best['method']} / {best['layer']}; on test patients: pointing "
          f"{test['hits']}/{test['n']} = {test['pointing']:.3f}, energy {test['energy']:.3f}, chance {test['chance']:.3f}")
    for part in ("validation", "test") if branch else ():
        r = branch[f"product_default_on_{part}"]
        print(f"adult branch default: {branch['branch_default']['method']} / {branch['branch_default']['layer']}; the map "
              f"each {part} film is shown (routed by population): {r['hits']}/{r['n']} = {r['pointing']:.3f}, energy {r['energy']:.3f}")
    if skipped:
        print("not measured: " + ", ".join(f"{m} ({why})" for m, why in result["not_measured"].items()))
    if write:
        print(f"wrote {bundle.path / EXPLAIN_META}")
    return 0
