"""Where the CAM peaks fall on the boxed adult films, and whether a mis-registered map would hit more.

    .venv/bin/python benchmarks/cam_peaks.py [--model-dir DIR] [--pairs GradCAM/layer4 EigenCAM/layer4 ...]

For each method/layer pair, on the boxed adult films of the bundle's val and test parts (RSNA
boxes in the 512 px stored image, the frame ``read_image`` gives): the pointing hit rate of the
peak as computed, of the same peak transposed (x <-> y) and mirrored (x -> W - x), the share of
peaks in each ninth of the image (3 x 3 grid: rows top to bottom, columns left to right as
displayed; the patient's left is on the right), and the mean box coverage (chance). If the map
were transposed or mirrored by a bug, the transposed/mirrored rate would beat the computed one.
"""
from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

from cxr_model.imaging.bundle import load_cxr_bundle
from cxr_model.imaging.explain import explain
from cxr_model.imaging.io import read_image
from cxr_model.imaging.pointing import box_mask, boxed_films
from cxr_model.imaging.transforms import EvalTransform, to_source
from cxr_model.settings import get_settings


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model-dir", default=None)
    p.add_argument("--pairs", nargs="+", default=["GradCAM/layer4", "EigenCAM/layer4", "GradCAM/layer3", "LayerCAM/layer2"])
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    s = get_settings()
    bundle = load_cxr_bundle(args.model_dir or s.cxr_model_dir, device=s.device)
    films = boxed_films(s.nih_adult_dir, bundle.path / "splits.csv")
    films = films.get("val", []) + films.get("test", [])
    tf = EvalTransform(bundle.img_size)
    res = {"model": bundle.model_id, "n": len(films), "pairs": {}}
    peaks = {pair: [] for pair in args.pairs}
    chance = []
    for path, boxes in films:
        gray = read_image(path)
        h, w = gray.shape
        m = box_mask(boxes, h, w)
        chance.append(float(m.mean()))
        x = tf(to_source(gray))
        for pair in args.pairs:
            method, layer = pair.split("/")
            cam = cv2.resize(explain(bundle, x, method, layer).cam, (w, h), interpolation=cv2.INTER_LINEAR)
            yy, xx = np.unravel_index(int(np.argmax(cam)), cam.shape)
            peaks[pair].append((xx / w, yy / h, bool(m[yy, xx]), bool(m[min(xx, h - 1), min(yy, w - 1)]),
                                bool(m[yy, w - 1 - xx])))
    for pair, pk in peaks.items():
        a = np.array(pk, dtype=float)
        grid, _, _ = np.histogram2d(a[:, 1], a[:, 0], bins=3, range=[[0, 1], [0, 1]])
        res["pairs"][pair] = {"hit": a[:, 2].mean(), "hit_transposed": a[:, 3].mean(), "hit_mirrored": a[:, 4].mean(),
                              "peaks_3x3": grid.astype(int).tolist()}
    res["chance"] = float(np.mean(chance))
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"{res['model']}: {res['n']} boxed adult films (val + test), chance {res['chance']:.3f}")
    for pair, r in res["pairs"].items():
        print(f"  {pair:16s} hit {r['hit']:.3f}  transposed {r['hit_transposed']:.3f}  mirrored {r['hit_mirrored']:.3f}"
              f"  peaks by ninth {r['peaks_3x3']}")


if __name__ == "__main__":
    main()
