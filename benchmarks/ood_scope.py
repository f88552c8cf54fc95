"""How often the scope rule flags in-scope radiographs and withholds non-radiographs, per check.

    .venv/bin/python benchmarks/ood_scope.py [--model-dir DIR] [--splits SPLITS_CSV] [--seeds 31 32 33] [--json]

The one scope rule (``OodModel.verdicts``) has two parts: the feature distance (Mahalanobis of the
penultimate features) and, where the bundle has it, the image check (blank image, not a frontal
chest view; :mod:`cxr_model.imaging.layout`). For each set: n, flagged by the features, flagged by
the image check, flagged by the rule (either). Sets: the val and test parts of both populations
(children: the bundle's ``splits.csv`` in Kermany; adults: ``--splits``' adult rows, default the
bundle's own, in ``nih_adult``), every adult film for a bundle that never saw adults, the real
DICOMs (``dicom/manifest.csv``), the 16 official Kermany val films, and generated non-radiographs:
``non_radiographs`` + ``scope_probes`` and the independent lateral generator of
``tests/imaging/laterals.py``, at seeds that no fit or choice used. Nothing here chooses anything.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import torch

from cxr_model.imaging.bundle import load_cxr_bundle
from cxr_model.imaging.data import Item, load_sources
from cxr_model.imaging.io import read_image
from cxr_model.imaging.layout import REASON_BLANK, REASON_LAYOUT
from cxr_model.imaging.non_radiographs import non_radiographs, scope_probes
from cxr_model.imaging.ood import batch_features, load_ood
from cxr_model.imaging.splits import read_splits
from cxr_model.imaging.transforms import EvalTransform, to_source
from cxr_model.settings import get_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests/ (run as a script)
from tests.imaging.laterals import lateral_views  # noqa: E402


def adult_items(nih_dir: Path, splits_csv: Path, part: str | None) -> list[Item]:
    with open(splits_csv, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("population") == "adult" and (part is None or r["split"] == part)]
    return [Item(nih_dir / r["path"], int(r["label"] == "PNEUMONIA")) for r in rows]


def verdicts(bundle, ood, sources: torch.Tensor, batch: int = 64) -> list[tuple[float, bool, str]]:
    """The scope rule's verdict for each uint8 source ``(N, 1, 224, 224)``."""
    tf, out = EvalTransform(bundle.img_size), []
    for i in range(0, len(sources), batch):
        x = tf(sources[i:i + batch])
        out += ood.verdicts(batch_features(bundle, x), x)
    return out


def tally(ood, v: list[tuple[float, bool, str]]) -> dict:
    feat = [s > ood.threshold for s, _, _ in v]
    image = [why in (REASON_BLANK, REASON_LAYOUT) for _, _, why in v]  # the image check's reasons come first
    return {"n": len(v), "features": int(sum(feat)), "image_check": int(sum(image)),
            "rule": int(sum(out for _, out, _ in v)), "rule_share": float(np.mean([out for _, out, _ in v])) if v else None}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model-dir", default=None)
    p.add_argument("--splits", default=None, help="splits.csv whose adult patients to use (default: the bundle's)")
    p.add_argument("--seeds", type=int, nargs="+", default=[31, 32, 33])
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    s = get_settings()
    bundle = load_cxr_bundle(args.model_dir or s.cxr_model_dir, device=s.device)
    ood = load_ood(bundle)
    splits = Path(args.splits) if args.splits else bundle.path / "splits.csv"
    res = {"model": bundle.model_id, "threshold": ood.threshold, "splits": str(splits), "seeds": args.seeds,
           "image_check": None if ood.layout is None else {"layout_threshold": ood.layout.threshold,
                                                           "structure_min": ood.layout.structure_min},
           "groups": {}}
    parts = read_splits(bundle.path / "splits.csv", s.kermany_dir)
    groups = {f"children, bundle {part}": parts[part] for part in ("val", "test")}
    groups |= {f"adults, {part} patients": adult_items(s.nih_adult_dir, splits, part) for part in ("val", "test")}
    if "adult" not in bundle.meta.get("populations", []):  # never trained on adults: every adult film is unseen
        groups["adults, all films (unseen population)"] = adult_items(s.nih_adult_dir, splits, None)
    for name, items in groups.items():
        if items:
            res["groups"][name] = tally(ood, verdicts(bundle, ood, load_sources(items)[0]))
    with open(s.dicom_dir / "manifest.csv", newline="") as fh:
        dicoms = [s.dicom_dir / r["path"] for r in csv.DictReader(fh)]
    for name, paths in (("real DICOMs (RSNA/NIH adults)", dicoms),
                        ("official Kermany val (16 children)", sorted((s.kermany_dir / "val").rglob("*.jpeg")))):
        res["groups"][name] = tally(ood, verdicts(bundle, ood, torch.stack([to_source(read_image(q)) for q in paths])))
    others = [o for seed in args.seeds for o in non_radiographs(seed=seed) + scope_probes(seed=seed) + lateral_views(seed)]
    v = verdicts(bundle, ood, torch.stack([to_source(g) for _, g in others]))
    kinds = sorted({n.split("/")[0] for n, _ in others})
    res["non_radiographs"] = {"n": len(others), "withheld": int(sum(out for _, out, _ in v)), "by_kind": {
        k: tally(ood, [vv for (n, _), vv in zip(others, v) if n.startswith(k + "/")]) for k in kinds},
        "not_withheld": [n for (n, _), (_, out, _) in zip(others, v) if not out]}
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"{res['model']}: feature threshold {ood.threshold:.2f}; image check {res['image_check']}")
    print(f"  {'set':44s} {'n':>5s} {'features':>9s} {'image':>6s} {'rule':>5s} {'share':>6s}")
    for g, r in [*res["groups"].items(), *((f"generated {k} (seeds {args.seeds})", r)
                                           for k, r in res["non_radiographs"]["by_kind"].items())]:
        print(f"  {g:44s} {r['n']:5d} {r['features']:9d} {r['image_check']:6d} {r['rule']:5d} {r['rule_share']:6.3f}")
    if res["non_radiographs"]["not_withheld"]:
        print("  not withheld: " + ", ".join(res["non_radiographs"]["not_withheld"]))


if __name__ == "__main__":
    main()
