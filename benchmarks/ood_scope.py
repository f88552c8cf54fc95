"""How often the OOD check flags in-scope radiographs and withholds non-radiographs.

    .venv/bin/python benchmarks/ood_scope.py [--model-dir DIR] [--splits SPLITS_CSV] [--seed 123]

Flagged share (with n) on the validation films of both populations (children: the bundle's
``splits.csv`` val part of Kermany; adults: the val patients of ``--splits``' adult rows, default the
bundle's own, in ``nih_adult``), on every adult film for a bundle that never saw adults, and on the
generated non-radiographs per kind (``non_radiographs`` + ``scope_probes``, a seed other than the
fit's 0). Nothing here chooses a threshold.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from cxr_model.imaging.bundle import load_cxr_bundle
from cxr_model.imaging.data import Item, load_sources
from cxr_model.imaging.non_radiographs import non_radiographs, scope_probes
from cxr_model.imaging.ood import gray_features, load_ood, source_features
from cxr_model.imaging.splits import read_splits
from cxr_model.settings import get_settings


def adult_items(nih_dir: Path, splits_csv: Path, part: str | None) -> list[Item]:
    with open(splits_csv, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("population") == "adult" and (part is None or r["split"] == part)]
    return [Item(nih_dir / r["path"], int(r["label"] == "PNEUMONIA")) for r in rows]


def flagged(bundle, ood, items: list[Item]) -> dict:
    src, errors = load_sources(items)
    s = ood.score(source_features(bundle, src))
    return {"n": int(len(s)), "flagged": int((s > ood.threshold).sum()), "share": float(np.mean(s > ood.threshold)),
            "errors": len(errors)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model-dir", default=None)
    p.add_argument("--splits", default=None, help="splits.csv whose adult val patients to use (default: the bundle's)")
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    s = get_settings()
    bundle = load_cxr_bundle(args.model_dir or s.cxr_model_dir, device=s.device)
    ood = load_ood(bundle)
    splits = Path(args.splits) if args.splits else bundle.path / "splits.csv"
    res = {"model": bundle.model_id, "threshold": ood.threshold, "splits": str(splits), "groups": {}}
    res["groups"]["children, bundle val"] = flagged(bundle, ood, read_splits(bundle.path / "splits.csv", s.kermany_dir)["val"])
    adults_val = adult_items(s.nih_adult_dir, splits, "val")
    if adults_val:
        res["groups"]["adults, val patients"] = flagged(bundle, ood, adults_val)
    if "adult" not in bundle.meta.get("populations", []):  # never trained on adults: every adult film is unseen
        with open(s.nih_adult_dir / "manifest.csv", newline="") as fh:
            every = [Item(s.nih_adult_dir / r["path"], int(r["label"] == "PNEUMONIA")) for r in csv.DictReader(fh)]
        res["groups"]["adults, all films (unseen population)"] = flagged(bundle, ood, every)
    others = non_radiographs(seed=args.seed) + scope_probes(seed=args.seed)
    scores = ood.score(gray_features(bundle, [g for _, g in others]))
    kinds = sorted({n.split("/")[0] for n, _ in others})
    res["non_radiographs"] = {"n": len(others), "withheld": int((scores > ood.threshold).sum()), "by_kind": {
        k: {"n": int(sum(n.startswith(k + "/") for n, _ in others)),
            "withheld": int(sum(sc > ood.threshold for (n, _), sc in zip(others, scores) if n.startswith(k + "/")))}
        for k in kinds}, "not_withheld": [n for (n, _), sc in zip(others, scores) if sc <= ood.threshold]}
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"{res['model']}: OOD threshold {ood.threshold:.2f}")
    for g, r in res["groups"].items():
        print(f"  {g:40s} flagged {r['flagged']:4d}/{r['n']:<4d} = {r['share']:.3f}")
    nr = res["non_radiographs"]
    print(f"  {'non-radiographs (all kinds)':40s} withheld {nr['withheld']}/{nr['n']}")
    for k, r in nr["by_kind"].items():
        print(f"    {k:10s} {r['withheld']}/{r['n']}")
    if nr["not_withheld"]:
        print("  not withheld: " + ", ".join(nr["not_withheld"]))


if __name__ == "__main__":
    main()
