"""What BN site adaptation does to the bundled operating point, on cross-source and shifted films.

Each "site" is a set of films adapted on without labels (as a site would, on its own studies),
then scored at the bundle's threshold by the default path, before and after adaptation:

    python benchmarks/site_adaptation.py --model-dir assets/models/BUNDLE [--child-n 150] [--json OUT]

Sites: the 16 official Kermany val films (another uploader); the bundle's adult test films (NIH);
a seeded stratified subset of the children's test films under simulated shifts (shift.py).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cxr_model.imaging.adapt import adapt_batchnorm  # noqa: E402
from cxr_model.imaging.bundle import load_cxr_bundle  # noqa: E402
from cxr_model.imaging.data import kermany_items, load_sources  # noqa: E402
from cxr_model.imaging.predict import predict_batch  # noqa: E402
from cxr_model.imaging.shift import SHIFTS  # noqa: E402
from cxr_model.imaging.splits import split_items  # noqa: E402
from cxr_model.imaging.train_mixed import selection_subset  # noqa: E402
from cxr_model.imaging.transforms import EvalTransform  # noqa: E402
from cxr_model.metrics import classification as M  # noqa: E402
from cxr_model.settings import get_settings  # noqa: E402


def _score(bundle, src, y):
    tf = EvalTransform(bundle.img_size)
    p = np.concatenate([predict_batch(bundle, tf(src[i:i + 64])) for i in range(0, len(src), 64)])
    m = M.compute_threshold_metrics(y, p, bundle.threshold)
    return {"n": int(len(y)), "auroc": M.compute_auroc(y, p), **{k: m[k] for k in ("sensitivity", "specificity", "accuracy")}}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--child-n", type=int, default=150)
    ap.add_argument("--shifts", nargs="*", default=["tight crop (80 %)", "blur (sigma 1.5)", "gamma 1.6"])
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(2)
    s = get_settings()
    bundle = load_cxr_bundle(a.model_dir, device="cpu")
    sites = {}
    off = kermany_items(s.kermany_dir, "val")
    sites["official Kermany val (16 children, other uploader)"] = (load_sources(off)[0], np.array([i.label for i in off]))
    if "adult" in bundle.meta.get("populations", []):
        ad = split_items(bundle, s.kermany_dir, "test", "adult", s.data_dir / "cxr" / "nih_adult")
        sites["adult test (NIH)"] = (load_sources(ad)[0], np.array([i.label for i in ad]))
    ch = split_items(bundle, s.kermany_dir, "test", "child")
    y = np.array([i.label for i in ch])
    idx = selection_subset(y, a.child_n, 0)
    src = load_sources([ch[i] for i in idx])[0]
    for name in a.shifts:
        sites[f"child test subset, {name}"] = (torch.stack([SHIFTS[name](x) for x in src]), y[idx])
    out = {}
    for name, (src, yy) in sites.items():
        before = _score(bundle, src, yy)
        after = _score(adapt_batchnorm(bundle, src, batch_size=64), src, yy)
        out[name] = {"as bundled": before, "BN adapted": after}
        print(f"{name}: n={before['n']}  bundled sens {before['sensitivity']:.3f} spec {before['specificity']:.3f} "
              f"acc {before['accuracy']:.3f} AUROC {before['auroc']:.3f} | adapted sens {after['sensitivity']:.3f} "
              f"spec {after['specificity']:.3f} acc {after['accuracy']:.3f} AUROC {after['auroc']:.3f}", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"model": bundle.model_id, "threshold": bundle.threshold, "sites": out}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
