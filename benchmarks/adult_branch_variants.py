"""Two more levers for the adult branch, each against the bundled recipe at 448 px (issue 10).

Measured as ``benchmarks/adult_branch.py`` measures the branch (5 folds by patient over the bundle's adult
*training and validation* films; the test films are not read), with the bundle's recipe (box weight 0.3,
prior floor 0.3, its smoothing scaled to the grid: 2 cells at 448 px):

* **batch-norm statistics at the branch's size**: the backbone's were estimated on 224 px inputs; here they
  are re-estimated on the adult *training* films read at the branch's size (no labels; cumulative average
  over batches of 32 in a fixed order), the train-test resolution gap of FixRes (Touvron et al., 2019);
* **two sizes averaged**: the film logits of a 320 px and a 448 px head, each fitted by the recipe.

For each variant: out-of-fold AUROC (and the paired difference with the plain 448 px head, 2,000 film
resamples), the pointing game of its out-of-fold map on the boxed films (as ``adult_branch.py`` scores it),
and the AUROC of a head fitted on the training films alone on the validation films (the part the bundle's
operating point is chosen on).

    python benchmarks/adult_branch_variants.py --model-dir assets/models/cxr-pneumonia-resnet18-v2.6 \\
        [--sizes 320 448] [--cache-dir DIR]

``--cache-dir`` keeps each size's maps (``maps<S>.npz``, the plain maps, in the layout of ``cxr-model
adult-branch fit --cache``, whose cache at that size can be put there; ``maps<S>_bn.npz``, the re-estimated
ones), so a rerun reads the films once.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cxr_model.imaging.adapt import adapt_batchnorm  # noqa: E402
from cxr_model.imaging.branch import BranchHead, BranchNet  # noqa: E402
from cxr_model.imaging.branch_cv import dev_films, input_map, out_of_fold_cells  # noqa: E402
from cxr_model.imaging.branch_fit import film_logits, spatial_prior, train_head  # noqa: E402
from cxr_model.imaging.bundle import load_cxr_bundle  # noqa: E402
from cxr_model.imaging.io import read_image  # noqa: E402
from cxr_model.imaging.pointing import pointing_hit  # noqa: E402
from cxr_model.imaging.splits import split_items  # noqa: E402
from cxr_model.imaging.transforms import EvalTransform, to_source  # noqa: E402
from cxr_model.settings import get_settings  # noqa: E402

BOX_WEIGHT, PRIOR_FLOOR, EPOCHS, BN_BATCH = 0.3, 0.3, 200, 32


@torch.no_grad()
def bn_maps(bundle, items: dict, size: int) -> torch.Tensor:
    """``layer4`` maps of the train + val films at ``size`` after the BN statistics were re-estimated there on
    the training films (:func:`adapt.adapt_batchnorm` at that size, on a copy; the bundle is not changed)."""
    tf = EvalTransform(size)
    src = {k: torch.stack([to_source(read_image(it.path), size) for it in v]) for k, v in items.items()}
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(src["train"])))
    adapted = adapt_batchnorm(bundle, src["train"][order], BN_BATCH, img_size=size)
    with adapted.model.hold() as net:
        reader = BranchNet(net, BranchHead())
        return torch.cat([torch.cat([reader.feature_map(tf(s[i:i + 16])).half() for i in range(0, len(s), 16)])
                          for s in (src["train"], src["val"])])


def measure(dev, size: int, n_train: int) -> tuple[np.ndarray, int, int, np.ndarray]:
    """Out-of-fold logits, pointing hits / boxed films, and the validation films' logits of a head fitted on
    the training films alone."""
    prior = (2 * size / 448, PRIOR_FLOOR)
    cells = out_of_fold_cells(dev, 5, BOX_WEIGHT, EPOCHS, prior)
    boxed = [i for i, b in enumerate(dev.boxes) if b]
    hits = sum(pointing_hit(input_map(cells[i], size), dev.boxes[i], *dev.shapes[i]) for i in boxed)
    fit = slice(0, n_train)
    head = train_head(dev.maps[fit], dev.y[fit], dev.masks[fit], BOX_WEIGHT, EPOCHS,
                      prior=spatial_prior(dev.masks[fit], *prior))
    return cells.reshape(len(cells), -1).mean(1).astype(np.float64), hits, len(boxed), film_logits(head, dev.maps[n_train:])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--sizes", type=int, nargs=2, default=[320, 448], help="the two sizes averaged; the second is the reference")
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    s, t0 = get_settings(), time.time()
    bundle = load_cxr_bundle(args.model_dir, device="cpu")
    items = {k: split_items(bundle, s.kermany_dir, k, "adult", s.nih_adult_dir) for k in ("train", "val")}
    cache = Path(args.cache_dir) if args.cache_dir else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    rows, oof, val = {}, {}, {}
    for size in args.sizes:
        dev = dev_films(bundle, s.kermany_dir, s.nih_adult_dir, size, cache / f"maps{size}.npz" if cache else None,
                        items, lambda m: None)
        bn_file = cache / f"maps{size}_bn.npz" if cache else None
        if bn_file and bn_file.exists():
            bn = torch.from_numpy(np.load(bn_file)["maps"])
        else:
            bn = bn_maps(bundle, items, size)
            if bn_file:
                np.savez(bn_file, maps=bn.numpy())
        for name, d in ((f"{size} px", dev), (f"{size} px, BN at {size} px", dataclasses.replace(dev, maps=bn))):
            oof[name], hits, boxed, val[name] = measure(d, size, len(items["train"]))
            rows[name] = (hits, boxed)
            print(f"{name}: done ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    y = dev.y
    a, b = args.sizes
    ref = f"{b} px"
    for z in (oof, val):
        z[f"{a} + {b} px averaged"] = z[f"{a} px"] + z[ref]
        z[f"{a} + {b} px averaged, BN at each size"] = z[f"{a} px, BN at {a} px"] + z[f"{b} px, BN at {b} px"]
    y_val = y[len(items["train"]):]
    rng = np.random.default_rng(2012)
    draws = [rng.integers(0, len(y), len(y)) for _ in range(2000)]
    print(f"{len(y)} adult train + val films ({int(y.sum())} pneumonia), 5 folds by patient; test films not read")
    print(f"{'variant':<40} {'OOF AUROC':>9} {'vs ' + ref + ' [95 % CI]':>26} {'map in a box':>13} {'val AUROC':>9}")
    for name, z in oof.items():
        d = [roc_auc_score(y[i], z[i]) - roc_auc_score(y[i], oof[ref][i]) for i in draws]
        lo, hi = np.percentile(d, [2.5, 97.5])
        hits, boxed = rows.get(name, (None, None))
        point = f"{hits}/{boxed}" if hits is not None else "-"
        print(f"{name:<40} {roc_auc_score(y, z):>9.3f} {np.mean(d):>+12.3f} [{lo:+.3f}, {hi:+.3f}] {point:>13} "
              f"{roc_auc_score(y_val, val[name]):>9.3f}")
    print(f"({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
