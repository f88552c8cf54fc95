"""Fit a model-2 bundle's population-aware operating point and its OOD check, from its own splits.

``cxr-model operating-point fit --model-dir DIR`` (after training). One pass of the network over
the bundle's training films (a seeded subset of the children, every adult), both populations'
validation and test films and the 16 official Kermany val films gives features and logits; then

1. the population model is fitted on the *training* films' features;
2. each population's centred Platt map and the pooled fallback are chosen on *validation* films
   (clean and under :data:`~cxr_model.imaging.shift.SELECTION_SHIFTS`), see :mod:`operating`;
3. the OOD Gaussian is refitted on the training features of both populations, its threshold
   chosen on validation (:func:`~cxr_model.imaging.ood.fit_ood_features`);
4. test figures are measured once, at the bundled threshold, by the default path (population
   estimated from the image), and written with everything else into ``metadata.json``.
"""
from __future__ import annotations

import json
import platform
import shutil
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from cxr_model.imaging import operating as OP
from cxr_model.imaging.bundle import load_cxr_bundle
from cxr_model.imaging.card_op import render_op_card
from cxr_model.imaging.data import kermany_items, load_sources
from cxr_model.imaging.ood import fit_ood_features
from cxr_model.imaging.shift import SELECTION_SHIFTS, SHIFTS
from cxr_model.imaging.splits import split_items
from cxr_model.imaging.train_mixed import selection_subset
from cxr_model.imaging.transforms import EvalTransform, source_size
from cxr_model.metrics import classification as M
from cxr_model.metrics.calibration import calibration_slope_intercept
from cxr_model.registry import METADATA, BundleError, read_metadata, save_bundle
from cxr_model.settings import get_settings

RULE = ("Population-aware: each population's probability is a Platt map centred on its own operating point, "
        "P = sigmoid(a_pop * (logit - l_pop)), so every population meets the one threshold 0.5 there. a_pop: "
        "class-balanced Platt slope on the population's validation films; l_pop: Youden point of those films "
        "under 4 simulated acquisition shifts (exposure -30 %, contrast x0.6, gamma 1.6, 80 % crop), the mean J over the "
        "5 conditions (clean and each shift weighing the same). "
        "Population: declared (DICOM PatientAge: under 18 years = child) or, else, a logistic regression on the "
        "network's penultimate features fitted on training films; when its P(adult) is within [0.1, 0.9] the "
        "pooled map (both populations weighted equally) applies. Chosen on validation, never on test.")


@torch.inference_mode()
def features_logits(bundle, sources: torch.Tensor, shift=None, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Pooled penultimate features ``(N, D)`` and logits ``(N,)`` of uint8 ``sources``, each first mapped by
    ``shift`` where given (one forward per batch)."""
    tf = EvalTransform(bundle.img_size)
    feats, logits = [], []
    for i in range(0, len(sources), batch):
        src = sources[i:i + batch]
        if shift is not None:
            src = torch.stack([shift(s) for s in src])
        f, lg = OP.features_and_logits(bundle.model, bundle.arch, tf(src).to(bundle.device))
        feats.append(f.float().cpu().numpy())
        logits.append(lg.float().cpu().numpy())
    return np.concatenate(feats), np.concatenate(logits)


def _block(y, p, t=OP.THRESHOLD) -> dict:
    out = M.summary(y, p, t)
    out["calibration_slope"] = calibration_slope_intercept(y, p)["slope"] if 0 < np.mean(y) < 1 else None
    return out


def _short(m: dict) -> dict:
    return {k: m[k] for k in ("n", "auroc", "sensitivity", "specificity", "accuracy")}


def fit_operating_point(model_dir: str | Path, kermany_dir: str | Path, adult_dir: str | Path, dicom_dir=None,
                        max_child_train: int = 400, seed: int = 0, log=print, shift_child_n: int = 300,
                        robust_pops: tuple = ("adult",), cache: str | Path | None = None) -> dict:
    """Fit, measure and write (see the module docstring); returns the updated metadata."""
    t0 = time.time()
    bundle = load_cxr_bundle(model_dir, device="cpu")
    items = {pop: {k: split_items(bundle, kermany_dir, k, pop, adult_dir) for k in ("train", "val", "test")}
             for pop in OP.POPULATIONS}
    rng = np.random.default_rng(seed)
    tr = items["child"]["train"]
    items["child"]["train"] = [tr[i] for i in sorted(rng.choice(len(tr), min(max_child_train, len(tr)), replace=False))]
    src = {pop: {k: load_sources(v, size=source_size(bundle.img_size))[0] for k, v in p.items()} for pop, p in items.items()}
    y = {pop: {k: np.array([it.label for it in v]) for k, v in p.items()} for pop, p in items.items()}
    log(f"decoded ({time.time() - t0:.0f} s)")
    cache = Path(cache) if cache else None
    if cache is not None and cache.exists():
        z = np.load(cache)
        out = {pop: {k: (z[f"{pop}_{k}_f"], z[f"{pop}_{k}_l"]) for k in src[pop]} for pop in src}
        stale = [f"{pop} {k}" for pop in src for k in src[pop] if len(out[pop][k][1]) != len(y[pop][k])
                 or (f"{pop}_{k}_y" in z and not np.array_equal(z[f"{pop}_{k}_y"], y[pop][k]))]
        if stale:
            raise ValueError(f"{cache}: made for other films ({', '.join(stale)}); delete it or match --max-child-train")
    else:
        out = {pop: {k: features_logits(bundle, s) for k, s in p.items()} for pop, p in src.items()}
        if cache is not None:
            np.savez(cache, **{f"{pop}_{k}_{w}": v[i] for pop, p in out.items() for k, v in p.items() for i, w in enumerate("fl")})
    # Shifted copies of a seeded, stratified subset of the children's validation films (CPU time).
    sub = {"child": selection_subset(y["child"]["val"], shift_child_n, seed), "adult": np.arange(len(y["adult"]["val"]))}
    shifted = {pop: {n: features_logits(bundle, src[pop]["val"][sub[pop]], SHIFTS[n])[1] for n in SELECTION_SHIFTS} for pop in OP.POPULATIONS}
    off_items = kermany_items(kermany_dir, "val")
    off_src = load_sources(off_items, size=source_size(bundle.img_size))[0]
    off_f, off_l = features_logits(bundle, off_src)
    off_y = np.array([it.label for it in off_items])
    log(f"features and logits ({time.time() - t0:.0f} s)")

    f_tr = np.concatenate([out[p]["train"][0] for p in OP.POPULATIONS])
    is_adult = np.concatenate([np.full(len(out[p]["train"][0]), p == "adult") for p in OP.POPULATIONS])
    f_va = np.concatenate([out[p]["val"][0] for p in OP.POPULATIONS])
    popm, pchoice = OP.choose_population_model(f_tr, is_adult, f_va, np.concatenate(
        [np.full(len(out[p]["val"][0]), p == "adult") for p in OP.POPULATIONS]))
    log(f"population model: {pchoice}")
    op = OP.choose_operating_point({p: (y[p]["val"], out[p]["val"][1]) for p in OP.POPULATIONS}, shifted,
                                   {p: (y[p]["val"][sub[p]], out[p]["val"][1][sub[p]]) for p in OP.POPULATIONS})

    def probs(f, lg, declared=None):
        pops = OP.assign(popm.p_adult(f), declared)
        return OP.calibrate(op, lg, pops), pops

    pop_acc = {}
    for pop in OP.POPULATIONS:
        for k in ("val", "test"):
            _, pops = probs(*out[pop][k])
            pop_acc[f"{pop}_{k}"] = {"n": len(pops), "correct": sum(q == pop for q in pops), "uncertain": sum(q is None for q in pops)}
    _, off_pops = probs(off_f, off_l)
    pop_acc["official_val (children)"] = {"n": len(off_pops), "correct": sum(q == "child" for q in off_pops),
                                          "uncertain": sum(q is None for q in off_pops)}

    names = {"child": "children (Kermany, child-level split of official train)", "adult": "adults (NIH ChestX-ray14, split by patient_id)"}
    metrics, by_declared = {}, {}
    for pop in OP.POPULATIONS:
        for k in ("val", "test"):
            p, _ = probs(*out[pop][k])
            metrics[f"{pop}_{k}"] = dict(_block(y[pop][k], p), split=f"{names[pop]}: {k} (population from the image)")
            pd, _ = probs(*out[pop][k], declared=[pop] * len(p))
            by_declared[f"{pop}_{k}"] = _short(_block(y[pop][k], pd))
    metrics["official_val"] = dict(_block(off_y, probs(off_f, off_l)[0]), split="official Kaggle val (16 children, second uploader)")
    pooled = {f"{pop}_test": _short(_block(y[pop]["test"], OP.calibrate(op, out[pop]["test"][1], [None] * len(y[pop]["test"]))))
              for pop in OP.POPULATIONS}
    other = {"child": "adult", "adult": "child"}
    cross = {f"{other[pop]} map on {pop} test": _short(_block(y[pop]["test"], OP.calibrate(op, out[pop]["test"][1], [other[pop]] * len(y[pop]["test"]))))
             for pop in OP.POPULATIONS}
    robustness = {}
    for pop in robust_pops:
        robustness[f"{pop}_test"] = {}
        for n in SELECTION_SHIFTS:
            f, lg = features_logits(bundle, src[pop]["test"], SHIFTS[n])
            robustness[f"{pop}_test"][n] = _short(_block(y[pop]["test"], probs(f, lg)[0]))
    log(f"measured ({time.time() - t0:.0f} s)")

    ood = fit_ood_features(bundle, f_tr, {p: out[p]["val"][0] for p in OP.POPULATIONS}, dicom_dir, seed,
                           train_data=f"the bundle's training films: a seeded {len(out['child']['train'][0])} children and all "
                                      f"{len(out['adult']['train'][0])} adults")
    meta = json.loads((bundle.path / METADATA).read_text())
    meta["calibration"] = {"a": op["pooled"]["a"], "b": op["pooled"]["b"],
                           "method": "pooled fallback of the population-aware operating point (see operating_point)"}
    meta["threshold"] = {"value": OP.THRESHOLD, "rule": RULE, "per_population_youden": op["movement"],
                         "previous": meta.get("threshold", {}).get("previous", meta.get("threshold", {}).get("value"))}
    meta["operating_point"] = op
    meta["population_model"] = dict(popm.to_meta(), method=f"logistic regression (L2, C={pchoice['C']} chosen on validation, "
                                     "class-balanced) on standardised penultimate features of the training films",
                                     choice=pchoice, accuracy=pop_acc)
    meta["validation"] = metrics["child_val"]
    meta["metrics"] = metrics
    meta["metrics_population_declared"] = by_declared
    meta["metrics_population_unknown"] = pooled
    meta["cross_source"] = cross
    meta["robustness"] = robustness
    (bundle.path / METADATA).write_text(json.dumps(meta, indent=2) + "\n")
    (bundle.path / "MODEL_CARD.md").write_text(render_op_card(json.loads((bundle.path / METADATA).read_text()), ood))
    log(f"wrote {bundle.path / METADATA}; OOD val flagged {ood['evaluation']['val_by_population']}, "
        f"non-radiographs {ood['evaluation']['non_radiographs_flagged_fraction']:.3f} ({time.time() - t0:.0f} s)")
    return meta


def fit_command(model_dir: str, max_child_train: int = 400, cache: str | None = None) -> int:
    """``cxr-model operating-point fit --model-dir DIR``; 2 on a missing bundle or data."""
    s = get_settings()
    try:
        meta = fit_operating_point(model_dir, s.kermany_dir, s.data_dir / "cxr" / "nih_adult", s.dicom_dir, max_child_train,
                                   cache=cache)
    except (BundleError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_metrics(meta)
    return 0


def print_metrics(meta: dict) -> None:
    """One line per split of a fitted bundle's ``metrics``: n, AUROC, sensitivity, specificity, accuracy."""
    for k, v in meta["metrics"].items():
        print(f"{k}: n={v['n']} AUROC {v['auroc']:.4f} sens {v['sensitivity']:.3f} spec {v['specificity']:.3f} acc {v['accuracy']:.3f}")


def bundle_from_run(run_dir: str | Path, out_dir: str | Path, template: str | Path, name: str, version: str,
                    config: dict, wall_s: float) -> Path:
    """Write a bundle from ``run_dir/checkpoints/best.pt`` without the training finish's forwards.

    Data description, counts and fingerprints come from ``template`` (a bundle trained on the same
    splits); ``fit_operating_point`` then measures every figure afresh. ``splits.csv`` is copied.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    ck = torch.load(run_dir / "checkpoints" / "best.pt", map_location="cpu", weights_only=True)
    history = json.loads((run_dir / "checkpoints" / "history.json").read_text())
    base = read_metadata(template)
    meta = {k: base[k] for k in ("task", "architecture", "classes", "populations", "output", "input")}
    meta.update(name=name, version=version)
    meta["training"] = dict({k: base["training"][k] for k in ("data", "split", "counts", "fingerprint")},
                            config=config, init_from=config.get("init_from"), best_epoch=int(ck["epoch"]),
                            selection="mean over populations of the validation AUROC (clean films; children: a seeded "
                                      f"stratified {config.get('select_child_n')} of the val films)",
                            history=history, wall_time_s=round(wall_s, 1), device="cpu", threads=config.get("threads"),
                            host=platform.machine(), date=date.today().isoformat())
    meta["calibration"] = {"a": 1.0, "b": 0.0, "method": "placeholder until `cxr-model operating-point fit`"}
    meta["threshold"] = {"value": 0.5, "rule": "placeholder until `cxr-model operating-point fit`"}
    save_bundle(out_dir, ck["state"], meta)
    shutil.copy(Path(template) / "splits.csv", out_dir / "splits.csv")
    return out_dir
