"""How much box supervision should the adult branch's head get? Patient-grouped CV on train + validation.

The adult branch (``cxr_model/imaging/branch.py``) scores a film as the mean of per-cell logits of the
448 px ``layer4`` map; its head is trained with the film labels plus ``box_weight`` x a cell-wise loss
against the RSNA boxes (``branch_fit.train_head``). A larger weight puts the map on the opacities
and costs ranking. This script measures both, for each weight, by 5-fold cross-validation grouped by
patient over the bundle's adult *training and validation* films (test films are not read):

* out-of-fold AUROC of the film logit;
* pointing game of the cell-logit map on the held-out fold's boxed films, as ``cxr-model pointing``
  scores a map (``pointing.pointing_hit``: the peak of the map resized bilinearly to the input, inside
  a box), the coarser "peak cell covers a box" beside it, and the map's energy share in the boxes.

    python benchmarks/adult_branch.py --model-dir assets/models/cxr-pneumonia-resnet18-v2.1 \\
        [--weights 0 0.3 0.5 1] [--priors none 0.3:1 0.5:2] [--cache maps.npz]

``--priors``: each ``FLOOR:SIGMA`` also fits heads whose cells are weighted by a spatial prior
(``branch_fit.spatial_prior``: where the *training folds'* boxes lie, smoothed by SIGMA cells, at
least FLOOR); ``none`` is the unweighted head. The map scored is the cells' contribution (logit x prior).

The cache is ``cxr-model adult-branch fit --cache``'s (the same maps), so a fit and this script read
the films once.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cxr_model.imaging.branch_cv import dev_films, input_map, out_of_fold_cells  # noqa: E402
from cxr_model.imaging.branch_fit import _cached_maps, map_parts  # noqa: E402
from cxr_model.imaging.bundle import load_cxr_bundle  # noqa: E402
from cxr_model.imaging.pointing import energy_share, pointing_hit  # noqa: E402
from cxr_model.imaging.splits import split_items  # noqa: E402
from cxr_model.settings import get_settings  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.3, 0.5, 1.0])
    ap.add_argument("--priors", nargs="+", default=["none"], help="none or FLOOR:SIGMA, each")
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--size", type=int, default=448)
    ap.add_argument("--cache", default=None)
    args = ap.parse_args(argv)
    s = get_settings()
    bundle = load_cxr_bundle(args.model_dir, device="cpu")
    items = {k: split_items(bundle, s.kermany_dir, k, "adult", s.nih_adult_dir) for k in ("train", "val")}
    if args.cache and not Path(args.cache).exists():  # write it in the fit's layout, so the fit can read it too
        _cached_maps(bundle, map_parts(items), args.size, args.cache, print)
    dev = dev_films(bundle, s.kermany_dir, s.nih_adult_dir, args.size, args.cache, items, print)
    y, masks, n_boxed = dev.y, dev.masks, sum(bool(b) for b in dev.boxes)
    print(f"{len(y)} adult train + val films ({int(y.sum())} pneumonia, {n_boxed} boxed), {len(set(dev.patients))} "
          f"patients; 5 folds by patient; {args.epochs} epochs")
    print(f"{'box weight':>10} {'prior':>8} {'OOF AUROC':>9} {'pointing (map)':>15} {'peak cell in box':>16} {'energy':>6}")
    for w, pr in [(w, pr) for pr in args.priors for w in args.weights]:
        floor_sigma = None if pr == "none" else tuple(float(v) for v in pr.split(":"))
        cells = out_of_fold_cells(dev, 5, w, args.epochs, None if floor_sigma is None else floor_sigma[::-1])
        oof = cells.reshape(len(y), -1).mean(1)
        hits = cell_hits = 0
        energy = []
        for i in (i for i, b in enumerate(dev.boxes) if b):
            (h, w_), b = dev.shapes[i], dev.boxes[i]
            cam = input_map(cells[i], args.size)
            hits += pointing_hit(cam, b, h, w_)
            cell_hits += bool(masks[i].ravel()[np.argmax(cells[i])] > 0)
            energy.append(np.nan_to_num(energy_share(cam, b, h, w_)))
        print(f"{w:>10} {pr:>8} {roc_auc_score(y, oof):>9.3f} {hits:>4}/{n_boxed} = {hits / n_boxed:.2f} "
              f"{cell_hits:>4}/{n_boxed} = {cell_hits / n_boxed:.2f} {np.mean(energy):>6.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
