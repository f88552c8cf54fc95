"""After training: calibration, the operating threshold, metrics per split, the bundle and card."""
from __future__ import annotations

import datetime as _dt
import os
import platform
from pathlib import Path

import numpy as np

from cxr_model.imaging import data as D
from cxr_model.imaging.card import render_card
from cxr_model.imaging.config import config_dict
from cxr_model.imaging.labels import CLASSES
from cxr_model.imaging.predict import predict_logits
from cxr_model.imaging.shift import SHIFTS
from cxr_model.imaging.transforms import source_size
from cxr_model.metrics import classification as M
from cxr_model.metrics.calibration import apply_platt, fit_platt
from cxr_model.registry import save_bundle

THRESHOLD_RULE = (
    "Youden's J (max sensitivity + specificity - 1) on the calibrated probabilities of the "
    "validation split pooled with the same validation images under 10 simulated acquisition "
    "shifts (exposure, contrast, gamma, crop, positioning, blur, noise), so that the operating "
    "point does not rest on the training site's look alone. Chosen on validation, never on test."
)


def finish_bundle(cfg, net, parts, src_val, y_val, device, history, best, wall_s) -> dict:
    """Calibrate, pick the threshold, measure every split, write ``cfg.out`` and return metadata."""

    logits_val = predict_logits(net, src_val, cfg.img_size, device)
    cal = fit_platt(y_val, logits_val)
    shifted_val = {name: predict_logits(net, src_val, cfg.img_size, device, shift=fn) for name, fn in SHIFTS.items()}
    pooled_y = np.concatenate([y_val] * (1 + len(SHIFTS)))
    pooled_p = apply_platt(np.concatenate([logits_val, *shifted_val.values()]), cal)
    threshold = M.youden_threshold(pooled_y, pooled_p)

    def block(y, logits):
        return M.summary(y, apply_platt(logits, cal), threshold)

    validation = block(y_val, logits_val)
    validation["split"] = "validation (child-level split of official train)"
    results = {"validation": validation}
    robustness = {"validation": {name: _short(block(y_val, lg)) for name, lg in shifted_val.items()}}
    if parts.get("test"):
        src_test, _ = D.load_sources(parts["test"], progress=True, size=source_size(cfg.img_size))
        y_test = np.array([it.label for it in parts["test"]])
        lt = predict_logits(net, src_test, cfg.img_size, device)
        results["test"] = dict(block(y_test, lt), split="own held-out test (child-level split of official train)")
        robustness["test"] = {name: _short(block(y_test, predict_logits(net, src_test, cfg.img_size, device, shift=fn)))
                              for name, fn in SHIFTS.items()}
    official_val = official_val_logits(cfg, net, device)
    if official_val is not None:
        results["official_val"] = dict(block(*official_val), split="official Kaggle val (16 images, second uploader)")

    counts = {k: {"n": len(v), "pneumonia": sum(i.label for i in v), "normal": sum(1 - i.label for i in v)} for k, v in parts.items()}
    meta = {
        "task": "cxr-pneumonia",
        "name": cfg.name,
        "version": cfg.version,
        "architecture": cfg.arch,
        "classes": list(CLASSES),
        "output": "one logit; P(pneumonia) = sigmoid(a * logit + b) with the calibration below",
        "input": {
            "channels": 1,
            "img_size": cfg.img_size,
            "source_size": 224,
            "pipeline": "grey [0,1] -> 224x224 Lanczos (aspect not kept, as the training copies) -> "
                        f"{cfg.img_size}x{cfg.img_size} antialiased -> histogram equalisation -> (x-0.5)/0.29",
            "normalisation": {"mean": 0.5, "std": 0.29},
        },
        "calibration": dict(cal, method="Platt scaling on the validation split"),
        "threshold": {"value": threshold, "rule": THRESHOLD_RULE},
        "training": {
            "data": "Kermany/Guangzhou paediatric CXR, official train split (224 px copies)",
            "split": f"by child (personN / IM-NNNN stems, duplicates kept together), seed {cfg.seed}",
            "counts": counts,
            "fingerprint": {k: D.fingerprint(v) for k, v in parts.items()},
            "config": config_dict(cfg),
            "best_epoch": best["epoch"],
            "history": history,
            "wall_time_s": round(wall_s, 1),
            "device": str(device),
            "world_size": int(os.environ.get("WORLD_SIZE", "1")),
            "host": platform.machine(),
            "date": _dt.date.today().isoformat(),
        },
        "validation": results["validation"],
        "metrics": results,
        "robustness": robustness,
    }
    save_bundle(cfg.out, net.state_dict(), meta, card=render_card)
    out = Path(cfg.out)
    (out / "splits.csv").write_text(
        "path,label,split\n" + "".join(f"{it.path.relative_to(Path(cfg.data))},{CLASSES[it.label]},{k}\n"
                                       for k, v in parts.items() for it in v)
    )
    return meta


def official_val_logits(cfg, net, device) -> tuple[np.ndarray, np.ndarray] | None:
    """Labels and logits of the official Kaggle val films (second uploader); None where there are none."""
    items = D.kermany_items(cfg.data, "val")
    if not items:
        return None
    src, _ = D.load_sources(items, size=source_size(cfg.img_size))
    return np.array([it.label for it in items]), predict_logits(net, src, cfg.img_size, device)


def _short(m: dict) -> dict:
    return {k: m[k] for k in ("auroc", "sensitivity", "specificity", "accuracy")}
