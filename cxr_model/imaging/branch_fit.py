"""Fit a bundle's adult branch (:mod:`~cxr_model.imaging.branch`): ``cxr-model adult-branch fit``.

From a bundle trained on both populations (its ``splits.csv`` names the adult films of each part):

1. every adult *training* and *validation* film is read at ``size`` px through the one preprocessing
   path and the frozen backbone gives its ``layer4`` map (one forward each; the backbone is not
   changed, so the children's 224 px path keeps every figure it had);
2. the head is trained on the training films only: class-balanced BCE of the film logit (mean of
   the cell logits) plus ``box_weight`` x the cell-wise BCE of the boxed pneumonia films' cells
   against their radiologists' boxes (RSNA, ``nih_adult/manifest.csv``), the limited-supervision
   loss of Li et al. (CVPR 2018);
3. the branch's operating point is chosen on the *validation* adults, by the rule of every other
   population (:func:`~cxr_model.imaging.operating.choose_operating_point`: class-balanced Platt
   slope, Youden centre over the clean films and the 4 selection shifts);
4. the test adults are scored once, by the product's route (population from the image; the branch
   for films judged adult), and everything is written to the new bundle's ``metadata.json``.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from cxr_model.imaging import operating as OP
from cxr_model.imaging.branch import BRANCH_WEIGHTS, BranchHead, BranchNet
from cxr_model.imaging.branch_measure import measure_branch
from cxr_model.imaging.bundle import CxrBundle, load_cxr_bundle
from cxr_model.imaging.data import nih_items
from cxr_model.imaging.io import read_image
from cxr_model.imaging.operating_fit import print_metrics
from cxr_model.imaging.shift import SELECTION_SHIFTS, SHIFTS
from cxr_model.imaging.splits import split_items
from cxr_model.imaging.transforms import EvalTransform, to_source
from cxr_model.registry import BundleError, sha256_file
from cxr_model.settings import get_settings


@torch.inference_mode()
def feature_maps(bundle: CxrBundle, paths: list[Path], size: int, shift=None) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """``float16 (N, C, S, S)`` layer4 maps of the films at ``size`` px (after ``shift`` of the uint8
    source, if given) and each film's ``(height, width)`` as read (the boxes' frame)."""
    tf = EvalTransform(size)
    maps, shapes = [], []
    with bundle.model.hold() as raw:
        net = BranchNet(raw, BranchHead())
        for p in paths:
            gray = read_image(p)
            shapes.append(gray.shape)
            src = to_source(gray, size)
            if shift is not None:
                src = shift(src)
            maps.append(net.feature_map(tf(src[None]).to(bundle.device)).half().cpu())
    return torch.cat(maps), shapes


def box_grid(boxes_xywh: list, shape: tuple[int, int], cells: int) -> np.ndarray:
    """``(cells, cells)`` share of each cell covered by the boxes (the input is the squashed film)."""
    h, w = shape
    m = np.zeros((h, w), np.float32)
    for x, y, bw, bh in boxes_xywh:
        m[max(int(y), 0):int(np.ceil(y + bh)), max(int(x), 0):int(np.ceil(x + bw))] = 1
    return cv2.resize(m, (cells, cells), interpolation=cv2.INTER_AREA)


def spatial_prior(masks: np.ndarray, sigma: float, floor: float) -> torch.Tensor:
    """``(S, S)`` prior of the head, mean 1: the share of the boxed films whose boxes cover each cell,
    Gaussian-smoothed (``sigma`` cells), scaled to a maximum of 1 and raised to at least ``floor``
    (so no cell's evidence is dropped)."""
    boxed = masks[masks.reshape(len(masks), -1).sum(1) > 0]
    if not len(boxed):
        raise ValueError("a spatial prior needs films with boxes")
    fr = cv2.GaussianBlur(boxed.mean(0).astype(np.float32), (0, 0), sigma)
    fr = np.maximum(fr / fr.max(), floor)
    return torch.from_numpy(fr / fr.mean())


def train_head(maps: torch.Tensor, y: np.ndarray, masks: np.ndarray, box_weight: float, epochs: int = 200,
               lr: float = 3e-3, weight_decay: float = 1e-2, seed: int = 0, prior: torch.Tensor | None = None) -> BranchHead:
    """Full-batch AdamW on the cached maps (see the module docstring); ``masks`` ``(N, S, S)``,
    all zero for films without boxes. With a ``prior`` the film logit is the mean of the cell logits
    weighted by it (the box loss stays on the cells' own logits)."""
    torch.manual_seed(seed)
    x = maps.float()
    head = BranchHead(x.shape[1], prior)
    head.mu.copy_(x.mean((0, 2, 3)))
    head.sd.copy_(x.std((0, 2, 3)) + 1e-6)
    yt = torch.as_tensor(y, dtype=torch.float32)
    pos_weight = (yt == 0).sum() / (yt == 1).sum().clamp(min=1)
    m = torch.as_tensor(masks, dtype=torch.float32)
    boxed = m.flatten(1).sum(1) > 0
    opt = torch.optim.AdamW(head.linear.parameters(), lr=lr, weight_decay=weight_decay)
    # standardised and channels-last once (what ``head`` does per call), not on every epoch: ~8x faster
    z = ((x - head.mu[:, None, None]) / head.sd[:, None, None]).permute(0, 2, 3, 1).contiguous()
    for _ in range(epochs):
        cells = head.linear(z)[..., 0]
        loss = F.binary_cross_entropy_with_logits(head.weigh(cells).flatten(1).mean(1), yt, pos_weight=pos_weight)
        if box_weight and boxed.any():
            loss = loss + box_weight * F.binary_cross_entropy_with_logits(cells[boxed], (m[boxed] > 0.5).float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head.eval()


def map_parts(items: dict) -> dict:
    """The parts whose maps a fit reads: ``train``, ``val`` and ``"val <shift>"`` (the val films under each
    selection shift); also the layout of its ``--cache``."""
    return {"train": items["train"], "val": items["val"], **{f"val {n}": items["val"] for n in SELECTION_SHIFTS}}


def _cached_maps(bundle: CxrBundle, parts: dict, size: int, cache, log) -> tuple[dict, dict]:
    """Maps of each part (``"val <shift>"``: the val films under that shift), read from / written to
    the ``cache`` npz where given (checked against the parts' film lists)."""
    names = {k: np.array([str(it.path.name) for it in v]) for k, v in parts.items()}
    if cache is not None and Path(cache).exists():
        z = np.load(cache)
        if all(f"{k}|names" in z and np.array_equal(z[f"{k}|names"], names[k]) for k in parts):
            log(f"maps from {cache}")
            return ({k: torch.from_numpy(z[f"{k}|maps"]) for k in parts},
                    {k: [tuple(r) for r in z[f"{k}|shapes"]] for k in parts})
        raise ValueError(f"{cache}: made for other films or sizes; delete it")
    maps, shapes, t0 = {}, {}, time.time()
    for k, v in parts.items():
        shift = SHIFTS[k[4:]] if k.startswith("val ") else None
        maps[k], shapes[k] = feature_maps(bundle, [it.path for it in v], size, shift)
        log(f"{k}: {len(v)} adult films at {size} px ({time.time() - t0:.0f} s)")
    if cache is not None:
        np.savez(cache, **{f"{k}|{w}": a for k in parts for w, a in
                           (("maps", maps[k].numpy()), ("shapes", np.array(shapes[k])), ("names", names[k]))})
    return maps, shapes


@torch.inference_mode()
def film_logits(head: BranchHead, maps: torch.Tensor) -> np.ndarray:
    return head(maps.float()).flatten(1).mean(1).numpy().astype(np.float64)


def fit_branch(model_dir: str | Path, out_dir: str | Path, kermany_dir: str | Path, adult_dir: str | Path,
               name: str, version: str, size: int = 448, box_weight: float = 1.0, epochs: int = 200,
               command: str = "", cache: str | Path | None = None, prior: tuple[float, float] | None = None,
               log=print) -> dict:
    """Fit, measure and write the branch into a copy of ``model_dir`` at ``out_dir``; returns its metadata."""
    t0 = time.time()
    bundle = load_cxr_bundle(model_dir, device="cpu")
    if bundle.branch is not None:
        raise ValueError(f"{model_dir}: already has an adult branch; fit from the bundle without one")
    boxes = {it.path.name: json.loads(it.extra.get("boxes_xywh") or "[]") for it in nih_items(adult_dir)}
    items = {k: split_items(bundle, kermany_dir, k, "adult", adult_dir) for k in ("train", "val", "test")}
    y = {k: np.array([it.label for it in v]) for k, v in items.items()}
    maps, shapes = _cached_maps(bundle, map_parts(items), size, cache, log)
    cells = maps["train"].shape[-1]
    masks = np.stack([box_grid(boxes.get(it.path.name, []), s, cells) for it, s in zip(items["train"], shapes["train"])])
    prior_map = spatial_prior(masks, *prior) if prior else None  # (sigma, floor), from the training boxes only
    head = train_head(maps["train"], y["train"], masks, box_weight, epochs, prior=prior_map)
    val_logits = film_logits(head, maps["val"])
    shifted = {n: film_logits(head, maps[f"val {n}"]) for n in SELECTION_SHIFTS}
    op = OP.choose_operating_point({"adult": (y["val"], val_logits)}, {"adult": shifted})
    log(f"head and operating point ({time.time() - t0:.0f} s)")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in ("model.pt", "ood.pt", "ood.json", "splits.csv"):
        if (bundle.path / f).exists():
            shutil.copy(bundle.path / f, out_dir / f)
    torch.save({k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}, out_dir / BRANCH_WEIGHTS)
    meta = json.loads((bundle.path / "metadata.json").read_text())
    base_id = bundle.model_id
    meta.update(name=name, version=version)
    meta["adult_branch"] = {
        "file": BRANCH_WEIGHTS, "sha256": sha256_file(out_dir / BRANCH_WEIGHTS), "img_size": size, "layer": "layer4",
        "cells": cells, "operating_point": {"threshold": OP.THRESHOLD, "per_population": {"adult": op["per_population"]["adult"]},
                                            "pooled": op["per_population"]["adult"], "movement": op["movement"]},
        "training": {"base": base_id, "films": len(items["train"]), "pneumonia": int(y["train"].sum()),
                     "boxed": int((masks.reshape(len(masks), -1).sum(1) > 0).sum()), "box_weight": box_weight,
                     "prior": None if prior is None else {"sigma_cells": prior[0], "floor": prior[1]},
                     "epochs": epochs, "optimiser": "AdamW lr 3e-3, weight decay 1e-2, full batch",
                     "command": command, "wall_time_s": round(time.time() - t0, 1), "date": date.today().isoformat()},
    }
    (out_dir / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def fit_command(args) -> int:
    """``cxr-model adult-branch fit``: fit, then measure as the product scores; 2 on a bad bundle or data."""
    s = get_settings()
    adult_dir = s.data_dir / "cxr" / "nih_adult"
    prior = None if args.prior_floor is None else (args.prior_sigma, args.prior_floor)
    cmd = (f"cxr-model adult-branch fit --model-dir {args.model_dir} --out {args.out} --name {args.name} --version "
           f"{args.version} --size {args.size} --box-weight {args.box_weight} --epochs {args.epochs}"
           + ("" if prior is None else f" --prior-sigma {args.prior_sigma} --prior-floor {args.prior_floor}"))
    try:
        fit_branch(args.model_dir, args.out, s.kermany_dir, adult_dir, args.name, args.version, args.size,
                   args.box_weight, args.epochs, cmd, args.cache, prior)
        meta = measure_branch(args.out, s.kermany_dir, adult_dir)
    except (BundleError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_metrics(meta)
    return 0
