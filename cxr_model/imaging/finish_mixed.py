"""After model-2 training: calibration, the operating threshold, per-population metrics, the bundle.

Both populations count equally in calibration and in the threshold rule, whatever their sizes
(782 children and about 115 adults in validation), so the operating point is not the children's.
"""
from __future__ import annotations

import datetime as _dt
import platform
from pathlib import Path

import numpy as np
import torch

from cxr_model.imaging import data as D
from cxr_model.imaging.card import render_mixed_card
from cxr_model.imaging.config import config_dict
from cxr_model.imaging.finish import official_val_logits
from cxr_model.imaging.labels import CLASSES
from cxr_model.imaging.predict import predict_logits
from cxr_model.imaging.shift import SELECTION_SHIFTS, SHIFTS
from cxr_model.metrics import classification as M
from cxr_model.metrics.calibration import apply_platt, calibration_slope_intercept, fit_platt
from cxr_model.metrics.classification import balanced_youden
from cxr_model.registry import save_bundle

THRESHOLD_RULE = (
    "Population-balanced Youden's J: the threshold maximising the mean over children and adults of "
    "(sensitivity + specificity - 1), on the calibrated probabilities of each population's validation "
    "films pooled with the same films under 4 simulated acquisition shifts (exposure -30 %, contrast x0.6, "
    "gamma 1.6, 80 % crop). Chosen on validation, never on test."
)


def _short(m: dict) -> dict:
    return {k: m[k] for k in ("n", "auroc", "sensitivity", "specificity", "accuracy")}


def finish_mixed(cfg, net, parts, sources, device, history, best, wall_s) -> dict:
    """Calibrate, pick the threshold, measure every part, write ``cfg.out`` and return metadata."""

    pops = ("child", "adult")
    lg = {pop: {k: predict_logits(net, src, cfg.img_size, device) for k, (src, _) in sources[pop].items() if k != "train"}
          for pop in pops}
    ys = {pop: {k: y for k, (_, y) in sources[pop].items()} for pop in pops}
    # Calibration: both populations weigh the same in the likelihood.
    yv = np.concatenate([ys[p]["val"] for p in pops])
    lv = np.concatenate([lg[p]["val"] for p in pops])
    wv = np.concatenate([np.full(len(ys[p]["val"]), 1.0 / len(ys[p]["val"])) for p in pops])
    cal = fit_platt(yv, lv, wv)
    # Four shifts, not all ten: a forward pass costs about 0.1-0.25 s per film on the shared 2-core CPU.

    shifted_val = {pop: {name: predict_logits(net, sources[pop]["val"][0], cfg.img_size, device, shift=SHIFTS[name])
                         for name in SELECTION_SHIFTS} for pop in pops}
    pooled = {pop: apply_platt(np.concatenate([lg[pop]["val"], *shifted_val[pop].values()]), cal) for pop in pops}
    py = {pop: np.concatenate([ys[pop]["val"]] * (1 + len(SELECTION_SHIFTS))) for pop in pops}
    threshold = balanced_youden(np.concatenate([py[p] for p in pops]), np.concatenate([pooled[p] for p in pops]),
                                np.concatenate([np.full(len(py[p]), i) for i, p in enumerate(pops)]))
    # How the threshold moves: each population's own Youden threshold, clean and under each shift.
    movement = {pop: {"clean": M.youden_threshold(ys[pop]["val"], apply_platt(lg[pop]["val"], cal)),
                      "pooled with shifts": M.youden_threshold(py[pop], pooled[pop]),
                      **{name: M.youden_threshold(ys[pop]["val"], apply_platt(v, cal)) for name, v in shifted_val[pop].items()}}
                for pop in pops}

    def block(y, logits, t=threshold):
        p = apply_platt(logits, cal)
        return dict(M.summary(y, p, t), calibration_slope=calibration_slope_intercept(y, p)["slope"])

    names = {"child": "children (Kermany, child-level split of official train)",
             "adult": "adults (NIH ChestX-ray14, split by patient_id)"}
    results = {}
    for pop in pops:
        for part in ("val", "test"):
            results[f"{pop}_{part}"] = dict(block(ys[pop][part], lg[pop][part]), split=f"{names[pop]}: {part}")
    official_val = official_val_logits(cfg, net, device)
    if official_val is not None:
        results["official_val"] = dict(block(*official_val), split="official Kaggle val (16 children, second uploader)")
    cross = {
        "child-val threshold on adult test": _short(block(ys["adult"]["test"], lg["adult"]["test"], movement["child"]["clean"])),
        "adult-val threshold on child test": _short(block(ys["child"]["test"], lg["child"]["test"], movement["adult"]["clean"])),
    }
    for k, t in (("child-val threshold on adult test", movement["child"]["clean"]), ("adult-val threshold on child test", movement["adult"]["clean"])):
        cross[k]["threshold"] = t
    # Test-set robustness for adults only (113 films); the children's shift response is in
    # threshold.per_population_youden (validation) and in the 1.1.0 card.
    robustness = {"adult_test": {name: _short(block(ys["adult"]["test"], predict_logits(net, sources["adult"]["test"][0], cfg.img_size,
                                                                                        device, shift=SHIFTS[name])))
                                 for name in SELECTION_SHIFTS}}
    subgroups = _adult_subgroups(parts["adult"]["test"], apply_platt(lg["adult"]["test"], cal), threshold)

    counts = {pop: {k: {"n": len(v), "pneumonia": sum(i.label for i in v), "normal": sum(1 - i.label for i in v),
                        "groups": len({i.group for i in v})} for k, v in parts[pop].items()} for pop in pops}
    meta = {
        "task": "cxr-pneumonia",
        "name": cfg.name,
        "version": cfg.version,
        "architecture": cfg.arch,
        "classes": list(CLASSES),
        "populations": list(pops),
        "output": "one logit; P(pneumonia) = sigmoid(a * logit + b) with the calibration below",
        "input": {
            "channels": 1, "img_size": cfg.img_size, "source_size": 224,
            "pipeline": "grey [0,1] -> 224x224 Lanczos (aspect not kept, as the training copies) -> "
                        f"{cfg.img_size}x{cfg.img_size} antialiased -> histogram equalisation -> (x-0.5)/0.29",
            "normalisation": {"mean": 0.5, "std": 0.29},
        },
        "calibration": dict(cal, method="Platt scaling on both populations' validation films, each population weighted equally"),
        "threshold": {"value": threshold, "rule": THRESHOLD_RULE, "per_population_youden": movement},
        "training": {
            "data": "children: Kermany/Guangzhou official train split (224 px copies); adults: NIH ChestX-ray14 "
                    "frontal films labelled with RSNA annotations where available (512 px copies)",
            "split": f"children: the parts of {cfg.kermany_splits or 'a seeded child-level split'}; adults: by patient_id, seed {cfg.seed}",
            "counts": counts,
            "fingerprint": {f"{pop}_{k}": D.fingerprint(v) for pop in pops for k, v in parts[pop].items()},
            "config": config_dict(cfg),
            "init_from": cfg.init_from or None,
            "best_epoch": best["epoch"],
            "selection": "mean over populations of the validation AUROC (clean films"
                         + (f"; children: a seeded stratified {cfg.select_child_n} of the val films" if cfg.select_child_n else "") + ")",
            "history": history,
            "wall_time_s": round(wall_s, 1),
            "device": str(device),
            "threads": torch.get_num_threads(),
            "host": platform.machine(),
            "date": _dt.date.today().isoformat(),
        },
        "validation": results["child_val"],
        "metrics": results,
        "cross_source": cross,
        "robustness": robustness,
        "subgroups": {"adult_test": subgroups},
    }
    save_bundle(cfg.out, net.state_dict(), meta, card=render_mixed_card)
    out = Path(cfg.out)
    roots = {"child": Path(cfg.data), "adult": Path(cfg.adult_data)}
    (out / "splits.csv").write_text(
        "path,label,split,population\n" + "".join(
            f"{it.path.relative_to(roots[pop])},{CLASSES[it.label]},{k},{pop}\n"
            for pop in pops for k, v in parts[pop].items() for it in v))
    print(f"threshold {threshold:.3f}; " + "; ".join(f"{k}: AUROC {v['auroc']:.4f} sens {v['sensitivity']:.3f} "
                                                   f"spec {v['specificity']:.3f} (n={v['n']})" for k, v in results.items()), flush=True)
    return meta


def _adult_subgroups(items: list[D.Item], p: np.ndarray, threshold: float) -> dict:
    y = np.array([it.label for it in items])
    out = {}
    for col in ("view", "sex", "confirmed_by"):
        for level in sorted({it.extra.get(col, "") for it in items}):
            m = np.array([it.extra.get(col, "") == level for it in items])
            out[f"{col}={level}"] = {"n": int(m.sum()), "auroc": M.compute_auroc(y[m], p[m]),
                                     **{k: v for k, v in M.compute_threshold_metrics(y[m], p[m], threshold).items()
                                        if k in ("sensitivity", "specificity", "accuracy")}}
    return out
