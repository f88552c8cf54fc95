"""Measure a bundle with an adult branch as the product scores (``cxr-model adult-branch fit``'s last step).

Every validation and test film of both populations (and the 16 official Kermany val films) goes
through :func:`~cxr_model.imaging.predict.predict_source`, the path of ``predict``: population
from the image, adults on the 448 px branch, children on the 224 px network. The figures replace
the bundle's ``metrics`` (the bundle's own, as shipped); the figures of the bundle it was built
from stay in ``adult_branch["metrics_without_branch"]``, for the comparison.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cxr_model.imaging.bundle import load_cxr_bundle
from cxr_model.imaging.card_op import render_op_card
from cxr_model.imaging.data import kermany_items
from cxr_model.imaging.ood import OodError, load_ood
from cxr_model.imaging.operating_fit import _block
from cxr_model.imaging.predict import predict_source
from cxr_model.imaging.splits import split_items

NAMES = {"child": "children (Kermany, child-level split of official train)", "adult": "adults (NIH ChestX-ray14, split by patient_id)"}


def score(bundle, items) -> tuple[np.ndarray, np.ndarray, int]:
    """Labels, product probabilities and how many films the adult branch scored."""
    preds = [predict_source(bundle, it.path, name=it.path.name) for it in items]
    bad = [r.error for r in preds if r.error]
    if bad:
        raise ValueError(f"{len(bad)} films could not be scored: {bad[:3]}")
    via = sum(bundle.scorer(r.population) is not bundle for r in preds)
    return np.array([it.label for it in items]), np.array([r.probability for r in preds]), via


def measure_branch(bundle_dir: str | Path, kermany_dir: str | Path, adult_dir: str | Path, log=print) -> dict:
    bundle = load_cxr_bundle(bundle_dir, device="cpu")
    meta = json.loads((bundle.path / "metadata.json").read_text())
    spec = meta["adult_branch"]
    spec.setdefault("metrics_without_branch", {k: v for k, v in meta["metrics"].items()})
    metrics, routed = {}, {}
    for pop in ("child", "adult"):
        for part in ("val", "test"):
            y, p, via = score(bundle, split_items(bundle, kermany_dir, part, pop, adult_dir))
            metrics[f"{pop}_{part}"] = dict(_block(y, p), split=f"{NAMES[pop]}: {part} (population from the image; adults judged "
                                                  "adult scored by the 448 px branch)")
            routed[f"{pop}_{part}"] = {"n": len(y), "scored_by_branch": via}
            log(f"{pop} {part}: n={len(y)} AUROC {metrics[f'{pop}_{part}']['auroc']:.4f} via branch {via}")
    off = kermany_items(kermany_dir, "val")
    y, p, via = score(bundle, off)
    metrics["official_val"] = dict(_block(y, p), split="official Kaggle val (16 children, second uploader)")
    routed["official_val"] = {"n": len(y), "scored_by_branch": via}
    spec["routed"] = routed
    meta["metrics"] = metrics
    meta["validation"] = metrics["child_val"]
    (bundle.path / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    rewrite_card(bundle)
    return meta


def rewrite_card(bundle) -> None:
    """Render ``MODEL_CARD.md`` again from the ``metadata.json`` on disk, with the OOD section where the
    bundle's OOD statistics are valid for its weights."""
    try:
        ood = json.loads((bundle.path / "ood.json").read_text()) if load_ood(bundle) is not None else None
    except OodError:
        ood = None
    (bundle.path / "MODEL_CARD.md").write_text(render_op_card(json.loads((bundle.path / "metadata.json").read_text()), ood))
