"""``cxr-model ood fit-layout``: fit the image check of :mod:`cxr_model.imaging.layout` into a bundle.

Fits on the bundle's own ``splits.csv``: the layout Gaussian on every training film of each
population, both thresholds on the validation films only. The generated non-radiographs (seed 0)
and scope probes (seeds 11 and 123) are scored afterwards, for the record; they choose nothing.
The result goes into ``ood.pt`` (``layout_*`` tensors, beside the feature statistics, which are
kept) and ``ood.json`` (key ``"layout"``), so it is bound to the weights' sha256 with them.
"""
from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from cxr_model.imaging.bundle import CxrBundle, load_cxr_bundle
from cxr_model.imaging.data import load_sources
from cxr_model.imaging.layout import fit_layout, structure, thumbnails
from cxr_model.imaging.non_radiographs import non_radiographs, scope_probes
from cxr_model.imaging.ood import OOD_META, OOD_WEIGHTS, OodError, load_ood_state, split_items
from cxr_model.imaging.transforms import EvalTransform, to_source
from cxr_model.registry import BundleError
from cxr_model.settings import get_settings


def grids_and_structure(sources: torch.Tensor, img_size: int, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """uint8 sources ``(N, 1, 224, 224)`` through the eval transform -> grids ``(N, 256)`` and structure ``(N,)``."""
    tf = EvalTransform(img_size)
    g, s = [], []
    for i in range(0, len(sources), batch):
        x = tf(sources[i:i + batch])
        g.append(thumbnails(x))
        s.append(structure(x))
    return (np.concatenate(g), np.concatenate(s)) if g else (np.zeros((0, 256)), np.zeros(0))


def fit_layout_bundle(bundle: CxrBundle, kermany_dir, adult_dir=None, log=print) -> dict:
    """Fit and store the image check for ``bundle``; returns the ``ood.json`` ``"layout"`` block."""
    t0 = time.time()
    if not (bundle.path / OOD_WEIGHTS).exists():
        raise OodError(f"{bundle.path.name}: no OOD statistics to add the image check to; run `cxr-model ood fit` first")
    pops = ["child"] + (["adult"] if adult_dir is not None and "adult" in bundle.meta.get("populations", []) else [])
    g_train, g_val, s_val = [], {}, {}
    for pop in pops:
        g_train.append(grids_and_structure(load_sources(split_items(bundle, kermany_dir, "train", pop, adult_dir))[0],
                                           bundle.img_size)[0])
        g_val[pop], s_val[pop] = grids_and_structure(
            load_sources(split_items(bundle, kermany_dir, "val", pop, adult_dir))[0], bundle.img_size)
    model, desc = fit_layout(np.concatenate(g_train), g_val, s_val)
    log(f"layout: train n={desc['n_train']}, threshold {model.threshold:.2f}, structure_min {model.structure_min:.3f} "
        f"({time.time() - t0:.0f} s)")
    others = non_radiographs(seed=0) + scope_probes(seed=11) + scope_probes(seed=123)
    checks = model.check(EvalTransform(bundle.img_size)(torch.stack([to_source(g) for _, g in others])))
    kinds = sorted({n.split("/")[0] for n, _ in others})
    desc["non_radiographs"] = {
        "sets": "non_radiographs seed 0 + scope_probes seeds 11 and 123 (measured, not used to choose)",
        "by_kind": {k: {"n": sum(n.startswith(k + "/") for n, _ in others),
                        "withheld": sum(bool(c[1]) for (n, _), c in zip(others, checks) if n.startswith(k + "/"))}
                    for k in kinds},
    }
    desc.update(fitted_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), seconds=round(time.time() - t0, 1))
    weights, meta = load_ood_state(bundle.path)
    torch.save({**weights, **model.state()}, bundle.path / OOD_WEIGHTS)
    (bundle.path / OOD_META).write_text(json.dumps({**meta, "layout": desc}, indent=2) + "\n")
    return desc


def fit_layout_command(model_dir: str | None = None) -> int:
    """``cxr-model ood fit-layout [--model-dir DIR]``: fit, store and summarise; 2 on an error."""
    s = get_settings()
    try:
        bundle = load_cxr_bundle(model_dir or s.cxr_model_dir, device=s.device)
        d = fit_layout_bundle(bundle, s.kermany_dir, s.nih_adult_dir)
    except (BundleError, OodError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{bundle.model_id}: layout threshold {d['threshold']:.2f} ({d['threshold_rule']})")
    print(f"structure minimum {d['structure_min']:.3f} ({d['structure_rule']})")
    print("validation flagged: " + ", ".join(f"{p} {v['flagged_fraction']:.3f} (n={v['n']})"
                                             for p, v in d["val_by_population"].items()))
    print("generated non-radiographs withheld by this check alone: " + ", ".join(
        f"{k} {v['withheld']}/{v['n']}" for k, v in d["non_radiographs"]["by_kind"].items()))
    print(f"wrote {Path(bundle.path) / OOD_WEIGHTS} and {OOD_META} ({d['seconds']} s)")
    return 0
