"""Cross-validated figures of a bundle's adult branch: ``cxr-model adult-branch cv``.

The bundled branch's own test figures rest on few films: 113 adults for AUROC and only 20 with
radiologists' boxes for the pointing game, whose 95 % interval then spans about 0.4. This command
gives the internal-validation estimate of TRIPOD+AI (item 12) with more films behind it:

1. the bundle's adult *training* and *validation* films (the test patients are not read) are split
   into ``folds`` groups by ``patient_id``, so no patient is on both sides of a fold;
2. for each group the head is refitted on the others by the bundle's own recipe (box weight, spatial
   prior, epochs: ``metadata.json["adult_branch"]["training"]``; :func:`branch_fit.train_head`) on the
   same frozen backbone's maps, and scores the held-out group;
3. the out-of-fold film logits give AUROC (bootstrap CI), and the map each held-out boxed film would
   be shown (the branch's default method and layer, computed by :func:`explain.explain` on a view
   of the shared network with the fold's head) gives the pointing game and the energy share;
4. a class-balanced Platt fit on the out-of-fold logits gives the slope the recipe's logits call for,
   on 652 films instead of the 114 validation films the bundled slope was fitted on; their ratio is
   the calibration slope to expect of the adults' P on new films of this source (below 1: too steep).

The figures estimate the *recipe*, not the bundled head: each fold's head is trained on about 4/5 of
the 652 films, the bundled one on the 538 training films. Its operating point is not re-chosen, so
no threshold figure is given here.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from sklearn.model_selection import GroupKFold

from cxr_model.files import write_json
from cxr_model.imaging.branch import BranchNet
from cxr_model.imaging.branch_fit import _cached_maps, box_grid, film_logits, spatial_prior, train_head
from cxr_model.imaging.bundle import CxrBundle, load_cxr_bundle
from cxr_model.imaging.branch_measure import rewrite_card
from cxr_model.imaging.data import nih_items
from cxr_model.imaging.explain import default_cam
from cxr_model.imaging.operating import balanced_weights
from cxr_model.imaging.pointing import localise, summarise
from cxr_model.imaging.splits import split_items
from cxr_model.metrics.calibration import fit_platt
from cxr_model.metrics.classification import bootstrap_ci, compute_auroc
from cxr_model.registry import BundleError
from cxr_model.settings import get_settings


def patient_folds(patients: list[str], folds: int) -> np.ndarray:
    """Fold index of each film: ``folds`` groups of patients (``GroupKFold``: deterministic, sizes balanced)."""
    idx = np.arange(len(patients))
    out = np.empty(len(patients), dtype=int)
    for k, (_, held) in enumerate(GroupKFold(folds).split(idx, groups=np.asarray(patients))):
        out[held] = k
    return out


def _fold_view(bundle: CxrBundle, head) -> CxrBundle:
    """The branch's view of the shared network with another head (the bundle itself is not changed)."""
    with bundle.model.hold() as raw:
        net = BranchNet(raw, head.to(bundle.device)).eval()
    return CxrBundle(bundle.model.sibling(net), bundle.branch.meta, bundle.device, bundle.path)


@dataclass
class DevFilms:
    """The adult training + validation films of a bundle's split, with what a fold needs of each."""

    items: list
    maps: torch.Tensor  # (N, C, S, S) layer4 maps at the branch's size
    shapes: list  # each film's (height, width) as read: the boxes' frame
    y: np.ndarray
    boxes: list  # each film's RSNA boxes [x, y, w, h] (empty: none)
    masks: np.ndarray  # (N, S, S) share of each cell the boxes cover
    patients: list


def dev_films(bundle: CxrBundle, kermany_dir, adult_dir, size: int, cache=None, parts: dict | None = None,
              log=print) -> DevFilms:
    """Read (or take from the branch fit's ``cache``) the maps of the adult ``train`` + ``val`` films."""
    parts = parts or {k: split_items(bundle, kermany_dir, k, "adult", adult_dir) for k in ("train", "val")}
    maps, shapes = _cached_maps(bundle, parts, size, cache, log)
    items = parts["train"] + parts["val"]
    x = torch.cat([maps["train"], maps["val"]])
    shape = shapes["train"] + shapes["val"]
    manifest = {it.path.name: it.extra for it in nih_items(adult_dir)}  # a bundle's split rows carry no boxes or patients
    boxes = [json.loads(manifest[it.path.name].get("boxes_xywh") or "[]") for it in items]
    masks = np.stack([box_grid(b, s, x.shape[-1]) for b, s in zip(boxes, shape)])
    return DevFilms(items, x, shape, np.array([it.label for it in items]), boxes, masks,
                    [manifest[it.path.name]["patient_id"] for it in items])


def fold_heads(dev: DevFilms, folds: int, box_weight: float, epochs: int, prior: tuple[float, float] | None):
    """Yield ``(held-out indices, head fitted on the other folds)`` per patient fold; ``prior``: (sigma, floor),
    from the fitting folds' boxes only."""
    fold = patient_folds(dev.patients, folds)
    for k in range(folds):
        fit = fold != k
        p = spatial_prior(dev.masks[fit], *prior) if prior else None
        yield np.flatnonzero(~fit), train_head(dev.maps[fit], dev.y[fit], dev.masks[fit], box_weight, epochs, prior=p)


def out_of_fold_cells(dev: DevFilms, folds: int, box_weight: float, epochs: int,
                      prior: tuple[float, float] | None) -> np.ndarray:
    """``(N, S, S)`` cell contributions of each film from the head of the fold that held it out (their mean is
    the film's out-of-fold logit); ``prior`` as :func:`fold_heads`."""
    out = np.zeros(dev.masks.shape, dtype=np.float32)
    for held, head in fold_heads(dev, folds, box_weight, epochs, prior):
        with torch.no_grad():
            out[held] = head(dev.maps[held].float()).numpy()
    return out


def input_map(cells: np.ndarray, size: int) -> np.ndarray:
    """A film's ``(S, S)`` cell map resized bilinearly to the ``size`` px input: the map as the pointing game reads it."""
    return cv2.resize(cells.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)


def cross_validate(bundle: CxrBundle, kermany_dir: str | Path, adult_dir: str | Path, folds: int = 5,
                   cache: str | Path | None = None, parts: dict | None = None, log=print) -> dict:
    """Out-of-fold AUROC and pointing of the branch recipe over the adult training and validation films.

    ``parts`` (``{"train": items, "val": items}``) replaces the bundle's own parts (tests use a subset).
    """
    t0 = time.time()
    if bundle.branch is None:
        raise ValueError(f"{bundle.path}: has no adult branch to cross-validate")
    spec = bundle.meta["adult_branch"]
    recipe = spec["training"]
    dev = dev_films(bundle, kermany_dir, adult_dir, spec["img_size"], cache, parts, log)
    prior = recipe.get("prior")
    method, layer = default_cam(bundle.branch)
    y, oof, rows, per_fold = dev.y, np.zeros(len(dev.y)), [], []
    for held, head in fold_heads(dev, folds, recipe["box_weight"], recipe["epochs"],
                                 (prior["sigma_cells"], prior["floor"]) if prior else None):
        oof[held] = film_logits(head, dev.maps[held])
        boxed = [(dev.items[i].path, dev.boxes[i]) for i in held if dev.boxes[i]]
        rows += localise(_fold_view(bundle, head), boxed, [(method, layer)])
        per_fold.append({"films": len(held), "pneumonia": int(y[held].sum()), "boxed": len(boxed),
                         "auroc": compute_auroc(y[held], oof[held]) if 0 < y[held].sum() < len(held) else None})
        log(f"fold {len(per_fold)}/{folds}: {len(held)} films, AUROC {per_fold[-1]['auroc']}, {len(boxed)} boxed ({time.time() - t0:.0f} s)")
    platt = fit_platt(y, oof, balanced_weights(y, np.zeros(len(y))))  # the operating point's fit, on every OOF film
    bundled_a = spec["operating_point"]["per_population"]["adult"]["a"]
    return {"folds": folds, "grouping": "patient_id", "parts": ["train", "val"], "test_patients_read": False,
            "films": len(y), "pneumonia": int(y.sum()), "patients": len(set(dev.patients)),
            "auroc": compute_auroc(y, oof), "auroc_ci95": bootstrap_ci(compute_auroc, y, oof, n_resamples=2000, seed=2012),
            "map": {"method": method, "layer": layer}, "pointing": summarise(rows)[0] if rows else None,
            "per_fold": per_fold, "recipe": {k: recipe.get(k) for k in ("box_weight", "prior", "epochs")},
            "platt": {"a_out_of_fold": platt["a"], "a_bundled": bundled_a, "expected_slope": platt["a"] / bundled_a},
            "wall_time_s": round(time.time() - t0, 1)}


def cv_command(args) -> int:
    """``cxr-model adult-branch cv``: print the cross-validated figures; ``--write`` stores them in the
    bundle's metadata (``adult_branch["cross_validation"]``) and re-renders its card. 2 on bad input."""
    s = get_settings()
    try:
        bundle = load_cxr_bundle(args.model_dir, device="cpu")
        res = cross_validate(bundle, s.kermany_dir, s.nih_adult_dir, args.folds, args.cache,
                             log=lambda m: print(m, file=sys.stderr))
    except (BundleError, OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    res["command"] = f"cxr-model adult-branch cv --model-dir {args.model_dir} --folds {args.folds}"
    pt = res["pointing"]
    print(f"{res['folds']}-fold by patient over {res['films']} adult training + validation films ({res['pneumonia']} "
          f"pneumonia, {res['patients']} patients; test patients not read): out-of-fold AUROC {res['auroc']:.3f} "
          f"[{res['auroc_ci95'][0]:.3f}, {res['auroc_ci95'][1]:.3f}]")
    if pt:
        print(f"shown map {res['map']['method']} / {res['map']['layer']}: pointing {pt['hits']}/{pt['n']} = {pt['pointing']:.3f} "
              f"[{pt['pointing_ci95'][0]:.2f}, {pt['pointing_ci95'][1]:.2f}], energy {pt['energy']:.3f}, chance {pt['chance']:.3f}")
    pl = res["platt"]
    print(f"Platt slope on the out-of-fold logits {pl['a_out_of_fold']:.2f} (bundled, from validation: {pl['a_bundled']:.2f}): "
          f"expected calibration slope of the adults' P {pl['expected_slope']:.2f}")
    if args.write:
        path = bundle.path
        meta = json.loads((path / "metadata.json").read_text())
        meta["adult_branch"]["cross_validation"] = res
        write_json(path / "metadata.json", meta)
        rewrite_card(bundle)
        print(f"wrote {path / 'metadata.json'} and {path / 'MODEL_CARD.md'}")
    return 0
