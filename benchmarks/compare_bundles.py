"""Compare chest X-ray bundles on the held-out parts of a two-population ``splits.csv``.

    PYTHONPATH=. .venv/bin/python benchmarks/compare_bundles.py --splits BUNDLE/splits.csv \\
        --model-dir assets/models/cxr-pneumonia-resnet18 --model-dir BUNDLE [--json OUT.json]

Each bundle is scored at its own threshold and calibration on the children's and the adults'
test (and validation) parts, and on the 16 official Kermany val films; AUROC with a seeded
bootstrap 95 % CI (2,000 resamples), n per row. Every bundle sees the same films through the
one preprocessing path (``to_source`` -> ``EvalTransform(img_size)``).
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import torch

from cxr_model.imaging import data as D
from cxr_model.imaging.bundle import load_cxr_bundle
from cxr_model.imaging.labels import parse_label
from cxr_model.imaging.predict import predict_logits
from cxr_model.metrics import classification as M
from cxr_model.settings import get_settings


def read_population_splits(path: Path, roots: dict[str, Path]) -> dict[str, list[D.Item]]:
    parts: dict[str, list[D.Item]] = {}
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            pop = r.get("population", "child")
            parts.setdefault(f"{pop}_{r['split']}", []).append(D.Item(roots[pop] / r["path"], parse_label(r["label"], path.name)))
    return parts


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--splits", required=True, type=Path)
    p.add_argument("--model-dir", action="append", required=True)
    p.add_argument("--parts", default="child_test,adult_test,official_val,child_val,adult_val")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    s = get_settings()
    torch.set_num_threads(int(torch.get_num_threads()))
    roots = {"child": s.kermany_dir, "adult": s.data_dir / "cxr" / "nih_adult"}
    parts = read_population_splits(args.splits, roots)
    parts["official_val"] = D.kermany_items(s.kermany_dir, "val")
    wanted = [k for k in args.parts.split(",") if k in parts]
    sources = {}
    for k in wanted:
        src, errors = D.load_sources(parts[k])
        if errors:
            raise SystemExit(f"{k}: unreadable files: " + "; ".join(m for _, m in errors[:5]))
        sources[k] = (src, np.array([it.label for it in parts[k]]))
    out = {}
    for d in args.model_dir:
        b = load_cxr_bundle(d, device="cpu")
        out[b.model_id] = {}
        print(f"\n{b.model_id} (img_size {b.img_size}, threshold {b.threshold:.3f})")
        print("part | n (pos/neg) | AUROC [95% CI] | sens | spec | acc | ECE")
        for k in wanted:
            src, y = sources[k]
            prob = b.probability(torch.from_numpy(predict_logits(b.model, src, b.img_size, b.device))).numpy()
            m = M.summary(y, prob, b.threshold)
            out[b.model_id][k] = m
            ci = m["auroc_ci95"]
            print(f"{k} | {m['n']} ({m['n_positive']}/{m['n_negative']}) | {m['auroc']:.4f} [{ci[0]:.3f}, {ci[1]:.3f}] | "
                  f"{m['sensitivity']:.3f} | {m['specificity']:.3f} | {m['accuracy']:.3f} | {m['ece']:.3f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
