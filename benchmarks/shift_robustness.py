"""Chest X-ray bundles under simulated acquisition shifts, side by side, on the same children's films.

    PYTHONPATH=. .venv/bin/python benchmarks/shift_robustness.py \\
        --model-dir assets/models/cxr-pneumonia-resnet18-v2.4 --model-dir assets/models/cxr-pneumonia-resnet18-v2.5 \\
        [--part test] [--crops 0.65 0.95] [--json OUT.json]

The children's films of the first bundle's ``splits.csv`` part (default: its held-out test split) are
mapped by every shift of :data:`cxr_model.imaging.shift.SHIFTS` (plus a centre crop to each
``--crops`` fraction) and scored by each bundle's 224 px network at its own threshold, population
estimated from the image (``predict_batch``; the adults' 448 px branch is not on this path). One row
per shift: AUROC (seeded bootstrap 95 % CI), sensitivity and specificity per bundle, with n. Nothing is
chosen on these figures: they say how far a bundle's call moves when a site's films differ from the
training films.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from cxr_model.imaging.bundle import load_cxr_bundle
from cxr_model.imaging.data import load_sources
from cxr_model.imaging.predict import predict_batch
from cxr_model.imaging.shift import SHIFTS, crop
from cxr_model.imaging.splits import split_items
from cxr_model.imaging.transforms import EvalTransform
from cxr_model.metrics import classification as M
from cxr_model.settings import get_settings


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model-dir", action="append", required=True)
    p.add_argument("--part", default="test", choices=["val", "test"])
    p.add_argument("--crops", type=float, nargs="*", default=[0.65, 0.95], help="extra centre-crop fractions")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    bundles = [load_cxr_bundle(d, device="cpu") for d in args.model_dir]
    if any(b.img_size != 224 for b in bundles):
        raise SystemExit("every bundle must read 224 px films (the shifts map 224 px sources)")
    items = split_items(bundles[0], get_settings().kermany_dir, args.part, "child")
    src, errors = load_sources(items)
    if errors:
        raise SystemExit(f"unreadable films: {'; '.join(f'{it.path}: {m}' for it, m in errors[:5])}")
    y = np.array([it.label for it in items])
    shifts = {"none": None, **SHIFTS, **{f"crop {f:.0%}": crop(f) for f in args.crops}}
    tf = EvalTransform(224)
    print(f"children, {args.part} split of {bundles[0].model_id}: n = {len(y)} ({int(y.sum())} pneumonia / {int((1 - y).sum())} normal)")
    print("shift | " + " | ".join(f"{b.model_id} AUROC [95 % CI] / sens / spec" for b in bundles))
    out = {}
    for name, shift in shifts.items():
        x = src if shift is None else torch.stack([shift(s) for s in src])
        row = []
        for b in bundles:
            prob = np.concatenate([predict_batch(b, tf(x[i:i + 128])) for i in range(0, len(x), 128)])
            m = M.summary(y, prob, b.threshold)
            out.setdefault(name, {})[b.model_id] = {k: m[k] for k in ("n", "auroc", "auroc_ci95", "sensitivity", "specificity")}
            ci = m["auroc_ci95"]
            row.append(f"{m['auroc']:.4f} [{ci[0]:.3f}, {ci[1]:.3f}] / {m['sensitivity']:.3f} / {m['specificity']:.3f}")
        print(f"{name} | " + " | ".join(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
