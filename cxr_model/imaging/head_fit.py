"""Refit the 224 px network's linear head so that film sharpness stops standing in for pneumonia.

On the Kermany films the pneumonia films are blurrier than the normal ones: the mean absolute second
difference of the 224 px source (:func:`sharpness`) alone ranks the children's validation films with
an AUROC near 0.9. A network trained on them learns that shortcut, and a site whose normal films are
softer (the 16 official val films are) gets them called pneumonia.

``cxr-model head fit --model-dir BASE --out DIR`` keeps the backbone, so the OOD check, the
population model and the adults' 448 px branch, which all read its features, do not move. It fits a
new head (class-balanced L2 logistic regression on standardised pooled features, folded into
``fc``) on the training films of both populations, each seen clean and in the sharpness variants of
:data:`SEEN_AS`: normal films also blurred, pneumonia films also sharpened, so that in what the head
learns from, sharpness no longer tells the classes apart. Films of both classes are also seen
tightly cropped (75-90 % of the frame, zoomed back): a head fitted on full frames alone called
cropped normal children pneumonia far more often. And films of both classes are seen over-exposed
(brightness x 1.15-1.45, the highlights clipped), at a third of a film's weight
(:data:`WEIGHT`): 2.5.0's head lost the most specificity there (0.881 of the children's validation
normals at x 1.3), and at full weight this variant drowned the blur variants' lesson.

``C`` is chosen on the children's validation films (:func:`choose`): among the heads whose
sharpness-matched AUROC (:func:`matched_auroc`) is within :data:`MATCHED_SLACK` of the best, the one
whose validation normals keep the highest specificity under the worst of :data:`ROBUST_SHIFTS`, each
head at its own Youden threshold on the clean films. Then run
``cxr-model operating-point fit`` on ``DIR``: the operating point belongs to the new logits.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms.v2 import functional as F

from cxr_model.imaging.bundle import load_cxr_bundle
from cxr_model.imaging.data import load_sources
from cxr_model.imaging.operating_fit import features_logits
from cxr_model.imaging.shift import SHIFTS, crop
from cxr_model.imaging.splits import split_items
from cxr_model.imaging.transforms import SOURCE_SIZE
from cxr_model.metrics.classification import compute_auroc, matched_auroc, youden_threshold
from cxr_model.registry import METADATA, WEIGHTS, BundleError, model_id, read_state, save_bundle
from cxr_model.settings import get_settings

#: Sharpness and crop variants of a uint8 source ``(N, 1, H, W)``.
VARIANTS = {
    "clean": lambda x: x,
    "blur 0.7": lambda x: F.gaussian_blur(x, [5, 5], [0.7, 0.7]),
    "blur 1.2": lambda x: F.gaussian_blur(x, [7, 7], [1.2, 1.2]),
    "sharpen": lambda x: _unsharp(x, 2.0, 0.8),
    "crop 75-90 %": lambda x: _crop_span(x, 0.75, 0.9),
    "exposure +15-45 %": lambda x: _brighten_span(x, 1.15, 1.45),
}
#: Which variants the head sees of each class: softer normals and crisper pneumonias than the data has,
#: and both classes cropped and over-exposed.
SEEN_AS = {False: ("clean", "blur 0.7", "blur 1.2", "crop 75-90 %", "exposure +15-45 %"),
           True: ("clean", "sharpen", "crop 75-90 %", "exposure +15-45 %")}
#: A variant's weight per film in the fit (1 where not named).
WEIGHT = {"exposure +15-45 %": 0.3}
C_GRID = (0.01, 0.1, 1.0)
#: The validation shifts a head's specificity must survive (at its clean Youden threshold): softer, zoomed, brighter, harder.
ROBUST_SHIFTS = ("blur 1.2", "tight crop (80 %)", "brighter (exposure +30 %)", "high contrast (x1.5)")
MATCHED_SLACK = 0.005


def _unsharp(x: torch.Tensor, sigma: float, amount: float) -> torch.Tensor:
    k = 2 * int(round(2 * sigma)) + 1
    soft = F.gaussian_blur(x.float(), [k, k], [sigma, sigma])
    return (x.float() + amount * (x.float() - soft)).round().clamp(0, 255).to(torch.uint8)


def film_value(x: torch.Tensor, lo: float, hi: float) -> float:
    """The film's own value in ``[lo, hi]`` (a crop fraction, a brightness factor), from the CRC32 of its
    pixels ``(1, H, W)``: a film is cropped or brightened alike in every run and batch."""
    return lo + (hi - lo) * (zlib.crc32(x.contiguous().numpy().tobytes()) % 1001) / 1000


def _crop_span(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    if x.dim() == 4:
        return torch.stack([_crop_span(s, lo, hi) for s in x])
    return crop(film_value(x, lo, hi))(x)


def _brighten_span(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Each film brightened by its own factor in ``[lo, hi]`` (from its pixels, as :func:`film_value`), clipped at 255."""
    if x.dim() == 4:
        return torch.stack([_brighten_span(s, lo, hi) for s in x])
    return F.adjust_brightness(x, film_value(x, lo, hi))


def sharpness(sources: torch.Tensor) -> np.ndarray:
    """Mean absolute second difference (rows and columns) of each uint8 source ``(N, 1, H, W)``: ``(N,)``."""
    x = sources.double()
    return ((x[..., 2:, :] - 2 * x[..., 1:-1, :] + x[..., :-2, :]).abs().mean((1, 2, 3))
            + (x[..., 2:] - 2 * x[..., 1:-1] + x[..., :-2]).abs().mean((1, 2, 3))).numpy()


def pooled(bundle, sources: torch.Tensor, variant: str) -> tuple[np.ndarray, np.ndarray]:
    """Pooled penultimate features ``(N, D)`` and logits ``(N,)`` of ``sources`` in one sharpness variant."""
    return features_logits(bundle, sources, None if variant == "clean" else VARIANTS[variant])


def fit_head(feats: dict[bool, dict[str, np.ndarray]], c: float) -> tuple[np.ndarray, float]:
    """Logistic regression on the variants of :data:`SEEN_AS`; returns ``fc`` weight ``(D,)`` and bias.

    Args:
        feats: class (``True`` = pneumonia) -> variant -> features ``(N_class, D)`` of that class's
            films, for the variants :data:`SEEN_AS` gives it.
    """
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([feats[cls][v] for cls in (False, True) for v in SEEN_AS[cls]]).astype(np.float64)
    t = np.concatenate([np.full(len(feats[cls][v]), cls) for cls in (False, True) for v in SEEN_AS[cls]])
    wt = np.concatenate([np.full(len(feats[cls][v]), WEIGHT.get(v, 1.0)) for cls in (False, True) for v in SEEN_AS[cls]])
    mu, sd = x.mean(0), x.std(0) + 1e-6
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit((x - mu) / sd, t, sample_weight=wt)
    w = clf.coef_[0] / sd
    return w, float(clf.intercept_[0] - w @ mu)


def refit_head(model_dir: str | Path, out_dir: str | Path, name: str, version: str, kermany_dir, adult_dir,
               c_grid=C_GRID, log=print) -> dict:
    """Fit, choose ``C`` on validation, write the bundle ``out_dir`` (see the module docstring); returns its ``head_refit``."""
    t0 = time.time()
    base = load_cxr_bundle(model_dir, device="cpu")
    if base.img_size != SOURCE_SIZE:
        raise ValueError(f"{model_dir}: the head refit reads {SOURCE_SIZE} px films; this network reads {base.img_size}")
    src, y, pop = {}, {}, {}
    for part in ("train", "val"):
        items = split_items(base, kermany_dir, part, None, adult_dir)
        src[part], errors = load_sources(items)
        if errors:
            raise ValueError(f"{errors[0][0].path}: {errors[0][1]}")
        y[part] = np.array([bool(it.label) for it in items])
        pop[part] = np.array([it.extra.get("population", "child") for it in items])
    # each class only in the variants it is seen as (a normal film is never sharpened, a pneumonia never blurred)
    feats = {cls: {v: pooled(base, src["train"][y["train"] == cls], v)[0] for v in SEEN_AS[cls]} for cls in (False, True)}
    val = {v: pooled(base, src["val"], v) for v in ("clean", "blur 1.2", "sharpen", "crop 75-90 %", "exposure +15-45 %")}
    val.update({v: features_logits(base, src["val"], SHIFTS[v]) for v in ROBUST_SHIFTS if v not in val})
    log(f"features of {len(y['train'])} training and {len(y['val'])} validation films ({time.time() - t0:.0f} s)")
    ch, sharp = pop["val"] == "child", sharpness(src["val"])
    heads, table = {}, []
    for c in [None, *c_grid]:
        if c is None:  # the network's own head, for comparison
            score = {v: lg for v, (_, lg) in val.items()}
        else:
            heads[c] = fit_head(feats, c)
            score = {v: f @ heads[c][0] + heads[c][1] for v, (f, _) in val.items()}
        table.append(_row(c, score, y["val"], ch, sharp))
        log(json.dumps(table[-1]))
    best = choose(table[1:])
    w, b = heads[best["C"]]
    state, meta = read_state(model_dir)
    state["fc.weight"] = torch.as_tensor(w, dtype=state["fc.weight"].dtype).reshape(state["fc.weight"].shape)
    state["fc.bias"] = torch.as_tensor([b], dtype=state["fc.bias"].dtype)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in Path(model_dir).iterdir():  # splits, OOD statistics, explain settings: refitted or kept by the next steps
        if f.is_file() and f.name not in (WEIGHTS, METADATA, "MODEL_CARD.md"):
            shutil.copy(f, out_dir / f.name)
    refit = {"base": model_id(meta), "rule": f"among the C whose sharpness-matched AUROC on the children's validation films is "
             f"within {MATCHED_SLACK} of the best, the one whose validation normals keep the highest specificity under the "
             f"worst of {', '.join(ROBUST_SHIFTS)} (each head at its clean Youden threshold)",
             "seen_as": {"normal": list(SEEN_AS[False]), "pneumonia": list(SEEN_AS[True])}, "weights": WEIGHT, "C": best["C"],
             "choice": table, "n_train": int(len(y["train"])), "wall_time_s": round(time.time() - t0, 1),
             "sharpness_only_child_val_auroc": round(float(compute_auroc(y["val"][ch], -sharp[ch])), 4)}
    save_bundle(out_dir, state, dict(meta, name=name, version=version, head_refit=refit))
    log(f"wrote {out_dir} (C = {best['C']}); next: cxr-model operating-point fit --model-dir {out_dir}")
    return refit


def choose(rows: list[dict]) -> dict:
    """The chosen head's row: the highest worst-shift specificity among the rows whose matched AUROC is
    within :data:`MATCHED_SLACK` of the best (ties: the higher matched AUROC)."""
    top = max(r["child_val_matched_auroc"] for r in rows)
    near = [r for r in rows if r["child_val_matched_auroc"] >= top - MATCHED_SLACK]
    return max(near, key=lambda r: (r["worst_shift_specificity"], r["child_val_matched_auroc"]))


def shift_specificity(y: np.ndarray, score: dict[str, np.ndarray]) -> dict[str, float]:
    """Specificity of each of :data:`ROBUST_SHIFTS` at the clean scores' Youden threshold (``y`` boolean)."""
    t = youden_threshold(y, score["clean"])
    return {v: round(float((score[v][~y] < t).mean()), 3) for v in ROBUST_SHIFTS}


def _row(c, score: dict[str, np.ndarray], y: np.ndarray, child: np.ndarray, sharp: np.ndarray) -> dict:
    reversed_ = np.where(y, score["sharpen"], score["blur 1.2"])  # crisp pneumonias, soft normals: the shortcut turned round
    normal = child & ~y
    return {"C": c, "child_val_auroc": round(compute_auroc(y[child], score["clean"][child]), 4),
            "child_val_matched_auroc": round(matched_auroc(y[child], score["clean"][child], sharp[child]), 4),
            "child_val_reversed_auroc": round(compute_auroc(y[child], reversed_[child]), 4),
            "normal_logit_rise_blur_1_2": round(float(np.median(score["blur 1.2"][normal] - score["clean"][normal])), 3),
            "child_val_crop_auroc": round(compute_auroc(y[child], score["crop 75-90 %"][child]), 4),
            "normal_logit_rise_crop": round(float(np.median(score["crop 75-90 %"][normal] - score["clean"][normal])), 3),
            "child_val_bright_auroc": round(compute_auroc(y[child], score["exposure +15-45 %"][child]), 4),
            "normal_logit_rise_bright": round(float(np.median(score["exposure +15-45 %"][normal] - score["clean"][normal])), 3),
            "shift_specificity": (spec := shift_specificity(y[child], {k: v[child] for k, v in score.items()})),
            "worst_shift_specificity": min(spec.values()),
            "adult_val_auroc_224": round(compute_auroc(y[~child], score["clean"][~child]), 4)}


def fit_command(args) -> int:
    """``cxr-model head fit``; 2 on a missing bundle, data or an unreadable training film."""
    s = get_settings()
    try:
        refit_head(args.model_dir, args.out, args.name, args.version, s.kermany_dir, s.data_dir / "cxr" / "nih_adult")
    except (BundleError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
