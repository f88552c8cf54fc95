"""Pointing game on the 5 RSNA DICOMs with pneumonia boxes: does each CAM's peak fall in a box?

    .venv/bin/python benchmarks/pointing_game.py [--scorecam] [--model-dir DIR]

Prints the hit rate per CAM method (n = 5, so one image is 20 points: read it as a sanity check,
not an estimate) beside the chance rate (mean fraction of the image the boxes cover).
"""
from __future__ import annotations

import argparse

import numpy as np

from cxr_model.imaging.bundle import load_cxr_bundle
from cxr_model.imaging.explain import METHODS, SLOW_METHODS
from cxr_model.imaging.pointing import pointing_game
from cxr_model.settings import get_settings


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scorecam", action="store_true", help="include ScoreCAM (slow on CPU)")
    p.add_argument("--model-dir", default=None, help="model bundle folder (default: the bundled model)")
    args = p.parse_args()
    s = get_settings()
    bundle = load_cxr_bundle(args.model_dir or s.cxr_model_dir, device=s.device)
    print(f"model {bundle.model_id} (img_size {bundle.img_size}, sha256 {bundle.meta['sha256'][:12]})")
    for method in METHODS:
        if method in SLOW_METHODS and not args.scorecam:
            continue
        rows = pointing_game(bundle, s.dicom_dir, method)
        hits = sum(r["hit"] for r in rows)
        chance = float(np.mean([r["box_fraction"] for r in rows]))
        print(f"{method:10s} hits {hits}/{len(rows)} = {hits / len(rows):.0%}   (chance {chance:.0%})   "
              + " ".join(f"{'H' if r['hit'] else '.'}{r['peak_xy']}" for r in rows))


if __name__ == "__main__":
    main()
